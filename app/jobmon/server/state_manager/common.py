"""Helpers shared by the State Manager's route modules: chunking, insert-or-ignore, locking reads, row
loading, deadlines, and the wrapper every route gets (lock-conflict retries)."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import ColumnElement, Row, Table, func, insert, literal_column, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.selectable import GenerativeSelect

from jobmon.server.db import db_now
from jobmon.server.errors import ApiError, NotFound
from jobmon.server.models import Base, Task, TaskResources
from jobmon.server.validation import ID_MAX

T = TypeVar("T")
M = TypeVar("M", bound=Base)
P = ParamSpec("P")
S = TypeVar("S", bound=GenerativeSelect)

log = logging.getLogger(__name__)

# Items per IN list: far below SQLite's 32,766 and MariaDB's 65,535 bound parameters, and small enough
# for the optimizer to use the index as ranges.
CHUNK = 1000


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def table(model: type[Base]) -> Table:
    """The Core table of a model: bulk statements on it skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def _insert_ignoring(session: Session, tbl: Table) -> Any:
    """INSERT IGNORE on MariaDB, INSERT OR IGNORE (ON CONFLICT DO NOTHING) on SQLite."""
    if session.get_bind().dialect.name == "sqlite":
        return sqlite_insert(tbl).on_conflict_do_nothing()
    return insert(tbl).prefix_with("IGNORE")


def insert_ignore(session: Session, tbl: Table, rows: list[dict[str, Any]]) -> int:
    """Insert rows in one executemany, skipping any that hit a unique key; answers the rows inserted.

    Concurrent identical binds both get here: the loser's duplicates are skipped by the database instead
    of failing the request, and the caller re-selects ids afterwards.
    """
    if not rows:
        return 0
    result = session.execute(_insert_ignoring(session, tbl), rows)
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def insert_ignore_returning(
    session: Session, tbl: Table, rows: list[dict[str, Any]], *columns: Any,
    constants: dict[str, int | str | datetime] | None = None,
) -> list[Row[Any]]:
    """insert_ignore that answers ``columns`` of the rows it inserted (skipped ones are not returned).

    ``constants`` are the same in every row: they are written once into the SQL text instead of being
    copied into, and escaped for, each of thousands of rows. (SQLAlchemy batches an INSERT ... RETURNING
    itself, so an inline value is safe here; the driver's own executemany batching would not allow it.)
    """
    if not rows:
        return []
    stmt = _insert_ignoring(session, tbl)
    if constants:
        stmt = stmt.values({name: sql_constant(value) for name, value in constants.items()})
    return list(session.execute(stmt.returning(*columns), rows))


def sql_constant(value: int | str | datetime) -> ColumnElement[Any]:
    """A value of the server's own making (an id, a status letter, the database's clock) as SQL text.
    Never caller text: strings are limited to ASCII letters and digits."""
    if isinstance(value, datetime):
        # The format SQLAlchemy stores in SQLite, and one MariaDB reads as DATETIME(6).
        return literal_column("'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'")
    if isinstance(value, bool):
        raise TypeError("a boolean is not a SQL constant here")
    if isinstance(value, int):
        return literal_column(str(int(value)))
    if not (value.isascii() and value.isalnum()):
        raise ValueError(f"not a safe SQL constant: {value!r}")
    return literal_column(f"'{value}'")


def latest(stmt: S) -> S:
    """A locking read (``LOCK IN SHARE MODE`` on MariaDB): it sees rows that concurrent transactions
    committed after ours began. Needed after an insert-or-ignore, whose skipped rows may belong to another
    transaction that REPEATABLE READ's snapshot would hide."""
    return stmt.with_for_update(read=True)


def insert_rows(session: Session, tbl: Table, rows: list[dict[str, Any]]) -> None:
    """A plain bulk insert (executemany) for tables with no natural key to collide on."""
    if rows:
        session.execute(insert(tbl), rows)


