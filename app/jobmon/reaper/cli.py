"""``jobmon-reaper``: run the workflow reaper until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.core.requester import Requester
from jobmon.reaper.daemon import Reaper
from jobmon.reaper.slack import SlackNotifier

log = logging.getLogger("jobmon.reaper")


def stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the current pass", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobmon-reaper", description=__doc__)
    parser.add_argument("--config", help="TOML file (default: $JOBMON_CONFIG or /etc/jobmon/jobmon.toml)")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    try:
        config = JobmonConfig.load(args.config)
    except ConfigError as exc:
        print(f"jobmon-reaper: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.reaper.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    stop_on_signals(stop)

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # a SIGTERM during a retry back-off ends the wait at once

    # Few retries, bounded well inside one poll: an outage is the next pass's business.
    requester = Requester(config.client.service_url, timeout=config.client.request_timeout, retries=3,
                          max_total_wait=max(1.0, config.reaper.poll_interval / 2), sleep=sleep)
    reaper = Reaper(config.reaper, requester, SlackNotifier(config.reaper))
    if args.once:
        result = reaper.reap_once()
        log.info("%d run(s) and %d instance(s) moved", len(result.run_moves), len(result.instance_moves))
        return 0
    reaper.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
