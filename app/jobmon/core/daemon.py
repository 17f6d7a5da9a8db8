"""The loop and the entry point shape of Jobmon's daemons: ``jobmon-reaper``, ``jobmon-qpid`` and
``jobmon-qpid-collector``.

Each runs one pass every interval until SIGTERM or SIGINT, which end the loop after the current pass. A pass
that fails is logged and the next one tries again: a database or service that is down must not stop a
daemon, and neither may a bug (it is logged with its traceback). After each pass that did not fail, the
health file the container's health check reads is touched. Standard library only.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType

from jobmon.core.cli_support import CONFIG_HELP, setup_logging
from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.core.health_file import touch

EXIT_USAGE = 2


def daemon_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The options every daemon takes: ``--config PATH`` and ``--once``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    return parser


def start_daemon(parser: argparse.ArgumentParser, argv: list[str] | None,
                 log_level: Callable[[JobmonConfig], str]) -> tuple[argparse.Namespace, JobmonConfig]:
    """Parse the arguments, load the configuration and set up logging at its level. A configuration
    that cannot be read ends the process with one line on stderr and exit status 2, as a usage error
    does."""
    args = parser.parse_args(argv)
    try:
        config = JobmonConfig.load(args.config)
    except ConfigError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: {exc}\n")
    setup_logging(parser.prog, log_level(config))
    return args, config


def stop_on_signals(log: logging.Logger) -> threading.Event:
    """An event that SIGTERM and SIGINT set (the daemon's loop ends after its current pass)."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the current pass", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run_passes(
    one_pass: Callable[[], str | None],
    *,
    name: str,
    interval: float,
    stop: threading.Event,
    log: logging.Logger,
    health_file: str = "",
    known_failures: Mapping[type[Exception], str] | None = None,
) -> None:
    """Call ``one_pass`` every ``interval`` seconds until ``stop`` is set.

    A pass answers the line to log about it, or None to log nothing. ``known_failures`` maps the
    exceptions an outage raises to a hint (e.g. ``{DBAPIError: "database unavailable?"}``): those are
    logged as one line, anything else with its traceback. Neither ends the loop.
    """
    failures = dict(known_failures or {})
    while not stop.is_set():
        try:
            summary = one_pass()
        except Exception as exc:
            hint = next((text for kind, text in failures.items() if isinstance(exc, kind)), None)
            if hint is None:
                log.exception("%s pass failed, retrying in %g s", name, interval)
            else:
                log.error("%s pass failed (%s), retrying in %g s: %s", name, hint, interval,
                          _first_line(exc))
        else:
            if summary:
                log.info("%s", summary)
            touch(health_file)
        stop.wait(interval)
    log.info("%s stopped", name)


def _first_line(exc: BaseException) -> str:
    # A database error's text goes on with the statement and a link; its first line says what failed.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
