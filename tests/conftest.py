"""Shared fixtures: a database per test (SQLite, and real MariaDB where the harness can start one), the
service app built on it, its test client, and real uWSGI servers for end-to-end tests.

Fixtures (see each docstring):
  db_urls              DbUrls of a migrated database, parametrized over sqlite and mariadb
  migrated_sqlite_template  session: a SQLite file migrated once, which db_urls and service_db copy
  server_config        JobmonConfig whose [server] URLs are db_urls
  app, client          Flask app (all three services) on server_config, and its test client
  mariadb_server       session: the running MariaDBServer (tests/harness/mariadb.py)
  mariadb_database     DbUrls of a fresh, empty (unmigrated) MariaDB database, dropped afterwards
  uwsgi_service        factory: uwsgi_service(JobmonConfig | DbUrls, services=...) -> base URL
  service_db           DbUrls of a migrated SQLite file database for a served app (uWSGI or in-process)
  service_url          base URL of uWSGI serving all three services on service_db
  service_db_mariadb   DbUrls of a migrated MariaDB database for a uWSGI-served app
  service_url_mariadb  base URL of uWSGI serving all three services on service_db_mariadb
  service_config       JobmonConfig whose client.service_url is service_url (and [server] is service_db)
  fake_slack           a started fake Slack Web API on 127.0.0.1 (tests/fake_slack.py)

MariaDB: if mariadbd is not installed, tests that need it skip with the reason, except under CI=true, where
they fail (CI must never pass by skipping). Tests that use a MariaDB or uWSGI fixture get the ``mariadb`` or
``e2e`` marker automatically, so ``-m "not mariadb"`` deselects them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path

import pytest

from fake_slack import fake_slack  # noqa: F401  (the fake Slack API fixture, for every test)
from harness import in_ci
from harness.mariadb import DbUrls, MariaDBServer, MariaDBStartError, MariaDBUnavailable, database_name
from harness.uwsgi import ALL_SERVICES, UwsgiService, start_uwsgi, stop_all
from jobmon.core.config import ClientConfig, JobmonConfig, ServerConfig

__all__ = ["DbUrls"]

_FAILED = pytest.StashKey[bool]()
MARIADB_FIXTURES = {"mariadb_server"}
E2E_FIXTURES = {"uwsgi_service"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & MARIADB_FIXTURES:
            item.add_marker(pytest.mark.mariadb)
        if names & E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Remember whether the test failed, so uwsgi_service can print the server log only when it helps.
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


def config_for(urls: DbUrls, service_url: str | None = None) -> JobmonConfig:
    """A config whose [server] URLs are those of ``urls`` (and whose client talks to ``service_url``)."""
    client = ClientConfig(service_url=service_url) if service_url else ClientConfig()
    return JobmonConfig(
        server=ServerConfig(
            db_url=urls.read_write, db_url_read_only=urls.read_only, db_url_migrate=urls.migrate
        ),
        client=client,
    )


def _sqlite_urls(directory: Path) -> DbUrls:
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'jobmon.sqlite'}"
    return DbUrls("sqlite", url, url, url)


def _sqlite_path(urls: DbUrls) -> Path:
    return Path(urls.migrate.removeprefix("sqlite:///"))


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session. Migrating takes about 0.3 s and copying the file a
    millisecond, so each test gets a fresh copy (byte for byte what its own migration would have made:
    Alembic's engine leaves the file in rollback-journal mode, with no -wal file beside it)."""
    from jobmon.server import migrate

    urls = _sqlite_urls(tmp_path_factory.mktemp("migrated-template"))
    migrate.upgrade(urls.migrate)
    return _sqlite_path(urls)


def _migrated_sqlite_urls(directory: Path, template: Path) -> DbUrls:
    urls = _sqlite_urls(directory)
    shutil.copyfile(template, _sqlite_path(urls))
    return urls


