"""Per-app state: which services this app serves and the session factory each one may use."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from jobmon.core.config import JobmonConfig


@dataclass
class ServiceContext:
    config: JobmonConfig
    # Read-write sessions exist only in an app that serves the State Manager.
    read_write: sessionmaker[Session] | None = None
    read_only: sessionmaker[Session] | None = None
    services: tuple[str, ...] = field(default_factory=tuple)


def context() -> ServiceContext:
    ctx: ServiceContext = current_app.extensions["jobmon"]
    return ctx


def rw_sessions() -> sessionmaker[Session]:
    factory = context().read_write
    if factory is None:  # a read-only app never holds write credentials
        raise RuntimeError("this app has no read-write database engine")
    return factory


def ro_sessions() -> sessionmaker[Session]:
    factory = context().read_only
    if factory is None:
        raise RuntimeError("this app has no read-only database engine")
    return factory
