#!/usr/bin/env python3
"""qpid integration throughput: rows/s written onto task instances with 100,000 pending.

Starts a private MariaDB (tests/harness/mariadb.py), migrates a Jobmon database, seeds ``--pending``
finished Grid Engine task instances lacking max RSS and a qpid ``job_usage`` table holding every one of
their jobs, then runs ``QpidIntegrator.run_once`` (one pass: page, look up, batched CASE UPDATEs) as an
account granted exactly what the appliance grants (SELECT on task_instance, UPDATE of its usage columns).
Guppy's integrator did 10 rows/s; the target is at least 2,000.

    .venv/bin/python bench/qpid_throughput.py [--pending 100000] [--batch-size 1000] [--max-backlog 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import func, select  # noqa: E402

from _seed import seed  # noqa: E402
from harness.mariadb import HOST, MariaDBServer, database_name  # noqa: E402
from jobmon.core.config import QpidConfig  # noqa: E402
from jobmon.server import migrate  # noqa: E402
from jobmon.server.db import make_engine  # noqa: E402
from jobmon.server.models import TaskInstance  # noqa: E402
from jobmon.server.qpid.integration import QpidIntegrator  # noqa: E402
from jobmon.server.qpid.schema import qpid_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-backlog", type=int, default=20_000)
    args = parser.parse_args()

    server = MariaDBServer.start()
    try:
        urls = server.create_database("jobmon_bench_qpid")
        migrate.upgrade(urls.migrate)
        qpid_urls = server.create_database("qpid_bench")
        name = database_name(urls.migrate)
        with server.admin() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER 'bench_qpid'@%s IDENTIFIED BY 'bench-secret'", (HOST,))
            cur.execute(f"GRANT SELECT, UPDATE (maxpss, maxrss, wallclock) ON `{name}`.task_instance "
                        "TO 'bench_qpid'@%s", (HOST,))
        jobmon_url = f"mysql+pymysql://bench_qpid:{quote('bench-secret')}@{HOST}:{server.port}/{name}"
        config = QpidConfig(db_url=jobmon_url, qpid_db_url=qpid_urls.read_write, batch_size=args.batch_size,
                            max_backlog=args.max_backlog)

        started = time.monotonic()
        seed(make_engine(urls.read_write), workflows=100, tasks=args.pending, instance_status="D",
             finished=True, first_job=1_000_000)
        table = qpid_table(config)
        table.metadata.create_all(make_engine(qpid_urls.migrate))
        qpid = make_engine(qpid_urls.read_write)
        with qpid.begin() as conn:
            ended = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
            rows = [{"job_number": 1_000_000 + i, "task_number": 0, "end_time": ended,
                     "maxrss_bytes": (i % 4096 + 1) * 1024 * 1024, "wallclock_s": float(i % 600)}
                    for i in range(args.pending)]
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start:start + 5000])
        seeded = time.monotonic() - started

        integrator = QpidIntegrator.from_config(config)
        stats = integrator.run_once()
        with make_engine(urls.read_write).connect() as conn:
            filled = conn.execute(select(func.count()).select_from(TaskInstance)
                                  .where(TaskInstance.maxrss.is_not(None))).scalar_one()
        again = integrator.run_once()
        print(json.dumps({
            "pending": stats.pending, "written": stats.written, "statements": stats.statements,
            "rows_per_statement": args.batch_size, "seconds": round(stats.seconds, 3),
            "rows_per_s": round(stats.rate), "filled_in_db": filled,
            "second_pass_pending": again.pending, "second_pass_seconds": round(again.seconds, 3),
            "seed_seconds": round(seeded, 1),
        }))
        return 0 if stats.written == args.pending and filled == args.pending else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
