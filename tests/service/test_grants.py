"""Least privilege is enforced by MariaDB's grants, not by convention: the read-only user cannot write, the
read-write user cannot change the schema, and each service works with only its own credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import requests
from sqlalchemy.engine import make_url

from harness.mariadb import DbUrls
from jobmon.core.config import JobmonConfig, ServerConfig
from jobmon.server import migrate
from jobmon.server.app import create_app

pytestmark = pytest.mark.mariadb

TABLEACCESS_DENIED = 1142  # ER_TABLEACCESS_DENIED_ERROR: "<COMMAND> command denied to user ..."


@pytest.fixture
def migrated(mariadb_database: DbUrls) -> DbUrls:
    migrate.upgrade(mariadb_database.migrate)
    return mariadb_database


@pytest.fixture
def connect() -> Iterator[Callable[[str], Any]]:
    """Open plain pymysql connections from SQLAlchemy URLs; all closed at the end."""
    opened: list[Any] = []

    def open_(url: str) -> Any:
        u = make_url(url)
        conn = pymysql.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                               database=u.database, charset="utf8mb4", autocommit=True)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()


def assert_denied(conn: Any, sql: str) -> None:
    with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as caught:
        cur.execute(sql)
    assert caught.value.args[0] == TABLEACCESS_DENIED, caught.value.args


def test_read_only_user_can_read_but_not_write(migrated: DbUrls, connect: Callable[[str], Any]) -> None:
    ro = connect(migrated.read_only)
    with ro.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM queue")
        assert cur.fetchone()[0] > 0
    assert_denied(ro, "INSERT INTO queue (name, max_cores, max_memory_mb, max_runtime_s) "
                      "VALUES ('x.q', 1, 1, 1)")
    assert_denied(ro, "UPDATE queue SET max_cores = 1")
    assert_denied(ro, "DELETE FROM queue")
    assert_denied(ro, "CREATE TABLE evil (id INT)")


def test_read_write_user_can_write_but_not_change_the_schema(
    migrated: DbUrls, connect: Callable[[str], Any]
) -> None:
    rw = connect(migrated.read_write)
    with rw.cursor() as cur:
        cur.execute("INSERT INTO queue (name, max_cores, max_memory_mb, max_runtime_s) "
                    "VALUES ('grant.q', 1, 1024, 60)")
        cur.execute("UPDATE queue SET max_cores = 2 WHERE name = 'grant.q'")
        cur.execute("DELETE FROM queue WHERE name = 'grant.q'")
        assert cur.rowcount == 1
    assert_denied(rw, "CREATE TABLE evil (id INT)")
    assert_denied(rw, "DROP TABLE queue")
    assert_denied(rw, "ALTER TABLE queue ADD COLUMN evil INT")


def test_migrating_needs_the_migrator(mariadb_database: DbUrls) -> None:
    # Handing the State Manager's URL to the migration is refused by the database, not silently run.
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError) as caught:
        migrate.upgrade(mariadb_database.read_write)
    assert caught.value.orig.args[0] == TABLEACCESS_DENIED


def read_only_config(urls: DbUrls) -> JobmonConfig:
    # The read-side apps get only the read-only credentials: no read-write URL anywhere in their config.
    return JobmonConfig(server=ServerConfig(db_url=urls.read_only, db_url_read_only=urls.read_only,
                                            db_url_migrate=urls.read_only))


def test_query_service_works_on_the_read_only_user(migrated: DbUrls) -> None:
    app = create_app(read_only_config(migrated), services=["query"])
    assert app.extensions["jobmon"].read_write is None
    resp = app.test_client().get("/api/query/health")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["service"] == "query"
    # The state routes are not in this app at all.
    assert app.test_client().get("/api/state/health").status_code == 404


def test_each_uwsgi_app_runs_with_only_its_own_credentials(
    migrated: DbUrls, uwsgi_service: Callable[..., str]
) -> None:
    """The production shape: one uWSGI app per service, selected by JOBMON_SERVICES."""
    rw_only = JobmonConfig(server=ServerConfig(db_url=migrated.read_write, db_url_read_only="",
                                               db_url_migrate=""))
    state_url = uwsgi_service(rw_only, services=["state"])
    query_url = uwsgi_service(read_only_config(migrated), services=["query"])
    viz_url = uwsgi_service(read_only_config(migrated), services=["viz"])

    assert requests.get(f"{state_url}/api/state/health", timeout=10).json()["service"] == "state"
    assert requests.get(f"{query_url}/api/query/health", timeout=10).json()["service"] == "query"
    assert requests.get(f"{viz_url}/api/viz/health", timeout=10).json()["service"] == "viz"
    assert requests.get(f"{query_url}/api/state/health", timeout=10).status_code == 404
    assert requests.get(f"{state_url}/api/query/health", timeout=10).status_code == 404