def load(session: Session, model: type[M], ident: int, what: str, *, lock: bool = False) -> M:
    """One row by primary key, locked for the transaction when asked, or a 404."""
    if ident > ID_MAX:  # no row has it, and SQLite cannot even bind it
        raise NotFound(f"{what} {ident} not found")
    row = session.get(model, ident, with_for_update=True if lock else None)
    if row is None:
        raise NotFound(f"{what} {ident} not found")
    return row


def missing_ids(
    session: Session, column: InstrumentedAttribute[int], ids: Iterable[int]
) -> list[int]:
    """The ids with no row, looked up in chunks."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for chunk in chunked(wanted):
        found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    return [i for i in wanted if i not in found]


def require_ids(
    session: Session, column: InstrumentedAttribute[int], ids: Iterable[int], what: str
) -> None:
    """404 naming the ids with no row. A COUNT per chunk checks the usual all-present case without
    sending thousands of ids back; only a short count looks for which ones are missing."""
    wanted = sorted(set(ids))
    missing: list[int] = []
    for chunk in chunked(wanted):
        found = session.execute(select(func.count()).where(column.in_(chunk))).scalar_one()
        if found != len(chunk):
            missing += missing_ids(session, column, chunk)
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise NotFound(f"unknown {what} id(s): {shown}{more}")


def deadline(session: Session, seconds: float, now: datetime | None = None) -> datetime:
    """A deadline by the database's clock: never the caller's."""
    return (now or db_now(session)) + timedelta(seconds=seconds)


def insert_resources(session: Session, rows: list[dict[str, Any]], current_type: str) -> None:
    """Insert task_resources rows in bulk and point each task at its newest row of ``current_type``."""
    insert_rows(session, table(TaskResources), rows)
    point_at_newest_resources(session, [row["task_id"] for row in rows], current_type)


def point_at_newest_resources(session: Session, task_ids: Iterable[int], resource_type: str) -> None:
    """task.task_resources_id := the task's newest row of this type, one correlated
    ``UPDATE task SET task_resources_id = (SELECT MAX(id) ...)`` per chunk: the database does the
    matching, and Python builds no per-row SQL."""
    res = table(TaskResources)
    task = table(Task)
    newest = (
        select(func.max(res.c.id))
        .where(res.c.task_id == task.c.id, res.c.resource_type == resource_type)
        .scalar_subquery()
    )
    for chunk in chunked(sorted(set(task_ids))):
        session.execute(update(task).where(task.c.id.in_(chunk)).values(task_resources_id=newest))


# -- every route -------------------------------------------------------------------------------------

# MariaDB: deadlock found (1213), lock wait timeout (1205). Both roll the transaction back; running it
# again is the documented cure.
_LOCK_CONFLICTS = frozenset({1205, 1213})
ATTEMPTS = 4


class DatabaseBusy(ApiError):
    """Lock conflicts outlasted the retries: the caller may try again later (503, like an outage)."""

    status = 503
    kind = "database_busy"


def is_lock_conflict(exc: OperationalError) -> bool:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    if args and args[0] in _LOCK_CONFLICTS:
        return True
    # SQLite: another writer holds the database (or our read snapshot went stale).
    return bool(args) and isinstance(args[0], str) and "database is locked" in args[0]


def write_route(view: Callable[P, T]) -> Callable[P, T]:
    """Wraps every State Manager view.

    Runs the view again when its transaction lost a deadlock or a lock wait: concurrent binds and reports
    touch overlapping rows, and the loser's transaction was rolled back whole, so running the view again
    from the start is safe. (Text the database cannot store, such as JSON's lone UTF-16 surrogates, never
    gets this far: the body's decoder refuses it.)
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return view(*args, **kwargs)
            except OperationalError as exc:
                if not is_lock_conflict(exc):
                    raise
                if attempt == ATTEMPTS:
                    log.error("%s: lock conflict persisted after %d attempts: %s",
                              view.__name__, ATTEMPTS, exc.orig)
                    raise DatabaseBusy("the database is busy; retry later") from None
                log.warning("%s: lock conflict (attempt %d), retrying: %s", view.__name__, attempt,
                            exc.orig)
                # Jittered back-off so the two losers of a deadlock do not collide again.
                time.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    return wrapper
