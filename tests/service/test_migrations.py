"""Alembic migrations on both backends (up to head, down to base, up again; the schema they build matches the
ORM models), and the ``jobmon-server db`` commands run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from harness import free_port
from harness.mariadb import DbUrls
from harness.uwsgi import write_config
from jobmon.core.config import JobmonConfig, ServerConfig
from jobmon.server import migrate
from jobmon.server.models import Base

JOBMON_SERVER = Path(sys.executable).parent / "jobmon-server"
SCHEMA_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> DbUrls:
    """An empty database (no schema) on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobmon.sqlite'}"
        return DbUrls("sqlite", url, url, url)
    urls: DbUrls = request.getfixturevalue("mariadb_database")
    return urls


def tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def count_queues(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM queue")).scalar_one())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_db: DbUrls) -> None:
    url = empty_db.migrate
    assert migrate.current(url) is None

    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    assert tables(url) == SCHEMA_TABLES | {"alembic_version"}
    assert count_queues(url) > 0  # the default queues are data the migration owns

    migrate.downgrade(url, "base")
    assert migrate.current(url) is None
    assert tables(url) <= {"alembic_version"}

    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    assert tables(url) == SCHEMA_TABLES | {"alembic_version"}


def test_upgrade_twice_is_a_no_op(empty_db: DbUrls) -> None:
    migrate.upgrade(empty_db.migrate)
    queues = count_queues(empty_db.migrate)
    migrate.upgrade(empty_db.migrate)
    assert migrate.current(empty_db.migrate) == migrate.head()
    assert count_queues(empty_db.migrate) == queues


def test_migrated_schema_matches_the_models(empty_db: DbUrls) -> None:
    # Models and migrations are written separately; autogenerate finding nothing to do proves they agree.
    migrate.upgrade(empty_db.migrate)
    engine = create_engine(empty_db.migrate, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


# -- jobmon-server db, as a subprocess --------------------------------------------------------------------

def run_cli(config_path: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBMON_")}
    if config_path is not None:
        env["JOBMON_CONFIG"] = str(config_path)
    return subprocess.run([str(JOBMON_SERVER), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def config_file(tmp_path: Path, urls: DbUrls) -> Path:
    cfg = JobmonConfig(server=ServerConfig(db_url=urls.read_write, db_url_read_only=urls.read_only,
                                           db_url_migrate=urls.migrate))
    return write_config(cfg, tmp_path / "cli" / "jobmon.toml")


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_db_current_upgrade_downgrade(empty_db: DbUrls, tmp_path: Path) -> None:
    path = config_file(tmp_path, empty_db)
    head = migrate.head()

    done = run_cli(path, "db", "current")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"base (empty database; head is {head})"
    assert run_cli(path, "db", "current", "--check").returncode == 3

    done = run_cli(path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"Running upgrade  -> {head}" in done.stderr
    assert f"at revision {head} (head)" in done.stdout
    assert migrate.current(empty_db.migrate) == head

    done = run_cli(path, "db", "current", "--check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{head} (head)"

    done = run_cli(path, "db", "downgrade", "base")
    assert done.returncode == 0, done.stderr
    assert migrate.current(empty_db.migrate) is None


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_never_prints_the_password(empty_db: DbUrls, tmp_path: Path) -> None:
    done = run_cli(config_file(tmp_path, empty_db), "db", "upgrade")
    assert done.returncode == 0, done.stderr
    password = empty_db.migrate.partition("://")[2].partition("@")[0].partition(":")[2]
    if password:
        assert password not in done.stdout + done.stderr
        assert "***" in done.stdout


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jobmon-server: ")
    return lines[0]


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"mysql+pymysql://jobmon_migrator:s3cret@127.0.0.1:{port}/jobmon?charset=utf8mb4"
    path = config_file(tmp_path, DbUrls("mariadb", url, url, url))
    line = one_line_error(run_cli(path, "db", "upgrade"))
    assert "database error" in line
    assert "Can't connect" in line
    assert "s3cret" not in line


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "jobmon.toml"
    path.write_text("[server]\ndb_pool_size = 'big'\n", encoding="utf-8")
    line = one_line_error(run_cli(path, "db", "current"))
    assert "configuration error" in line
    assert "db_pool_size" in line

    line = one_line_error(run_cli(tmp_path / "absent.toml", "db", "current"))
    assert "cannot read config file" in line


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_unknown_revision_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobmon.sqlite'}"
    path = config_file(tmp_path, DbUrls("sqlite", url, url, url))
    line = one_line_error(run_cli(path, "db", "upgrade", "nosuchrev"))
    assert "nosuchrev" in line


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_unusable_url_is_one_clear_line(tmp_path: Path) -> None:
    path = config_file(tmp_path, DbUrls("sqlite", "nonsense", "nonsense", "nonsense"))
    line = one_line_error(run_cli(path, "db", "current"))
    assert "not a usable database URL" in line


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_usage_errors(tmp_path: Path) -> None:
    done = run_cli(None, "db", "downgrade")
    assert done.returncode == 2
    assert "REV" in done.stderr
    done = run_cli(None, "serve", "--services", "state,reaper")
    assert done.returncode == 2
    assert "--services" in done.stderr


@pytest.mark.slow  # runs jobmon-server as a subprocess
def test_cli_serve_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobmon.sqlite'}"
    path = config_file(tmp_path, DbUrls("sqlite", url, url, url))
    line = one_line_error(run_cli(path, "serve", "--host", "0.0.0.0"))
    assert "loopback" in line
