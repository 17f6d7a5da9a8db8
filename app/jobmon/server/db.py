"""Engines and sessions. Each service gets its own engine built from its own credentials: the State
Manager's read-write URL, or the read-only URL for the Query Service and the Visualization server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, create_engine, event, func, literal_column, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


def make_engine(url: str, pool_size: int = 5, pool_recycle: int = 3600) -> Engine:
    """Build an engine whose sessions see UTC timestamps, whatever the server's time zone."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if ":memory:" in url or url in {"sqlite://", "sqlite:///"}:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine

    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=pool_recycle,
        # A ping on checkout survives a database restart without a failed request.
        pool_pre_ping=True,
        # Every Session ends its transaction (commit or rollback) before it returns the connection, so
        # the pool's own ROLLBACK on return would be a wasted round trip on every request.
        pool_reset_on_return=None,
    )

    @event.listens_for(engine, "connect")
    def _utc_session(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SET time_zone = '+00:00'")
        cur.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One state change is one transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def db_now(session: Session) -> datetime:
    """The database's clock, naive UTC. Every deadline (heartbeat, report-by) is judged by it."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        value = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return datetime.fromisoformat(value)
    return session.execute(select(func.utc_timestamp(6))).scalar_one()  # type: ignore[no-any-return]


def db_deadline(session: Session, seconds: float) -> datetime | ColumnElement[datetime]:
    """``now + seconds`` by the database's clock, for an UPDATE's SET clause. On MariaDB it is computed
    inside the statement, which saves the round trip of reading the clock first (hot routes)."""
    if session.get_bind().dialect.name == "sqlite":
        return db_now(session) + timedelta(seconds=seconds)
    micros = int(seconds * 1_000_000)
    return func.timestampadd(literal_column("MICROSECOND"), micros, func.utc_timestamp(6))