# -- MariaDB ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """The session's MariaDB server (started on first use, stopped and removed at session end)."""
    # Decided outside the except blocks so the report shows one clear line, not a chained traceback.
    server: MariaDBServer | None = None
    missing = broken = ""
    try:
        server = MariaDBServer.start()
    except MariaDBUnavailable as exc:
        missing = str(exc)
    except MariaDBStartError as exc:
        broken = str(exc)
    if missing and in_ci():
        pytest.fail(f"CI=true, so MariaDB tests may not be skipped: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"MariaDB tests need a local server: {missing}")
    if broken or server is None:
        pytest.fail(f"the MariaDB test server did not start: {broken}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mariadb_database(mariadb_server: MariaDBServer) -> Iterator[DbUrls]:
    """A fresh, empty database (no schema) granted to jobmon_migrator/jobmon_rw/jobmon_ro; dropped after."""
    urls = mariadb_server.create_database()
    try:
        yield urls
    finally:
        mariadb_server.drop_database(database_name(urls.migrate))


# -- in-process app -------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_urls(request: pytest.FixtureRequest, tmp_path: Path) -> DbUrls:
    """An empty, migrated jobmon database on each backend."""
    from jobmon.server import migrate

    if request.param == "sqlite":
        return _migrated_sqlite_urls(tmp_path, request.getfixturevalue("migrated_sqlite_template"))
    urls: DbUrls = request.getfixturevalue("mariadb_database")
    migrate.upgrade(urls.migrate)
    return urls


@pytest.fixture
def server_config(db_urls: DbUrls) -> JobmonConfig:
    return config_for(db_urls)


@pytest.fixture
def app(server_config: JobmonConfig):  # type: ignore[no-untyped-def]
    from jobmon.server.app import create_app

    return create_app(server_config)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


# -- uWSGI ----------------------------------------------------------------------------------------------

@pytest.fixture
def uwsgi_service(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., str]]:
    """Factory: ``uwsgi_service(config_or_urls, services=("state", "query", "viz"), extra_env=None)`` starts
    a real uWSGI (2 processes x 4 threads) on 127.0.0.1:<free port>, waits until each service's health
    check answers, and returns its base URL. Every server it started stops when the test ends; the log of
    each is printed if the test failed."""
    started: list[UwsgiService] = []

    def start(
        target: JobmonConfig | DbUrls,
        services: Iterable[str] = ALL_SERVICES,
        extra_env: dict[str, str] | None = None,
    ) -> str:
        config = target if isinstance(target, JobmonConfig) else config_for(target)
        service = start_uwsgi(config, tmp_path / f"uwsgi{len(started)}", services, extra_env=extra_env)
        started.append(service)
        return service.url

    yield start
    stop_all(started)
    if request.node.stash.get(_FAILED, False):
        for service in started:
            print(f"--- uWSGI {service.url} ({','.join(service.services)}) log ---\n{service.log_tail(100)}")


@pytest.fixture
def service_db(tmp_path: Path, migrated_sqlite_template: Path) -> DbUrls:
    """A migrated SQLite file database for a served app: the one ``service_url`` serves, or one a test
    serves in-process."""
    return _migrated_sqlite_urls(tmp_path / "service-db", migrated_sqlite_template)


@pytest.fixture
def service_url(uwsgi_service: Callable[..., str], service_db: DbUrls) -> str:
    """Base URL (``http://127.0.0.1:<port>``) of uWSGI serving all three services on ``service_db``."""
    return uwsgi_service(service_db)


@pytest.fixture
def service_config(service_url: str, service_db: DbUrls) -> JobmonConfig:
    """The config a client of ``service_url`` uses (its [server] part names ``service_db``)."""
    return config_for(service_db, service_url)


@pytest.fixture
def service_db_mariadb(mariadb_database: DbUrls) -> DbUrls:
    """A migrated MariaDB database for a uWSGI-served app (the one ``service_url_mariadb`` serves)."""
    from jobmon.server import migrate

    migrate.upgrade(mariadb_database.migrate)
    return mariadb_database


@pytest.fixture
def service_url_mariadb(uwsgi_service: Callable[..., str], service_db_mariadb: DbUrls) -> str:
    """Base URL of uWSGI serving all three services on MariaDB: the State Manager as jobmon_rw, the Query
    Service and Visualization as jobmon_ro."""
    return uwsgi_service(service_db_mariadb)
