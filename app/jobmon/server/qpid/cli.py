"""``jobmon-qpid``: run the qpid max-RSS integration until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.server.qpid.integration import QpidIntegrator

log = logging.getLogger("jobmon.server.qpid")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobmon-qpid", description=__doc__)
    parser.add_argument("--config", help="TOML file (default: $JOBMON_CONFIG or /etc/jobmon/jobmon.toml)")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    try:
        config = JobmonConfig.load(args.config).qpid
        integrator = QpidIntegrator.from_config(config)
    except (ConfigError, ValueError) as exc:
        print(f"jobmon-qpid: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.once:
        stats = integrator.run_once()
        log.info("%d pending, %d written in %.2f s", stats.pending, stats.written, stats.seconds)
        return 0
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the current pass", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    integrator.run(stop, config.health_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
