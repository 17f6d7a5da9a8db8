"""The qpid integration and its accounting collector, on SQLite and on MariaDB (there with the appliance's
column-limited qpid account)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, select, text, update
from state_calls import StateApi

from harness import free_port
from harness.mariadb import HOST, database_name
from jobmon.core.config import QpidConfig
from jobmon.server.db import make_engine
from jobmon.server.models import TaskInstance
from jobmon.server.qpid.collector import Collector, parse_line
from jobmon.server.qpid.integration import QpidIntegrator
from jobmon.server.qpid.schema import executor_key, qpid_table
from waiting import wait_until

# Real Grid Engine 8.1.9 accounting lines (45 fields): a plain job, an array task, a parallel job's slave
# task (skipped: the master's line has the usage) and a comment.
PLAIN = ("all.q:jobmon-sge:jobmon:jobmon:sleep_1:1001:sge:0:1700000000:1700000001:1700000005:0:0:4:0.1:0.05:"
         "20480:0:0:0:0:1000:0:0:0:8:0:0:0:100:10:NONE:defaultdepartment:NONE:1:0:0.15:0.001:0.0001:"
         "-l h_vmem=1G:0.0:NONE:104857600:0:0\n")
ARRAY = ("all.q:jobmon-sge:jobmon:jobmon:arr:1002:sge:0:1700000100000:1700000101000:1700000109000:0:1:8:0.2:"
         "0.1:51200:0:0:0:0:2000:0:0:0:8:0:0:0:200:20:testbed:defaultdepartment:NONE:1:3:0.3:0.002:0.0002:"
         "-l h_vmem=2G:0.0:NONE:209715200:0:0\n")
SLAVE = ("all.q:jobmon-sge:jobmon:jobmon:mpi:1003:sge:0:1700000000:1700000001:1700000005:0:0:4:0.1:0.05:"
         "9999:0:0:0:0:1000:0:0:0:8:0:0:0:100:10:NONE:defaultdepartment:smp:2:0:0.15:0.001:0.0001:"
         "-l h_vmem=1G:0.0:1.jobmon-sge:104857600:0:0\n")


def test_accounting_lines_parse() -> None:
    plain = parse_line(PLAIN)
    assert plain is not None
    assert (plain.job_number, plain.task_number, plain.maxrss_bytes, plain.maxvmem_bytes) == (
        1001, 0, 20480 * 1024, 104857600)
    assert plain.wallclock_s == 4.0
    assert plain.hostname == "jobmon-sge"
    assert plain.end_time is not None
    assert plain.end_time.year == 2023
    array = parse_line(ARRAY)
    assert array is not None
    assert (array.job_number, array.task_number, array.exit_status) == (1002, 3, 1)
    assert array.end_time == plain.end_time + timedelta(seconds=104)  # written in milliseconds
    assert parse_line(SLAVE) is None
    assert parse_line("# Version: 8.1.9\n") is None
    assert parse_line("too:short\n") is None
    assert executor_key("1001") == (1001, 0)
    assert executor_key("1002.3") == (1002, 3)
    assert executor_key("12345-local") is None


# -- fixtures ------------------------------------------------------------------------------------------

@dataclass
class Dbs:
    api: StateApi
    jobmon_url: str  # as the qpid integration's account
    qpid_url: str


@pytest.fixture
def dbs(request: pytest.FixtureRequest, db_urls, client, app, tmp_path: Path) -> Iterator[Dbs]:
    api = StateApi(client, app)
    if db_urls.backend == "sqlite":
        yield Dbs(api, db_urls.read_write, f"sqlite:///{tmp_path / 'qpid.sqlite'}")
        return
    server = request.getfixturevalue("mariadb_server")
    name = database_name(db_urls.migrate)
    qpid = server.create_database()
    password = "qpid-%@:/#secret"
    # The appliance's account: SELECT on task_instance, UPDATE of its usage columns only.
    with server.admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'jobmon_qpid_t'@%s IDENTIFIED BY %s", (HOST, password))
        cur.execute(f"GRANT SELECT, UPDATE (maxpss, maxrss, wallclock) ON `{name}`.task_instance "
                    "TO 'jobmon_qpid_t'@%s", (HOST,))
    # The schema is made by an account allowed DDL (the deployment's admin); the tests then write as rw.
    qpid_table(QpidConfig()).metadata.create_all(make_engine(qpid.migrate))
    url = f"mysql+pymysql://jobmon_qpid_t:{quote(password, safe='')}@{HOST}:{server.port}/{name}"
    try:
        yield Dbs(api, url, qpid.read_write)
    finally:
        server.drop_database(database_name(qpid.migrate))
        with server.admin() as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'jobmon_qpid_t'@%s", (HOST,))


def _config(dbs: Dbs, tmp_path: Path, **kw: Any) -> QpidConfig:
    values: dict[str, Any] = {"db_url": dbs.jobmon_url, "qpid_db_url": dbs.qpid_url, "batch_size": 100,
                              "max_backlog": 1000, "poll_interval": 0.2,
                              "accounting_file": str(tmp_path / "accounting"),
                              "offset_file": str(tmp_path / "state" / "offset")}
    values.update(kw)
    return QpidConfig(**values)


def _finished_instances(api: StateApi, n: int, first_job: int = 5000, executor_type: str = "sge",
                        usage: dict[str, Any] | None = None) -> list[int]:
    """n instances that ran as Grid Engine jobs ``first_job`` + i and finished without a max RSS."""
    b = api.bind(n, chain=False)
    api.start(b)
    api.post(f"/workflow_run/{b.workflow_run_id}/queue", {"task_ids": b.task_ids})
    instances = api.post(f"/workflow_run/{b.workflow_run_id}/instantiate",
                         {"task_ids": b.task_ids, "executor_type": executor_type})["task_instances"]
    ids = []
    for i, inst in enumerate(instances):
        ti = inst["task_instance_id"]
        api.post(f"/task_instance/{ti}/submitted", {"executor_id": str(first_job + i),
                                                    "next_report_increment": 60})
        api.post(f"/task_instance/{ti}/running", {"next_report_increment": 60})
        api.post(f"/task_instance/{ti}/done", usage or {})
        ids.append(ti)
    return ids


def _usage_rows(engine: Engine, config: QpidConfig, rows: list[tuple[int, int, int, float]],
                ended: datetime | None = None) -> None:
    """qpid rows of jobs that ended a minute from now (after the instances were submitted) unless told."""
    table = qpid_table(config)
    table.metadata.create_all(engine)
    end = ended or datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {config.job_column: j, config.task_column: t, config.maxrss_column: rss,
             config.wallclock_column: wall, "end_time": end} for j, t, rss, wall in rows])


def _usage(api: StateApi, ids: list[int]) -> dict[int, tuple[int | None, float | None]]:
    with api.session() as s:
        rows = s.execute(select(TaskInstance.id, TaskInstance.maxrss, TaskInstance.wallclock)
                         .where(TaskInstance.id.in_(ids)))
        return {i: (rss, wall) for i, rss, wall in rows}


# -- the integration -----------------------------------------------------------------------------------

@pytest.mark.slow  # 250 instances through the API
def test_max_rss_is_filled_in_batches_and_never_twice(dbs: Dbs, tmp_path: Path) -> None:
    config = _config(dbs, tmp_path)
    ids = _finished_instances(dbs.api, 250)
    qpid = make_engine(dbs.qpid_url)
    # Jobs 5000..5239 have accounting; the last ten have none yet.
    _usage_rows(qpid, config, [(5000 + i, 0, (i + 1) * 1024, 2.5) for i in range(240)])
    integrator = QpidIntegrator.from_config(config)
    stats = integrator.run_once()
    assert (stats.pending, stats.matched, stats.written, stats.statements) == (250, 240, 240, 3)
    usage = _usage(dbs.api, ids)
    assert usage[ids[0]] == (1024, 2.5)
    assert usage[ids[239]] == (240 * 1024, 2.5)
    assert all(usage[i] == (None, None) for i in ids[240:])

    # A value already there is never written again, even when qpid later says otherwise.
    with qpid.begin() as conn:
        conn.execute(update(qpid_table(config)).values({config.maxrss_column: 1}))
    _usage_rows(qpid, config, [(5000 + i, 0, 7 * 1024, 1.0) for i in range(240, 250)])
    stats = integrator.run_once()
    assert (stats.pending, stats.written) == (10, 10)
    usage = _usage(dbs.api, ids)
    assert usage[ids[0]] == (1024, 2.5)
    assert usage[ids[249]] == (7 * 1024, 1.0)
    assert integrator.run_once().pending == 0


def test_worker_wallclock_is_kept_and_other_executors_are_ignored(dbs: Dbs, tmp_path: Path) -> None:
    config = _config(dbs, tmp_path)
    sge = _finished_instances(dbs.api, 2, first_job=7000, usage={"wallclock": 9.0})
    local = _finished_instances(dbs.api, 2, first_job=7000, executor_type="multiprocess")
    _usage_rows(make_engine(dbs.qpid_url), config, [(7000, 0, 4096, 3.0), (7001, 0, 8192, 4.0)])
    QpidIntegrator.from_config(config).run_once()
    usage = _usage(dbs.api, sge + local)
    assert usage[sge[0]] == (4096, 9.0)
    assert usage[sge[1]] == (8192, 9.0)
    assert usage[local[0]][0] is None
    assert usage[local[1]][0] is None


def test_a_reused_job_number_matches_only_the_run_after_submission(dbs: Dbs, tmp_path: Path) -> None:
    config = _config(dbs, tmp_path)
    reused, only_old = _finished_instances(dbs.api, 2, first_job=8000)
    qpid = make_engine(dbs.qpid_url)
    long_ago = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=30)
    # Both job numbers ran a month ago (an earlier cell); 8000 ran again for this instance.
    _usage_rows(qpid, config, [(8000, 0, 111, 1.0), (8001, 0, 222, 1.0)], ended=long_ago)
    _usage_rows(qpid, config, [(8000, 0, 333, 3.0)])
    QpidIntegrator.from_config(config).run_once()
    usage = _usage(dbs.api, [reused, only_old])
    assert usage[reused] == (333, 3.0)
    assert usage[only_old] == (None, None)


@pytest.mark.slow  # 230 instances through the API
def test_backlog_is_paged_and_bounded(dbs: Dbs, tmp_path: Path) -> None:
    config = _config(dbs, tmp_path, max_backlog=100)
    ids = _finished_instances(dbs.api, 230, first_job=9000)
    _usage_rows(make_engine(dbs.qpid_url), config, [(9000 + i, 0, 1024, 1.0) for i in range(230)])
    stats = QpidIntegrator.from_config(config).run_once()
    assert (stats.pending, stats.written) == (230, 230)
    assert all(rss == 1024 for rss, _ in _usage(dbs.api, ids).values())


def test_batch_size_below_100_is_refused(dbs: Dbs, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 100"):
        QpidIntegrator.from_config(_config(dbs, tmp_path, batch_size=50))


def test_integration_survives_the_qpid_database_being_down(dbs: Dbs, tmp_path: Path, caplog) -> None:
    down = f"mysql+pymysql://nobody:x@127.0.0.1:{free_port()}/qpid"
    integrator = QpidIntegrator.from_config(_config(dbs, tmp_path, qpid_db_url=down))
    _finished_instances(dbs.api, 1, first_job=11000)
    stop = threading.Event()
    thread = threading.Thread(target=integrator.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.ERROR):
        thread.start()
        # Two failed passes: the loop outlived the first failure and tried again.
        wait_until(lambda: caplog.text.count("qpid pass failed") >= 2, 10, "two failed qpid passes")
        assert thread.is_alive()
        stop.set()
        thread.join(10)
    assert "qpid pass failed (database unavailable?)" in caplog.text


@pytest.mark.mariadb
def test_the_qpid_account_may_update_only_the_usage_columns(dbs: Dbs) -> None:
    if dbs.jobmon_url.startswith("sqlite"):
        pytest.skip("column grants exist on MariaDB only")
    engine = make_engine(dbs.jobmon_url)
    with pytest.raises(Exception, match=r"1143|command denied"), engine.begin() as conn:
        conn.execute(text("UPDATE task_instance SET status = 'D'"))


# -- the collector -------------------------------------------------------------------------------------

def test_collector_tails_the_accounting_file_idempotently(dbs: Dbs, tmp_path: Path) -> None:
    config = _config(dbs, tmp_path)
    engine = make_engine(dbs.qpid_url)
    collector = Collector(config, engine)
    collector.table.metadata.create_all(engine)
    accounting = Path(config.accounting_file)
    assert collector.collect_once() == 0  # no file yet

    accounting.write_text("# Version: 8.1.9\n" + PLAIN + SLAVE + ARRAY[:40])  # the last line half-written
    assert collector.collect_once() == 3
    with accounting.open("a") as fh:
        fh.write(ARRAY[40:])
    assert collector.collect_once() == 1
    assert collector.collect_once() == 0

    # Reading everything again (an offset lost in a crash) inserts nothing twice.
    Path(config.offset_file).unlink()
    assert collector.collect_once() == 4
    with engine.connect() as conn:
        rows = conn.execute(select(collector.table.c.job_number, collector.table.c.task_number,
                                   collector.table.c.maxrss_bytes)
                            .order_by(collector.table.c.job_number)).all()
    assert [tuple(r) for r in rows] == [(1001, 0, 20480 * 1024), (1002, 3, 51200 * 1024)]

    # A rotated file (new inode) is read from its start.
    accounting.rename(tmp_path / "accounting.0")
    accounting.write_text(PLAIN.replace(":1001:", ":1004:"))
    assert collector.collect_once() == 1
    with engine.connect() as conn:
        assert conn.execute(select(collector.table.c.job_number)
                            .where(collector.table.c.job_number == 1004)).scalar_one() == 1004


def _ended_now(line: str) -> str:
    """The line as if its job ended just now (submission, start and end times moved)."""
    fields = line.split(":")
    now = int(time.time())
    fields[8:11] = [str(now - 10), str(now - 8), str(now)]
    return ":".join(fields)


def test_accounting_to_task_instance_end_to_end(dbs: Dbs, tmp_path: Path) -> None:
    config = _config(dbs, tmp_path)
    ids = _finished_instances(dbs.api, 1, first_job=1001)
    engine = make_engine(dbs.qpid_url)
    collector = Collector(config, engine)
    collector.table.metadata.create_all(engine)
    # Job 1001 ran in 2023 too (an earlier cell): only this run's line may match.
    Path(config.accounting_file).write_text(PLAIN + _ended_now(PLAIN).replace(":20480:", ":30720:"))
    collector.collect_once()
    assert QpidIntegrator.from_config(config).run_once().written == 1
    assert _usage(dbs.api, ids)[ids[0]] == (30720 * 1024, 4.0)
