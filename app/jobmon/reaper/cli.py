"""``jobmon-reaper``: run the workflow reaper until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys

from jobmon.core.daemon import daemon_parser, start_daemon, stop_on_signals
from jobmon.core.requester import Requester
from jobmon.reaper.daemon import Reaper
from jobmon.reaper.slack import SlackNotifier

log = logging.getLogger("jobmon.reaper")


def main(argv: list[str] | None = None) -> int:
    args, config = start_daemon(daemon_parser("jobmon-reaper", __doc__), argv,
                                lambda config: config.reaper.log_level)
    stop = stop_on_signals(log)

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # a SIGTERM during a retry back-off ends the wait at once

    # Few retries, bounded well inside one poll: an outage is the next pass's business.
    requester = Requester(config.client.service_url, timeout=config.client.request_timeout, retries=3,
                          max_total_wait=max(1.0, config.reaper.poll_interval / 2), sleep=sleep)
    reaper = Reaper(config.reaper, requester, SlackNotifier(config.reaper))
    if args.once:
        log.info("%s", reaper.reap_once())
        return 0
    reaper.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
