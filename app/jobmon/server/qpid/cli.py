"""``jobmon-qpid``: run the qpid max-RSS integration until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys

from jobmon.core.cli_support import fail
from jobmon.core.daemon import EXIT_USAGE, daemon_parser, start_daemon, stop_on_signals
from jobmon.server.qpid.integration import QpidIntegrator

log = logging.getLogger("jobmon.server.qpid")


def main(argv: list[str] | None = None) -> int:
    args, config = start_daemon(daemon_parser("jobmon-qpid", __doc__), argv,
                                lambda config: config.qpid.log_level)
    try:
        integrator = QpidIntegrator.from_config(config.qpid)
    except ValueError as exc:
        return fail("jobmon-qpid", exc, EXIT_USAGE)
    if args.once:
        log.info("%s", integrator.run_once())
        return 0
    integrator.run(stop_on_signals(log), config.qpid.health_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
