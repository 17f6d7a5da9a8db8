#!/usr/bin/env python3
"""Reaper loop time with 10,000 active workflow runs.

Starts a private MariaDB and uWSGI serving the three services on it (the test harness), seeds ``--runs``
runs in R (heartbeat deadlines ahead) with ``--instances`` live task instances, and ``--lost`` runs whose
deadline passed an hour ago, then times ``Reaper.reap_once`` (the daemon's pass, through HTTP):

  pass 1  moves the lost runs (R -> E, workflow -> F), one Slack-less notification each
  pass 2+ the steady state: nothing to move, every candidate query an index range scan

    .venv/bin/python bench/reaper_loop.py [--runs 10000] [--lost 100] [--instances 100000] [--passes 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from _seed import seed  # noqa: E402
from harness.mariadb import MariaDBServer  # noqa: E402
from harness.uwsgi import start_uwsgi  # noqa: E402
from jobmon.core.config import ClientConfig, JobmonConfig, ReaperConfig, ServerConfig  # noqa: E402
from jobmon.core.requester import Requester  # noqa: E402
from jobmon.reaper.daemon import Reaper  # noqa: E402
from jobmon.reaper.slack import SlackNotifier  # noqa: E402
from jobmon.server import migrate  # noqa: E402
from jobmon.server.db import make_engine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--lost", type=int, default=100)
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()

    server = MariaDBServer.start()
    service = None
    try:
        urls = server.create_database("jobmon_bench_reaper")
        migrate.upgrade(urls.migrate)
        seed(make_engine(urls.read_write), workflows=args.runs, lost=args.lost, tasks=args.instances)
        config = JobmonConfig(server=ServerConfig(db_url=urls.read_write, db_url_read_only=urls.read_only,
                                                  db_url_migrate=urls.migrate))
        service = start_uwsgi(config, Path(tempfile.mkdtemp(prefix="bench-reaper-")), ("state", "query"))
        reaper_config = ReaperConfig(loss_threshold=300, overdue_threshold=300, batch_size=500)
        reaper = Reaper(reaper_config, Requester.from_config(ClientConfig(), service.url),
                        SlackNotifier(reaper_config))
        first = reaper.reap_once()
        steady = [reaper.reap_once().seconds for _ in range(args.passes)]
        print(json.dumps({
            "active_runs": args.runs, "live_instances": args.instances, "lost_runs": args.lost,
            "first_pass_moved": len(first.run_moves), "first_pass_s": round(first.seconds, 3),
            "steady_pass_s_median": round(statistics.median(steady), 4),
            "steady_pass_s_max": round(max(steady), 4),
        }))
        return 0 if len(first.run_moves) == args.lost else 1
    finally:
        if service is not None:
            service.stop()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
