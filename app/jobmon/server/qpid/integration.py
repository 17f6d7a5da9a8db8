"""``jobmon-qpid``: fills max RSS (and wallclock, where the worker left none) on finished task instances
from the qpid accounting database.

Each pass pages through the finished Grid Engine instances that still lack max RSS, in id order, at most
``max_backlog`` at a time (the only thing held in memory), looks their jobs up in qpid, and writes the
matches with one ``UPDATE ... SET maxrss = CASE id WHEN .. THEN .. END ... WHERE id IN (..) AND maxrss IS
NULL`` per ``batch_size`` rows. ``maxrss IS NULL`` in the statement itself means a value is never written
twice, by a restart or by a second integrator. A database that is down fails the pass, which is logged;
the next pass reconnects (pool pre-ping) and carries on where the data says, since nothing is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, Table, case, func, select, update
from sqlalchemy.exc import DBAPIError

from jobmon.core.config import QpidConfig
from jobmon.core.daemon import run_passes
from jobmon.core.states import TaskInstanceStatus
from jobmon.server.db import make_engine
from jobmon.server.models import TaskInstance
from jobmon.server.qpid.schema import executor_key, qpid_table

log = logging.getLogger(__name__)

TI = TaskInstanceStatus
# Instances whose job has ended: Grid Engine has (or will soon have) written their accounting.
FINISHED = (TI.DONE, TI.ERROR, TI.RESOURCE_ERROR, TI.UNKNOWN_ERROR, TI.KILL_SELF)
MIN_BATCH = 100
# Jobs looked up in qpid per SELECT.
LOOKUP_CHUNK = 1000


# The cluster's clock (accounting end times) and the database's (submitted_date) may disagree this much.
CLOCK_SKEW = timedelta(minutes=5)


class Pending(NamedTuple):
    ti_id: int
    key: tuple[int, int]
    submitted: datetime | None


@dataclass
class PassStats:
    pending: int = 0
    matched: int = 0
    written: int = 0
    statements: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"qpid pass: {self.pending} pending, {self.matched} found in qpid, {self.written} written "
                f"in {self.statements} statement(s), {self.seconds:.2f} s ({self.rate:.0f} rows/s)")


class QpidIntegrator:
    def __init__(self, config: QpidConfig, jobmon_engine: Engine, qpid_engine: Engine) -> None:
        if config.batch_size < MIN_BATCH:
            raise ValueError(f"[qpid] batch_size must be at least {MIN_BATCH}, got {config.batch_size}")
        if config.max_backlog < config.batch_size:
            raise ValueError("[qpid] max_backlog must be at least batch_size")
        self.config = config
        self.jobmon = jobmon_engine
        self.qpid = qpid_engine
        self.usage: Table = qpid_table(config)
        self.executor_types = [t.strip() for t in config.executor_types.split(",") if t.strip()]

    @classmethod
    def from_config(cls, config: QpidConfig) -> QpidIntegrator:
        if not config.db_url or not config.qpid_db_url:
            raise ValueError("[qpid] db_url and qpid_db_url are both required")
        return cls(config, make_engine(config.db_url, pool_size=2),
                   make_engine(config.qpid_db_url, pool_size=2))

    # -- one pass -----------------------------------------------------------------------------------

    def run_once(self) -> PassStats:
        stats = PassStats()
        started = time.monotonic()
        after = 0
        while True:
            count, after, page = self._pending(after)
            if not count:
                break
            stats.pending += count
            found = self._lookup(page)
            stats.matched += len(found)
            for start in range(0, len(found), self.config.batch_size):
                stats.written += self._write(found[start:start + self.config.batch_size])
                stats.statements += 1
            if count < self.config.max_backlog:
                break
        stats.seconds = time.monotonic() - started
        return stats

    def _pending(self, after: int) -> tuple[int, int, list[Pending]]:
        """One page of instances still lacking max RSS, ids above ``after``: how many rows, the last id,
        and those whose executor id is a Grid Engine job."""
        ti = TaskInstance
        oldest = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=self.config.max_age_days)
        with self.jobmon.connect() as conn:
            rows = conn.execute(
                select(ti.id, ti.executor_id, ti.submitted_date)
                .where(ti.status.in_([s.value for s in FINISHED]), ti.maxrss.is_(None),
                       ti.executor_type.in_(self.executor_types), ti.executor_id.is_not(None),
                       ti.status_date >= oldest, ti.id > after)
                .order_by(ti.id)
                .limit(self.config.max_backlog)
            ).all()
        out: list[Pending] = []
        for ti_id, executor_id, submitted in rows:
            key = executor_key(executor_id or "")
            if key is not None:
                out.append(Pending(ti_id, key, submitted))
        return len(rows), (rows[-1][0] if rows else after), out

    def _lookup(self, page: Sequence[Pending]) -> list[tuple[int, int, float | None]]:
        """(instance id, maxrss bytes, wallclock s) for each instance qpid has a max RSS for.

        Grid Engine reuses job numbers, so a row only counts for an instance submitted before the job
        ended (less a margin for clock skew); of several, the earliest such end is the instance's run."""
        by_key: dict[tuple[int, int], list[Pending]] = {}
        for item in page:
            by_key.setdefault(item.key, []).append(item)
        jobs = sorted({key[0] for key in by_key})
        cfg = self.config
        c = self.usage.c
        columns = [c[cfg.job_column], c[cfg.task_column], c[cfg.maxrss_column], c[cfg.wallclock_column]]
        if cfg.end_time_column:
            columns.append(c[cfg.end_time_column])
        best: dict[int, tuple[datetime, int, float | None]] = {}
        with self.qpid.connect() as conn:
            for start in range(0, len(jobs), LOOKUP_CHUNK):
                chunk = jobs[start:start + LOOKUP_CHUNK]
                rows = conn.execute(select(*columns).where(columns[0].in_(chunk), columns[2].is_not(None)))
                for row in rows:
                    job, task, rss, wall = row[0], row[1], row[2], row[3]
                    ended: datetime = (row[4] if cfg.end_time_column else None) or datetime.max
                    for item in by_key.get((int(job), int(task)), ()):
                        if (item.submitted is not None and ended != datetime.max
                                and ended < item.submitted - CLOCK_SKEW):
                            continue  # an earlier job that had the same number
                        current = best.get(item.ti_id)
                        if current is None or ended < current[0]:
                            best[item.ti_id] = (ended, int(rss), None if wall is None else float(wall))
        return sorted((ti_id, rss, wall) for ti_id, (_, rss, wall) in best.items())

    def _write(self, batch: Sequence[tuple[int, int, float | None]]) -> int:
        """One UPDATE for the whole batch; answers the rows it changed (0 for those another writer
        filled first)."""
        ti = TaskInstance
        ids = [ti_id for ti_id, _, _ in batch]
        rss = {ti_id: value for ti_id, value, _ in batch}
        walls = {ti_id: wall for ti_id, _, wall in batch if wall is not None}
        values: dict[Any, Any] = {ti.maxrss: case(rss, value=ti.id)}
        if walls:
            # The worker's own wallclock, when it reported one, is kept.
            values[ti.wallclock] = func.coalesce(ti.wallclock, case(walls, value=ti.id, else_=None))
        with self.jobmon.begin() as conn:
            result = conn.execute(
                update(ti).where(ti.id.in_(ids), ti.maxrss.is_(None)).values(values)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- the daemon ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event, health_file: str = "") -> None:
        log.info("jobmon-qpid alive: every %g s, batches of %d, backlog at most %d, executor types %s",
                 self.config.poll_interval, self.config.batch_size, self.config.max_backlog,
                 ",".join(self.executor_types))
        run_passes(lambda: str(self.run_once()), name="jobmon-qpid", interval=self.config.poll_interval,
                   stop=stop, log=log, health_file=health_file,
                   known_failures={DBAPIError: "database unavailable?"})
