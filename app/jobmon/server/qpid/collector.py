"""``jobmon-qpid-collector``: tails Grid Engine's accounting file into the qpid database.

The accounting file (``accounting(5)``) has one colon-separated line per finished job (or array task).
The collector reads whole lines from the offset it last committed, inserts them with INSERT IGNORE (the
primary key is job number, task number and end time, so a line read twice is skipped) and only then
records the new offset (atomically, with the file's inode: a rotated file is read from its start). A crash
between the insert and the offset write only means some lines are read again, and ignored.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from jobmon.core.cli_support import fail
from jobmon.core.config import QpidConfig
from jobmon.core.daemon import EXIT_USAGE, daemon_parser, run_passes, start_daemon, stop_on_signals
from jobmon.server.db import make_engine
from jobmon.server.qpid.schema import qpid_table

log = logging.getLogger(__name__)

# accounting(5) field positions (Grid Engine 6.2 to 8.1).
F_HOSTNAME, F_JOB_NUMBER, F_END_TIME, F_FAILED, F_EXIT_STATUS = 1, 5, 10, 11, 12
F_RU_WALLCLOCK, F_RU_MAXRSS, F_TASK_NUMBER, F_PE_TASKID, F_MAXVMEM = 13, 16, 35, 41, 42
MIN_FIELDS = F_MAXVMEM + 1
# Lines read per INSERT.
INSERT_BATCH = 1000


@dataclass(frozen=True)
class AccountingRecord:
    job_number: int
    task_number: int
    maxrss_bytes: int
    maxvmem_bytes: int
    wallclock_s: float
    exit_status: int
    hostname: str
    end_time: datetime


def _epoch(value: str) -> datetime | None:
    seconds = float(value)
    if seconds <= 0:
        return None
    if seconds > 1e11:  # Grid Engine 8.1.9 and later: milliseconds
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def parse_line(line: str) -> AccountingRecord | None:
    """One accounting line, or None for a comment, a short line, a parallel job's slave task (the
    master's line carries the job's usage) or a job that never ended (no end time: it never ran)."""
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        return None
    fields = line.split(":")
    if len(fields) < MIN_FIELDS:
        log.warning("accounting line with %d fields skipped (need %d)", len(fields), MIN_FIELDS)
        return None
    if fields[F_PE_TASKID] not in ("NONE", ""):
        return None
    try:
        end_time = _epoch(fields[F_END_TIME])
        if end_time is None:
            return None
        return AccountingRecord(
            job_number=int(fields[F_JOB_NUMBER]),
            task_number=int(fields[F_TASK_NUMBER]),
            # ru_maxrss is in kilobytes; maxvmem in bytes (possibly written as a float).
            maxrss_bytes=int(float(fields[F_RU_MAXRSS]) * 1024),
            maxvmem_bytes=int(float(fields[F_MAXVMEM])),
            wallclock_s=float(fields[F_RU_WALLCLOCK]),
            exit_status=int(fields[F_EXIT_STATUS]),
            hostname=fields[F_HOSTNAME][:255],
            end_time=end_time,
        )
    except ValueError as exc:
        log.warning("unreadable accounting line skipped: %s", exc)
        return None


class Collector:
    def __init__(self, config: QpidConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.table: Table = qpid_table(config)
        self.path = Path(config.accounting_file)
        self.offset_path = Path(config.offset_file)

    # -- offset ---------------------------------------------------------------------------------------

    def _load_offset(self) -> tuple[int, int]:
        try:
            data = json.loads(self.offset_path.read_text())
            return int(data["inode"]), int(data["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0

    def _save_offset(self, inode: int, offset: int) -> None:
        self.offset_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"inode": inode, "offset": offset}))
        os.replace(tmp, self.offset_path)

    # -- one pass -------------------------------------------------------------------------------------

    def collect_once(self) -> int:
        """Insert every complete line added since the last pass; answers the lines read."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            log.info("accounting file %s does not exist yet", self.path)
            return 0
        inode, offset = self._load_offset()
        if inode != stat.st_ino or offset > stat.st_size:
            if offset:
                log.info("accounting file %s was replaced or truncated: reading it from the start", self.path)
            offset = 0
        lines = 0
        with self.path.open("rb") as fh:
            fh.seek(offset)
            while True:
                chunk = fh.readlines(4 * 1024 * 1024)
                if not chunk:
                    break
                # Only whole lines: a line Grid Engine is still writing is read next pass.
                if not chunk[-1].endswith(b"\n"):
                    chunk.pop()
                    if not chunk:
                        break
                records = [r for r in (parse_line(b.decode("utf-8", "replace")) for b in chunk) if r]
                self._insert(records)
                offset += sum(len(b) for b in chunk)
                lines += len(chunk)
                self._save_offset(stat.st_ino, offset)
        return lines

    def _insert(self, records: list[AccountingRecord]) -> None:
        if not records:
            return
        cfg = self.config
        rows: list[dict[str, Any]] = [{
            cfg.job_column: r.job_number, cfg.task_column: r.task_number, cfg.maxrss_column: r.maxrss_bytes,
            "maxvmem_bytes": r.maxvmem_bytes, cfg.wallclock_column: r.wallclock_s,
            "exit_status": r.exit_status, "hostname": r.hostname,
            (cfg.end_time_column or "end_time"): r.end_time,
        } for r in records]
        stmt: Any = (sqlite_insert(self.table).on_conflict_do_nothing()
                     if self.engine.dialect.name == "sqlite" else insert(self.table).prefix_with("IGNORE"))
        with self.engine.begin() as conn:
            for start in range(0, len(rows), INSERT_BATCH):
                conn.execute(stmt, rows[start:start + INSERT_BATCH])

    def run(self, stop: threading.Event) -> None:
        log.info("jobmon-qpid-collector alive: tailing %s every %g s", self.path,
                 self.config.collector_interval)
        run_passes(self._collect_and_say, name="jobmon-qpid-collector",
                   interval=self.config.collector_interval, stop=stop, log=log,
                   health_file=self.config.health_file,
                   known_failures={DBAPIError: "qpid database unavailable?",
                                   OSError: "cannot read the accounting file"})

    def _collect_and_say(self) -> str | None:
        """One pass, and the line to log about it (none when nothing was new)."""
        started = time.monotonic()
        lines = self.collect_once()
        if not lines:
            return None
        return f"collected {lines} accounting line(s) in {time.monotonic() - started:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = daemon_parser("jobmon-qpid-collector", __doc__)
    parser.add_argument("--create-schema", action="store_true",
                        help="create the qpid table if it is missing (needs CREATE on the qpid database)")
    args, config = start_daemon(parser, argv, lambda config: config.qpid.log_level)
    if not config.qpid.qpid_db_url:
        return fail(parser.prog, "[qpid] qpid_db_url is required", EXIT_USAGE)
    collector = Collector(config.qpid, make_engine(config.qpid.qpid_db_url, pool_size=1))
    if args.create_schema:
        collector.table.metadata.create_all(collector.engine)
    if args.once:
        log.info("collected %d line(s)", collector.collect_once())
        return 0
    collector.run(stop_on_signals(log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
