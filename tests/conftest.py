"""Shared fixtures: a database per test (SQLite, and real MariaDB where the harness can start one), the
service app built on it, and its test client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobmon.config import ClientConfig, JobmonConfig, ServerConfig


@dataclass(frozen=True)
class DbUrls:
    backend: str
    read_write: str
    read_only: str
    migrate: str


def _sqlite_urls(tmp_path: Path) -> DbUrls:
    url = f"sqlite:///{tmp_path / 'jobmon.sqlite'}"
    return DbUrls("sqlite", url, url, url)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbUrls]:
    """An empty, migrated jobmon database on each backend."""
    from jobmon.server import migrate

    if request.param == "sqlite":
        urls = _sqlite_urls(tmp_path)
    else:
        urls = request.getfixturevalue("mariadb_database")
    migrate.upgrade(urls.migrate)
    yield urls


@pytest.fixture
def server_config(db_urls: DbUrls) -> JobmonConfig:
    return JobmonConfig(
        server=ServerConfig(db_url=db_urls.read_write, db_url_read_only=db_urls.read_only,
                            db_url_migrate=db_urls.migrate),
        client=ClientConfig(),
    )


@pytest.fixture
def app(server_config: JobmonConfig):  # type: ignore[no-untyped-def]
    from jobmon.server.app import create_app

    return create_app(server_config)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
