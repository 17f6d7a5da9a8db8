"""WSGI entry point for uWSGI: ``--module jobmon.server.wsgi:application``.

Production runs one uWSGI app per service, each with only its own credentials, so the services this process
serves come from ``JOBMON_SERVICES`` (a comma list of ``state``, ``query``, ``viz``; default all three) and
the rest of the configuration from ``JOBMON_CONFIG`` and ``JOBMON_*`` as everywhere else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from flask import Flask
from sqlalchemy.exc import ArgumentError

from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.server.app import SERVICES, create_app

SERVICES_ENV = "JOBMON_SERVICES"


def services_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The services named in ``JOBMON_SERVICES``; all three when it is unset or empty."""
    env = os.environ if environ is None else environ
    raw = env.get(SERVICES_ENV, "").strip()
    if not raw:
        return SERVICES
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in names if name not in SERVICES]
    if unknown or not names:
        raise ConfigError(f"{SERVICES_ENV}={raw!r}: expected a comma list of {', '.join(SERVICES)}")
    return names


def build_application(environ: Mapping[str, str] | None = None) -> Flask:
    env = os.environ if environ is None else environ
    return create_app(JobmonConfig.load(environ=env), services=services_from_env(env))


try:
    application = build_application()
except ConfigError as exc:
    # One clear line in the uWSGI log instead of a traceback. ``application`` stays undefined, so uWSGI
    # finds no app and, with --need-app, exits (status 22) rather than respawning workers forever.
    print(f"jobmon: configuration error: {exc}", file=sys.stderr, flush=True)
except ArgumentError as exc:
    print(f"jobmon: configuration error: not a usable database URL (server.db_url*): {exc}",
          file=sys.stderr, flush=True)
