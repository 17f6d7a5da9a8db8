"""The qpid table, with the table and column names a site's configuration gives.

Default schema (MariaDB)::

    CREATE TABLE job_usage (
      job_number    BIGINT NOT NULL,        -- Grid Engine job number
      task_number   INT NOT NULL DEFAULT 0, -- array task number; 0 for a plain job
      maxrss_bytes  BIGINT NULL,            -- peak resident set size (accounting ru_maxrss x 1024)
      maxvmem_bytes BIGINT NULL,            -- peak virtual memory (accounting maxvmem)
      wallclock_s   DOUBLE NULL,            -- accounting ru_wallclock
      exit_status   INT NULL,
      hostname      VARCHAR(255) NULL,
      end_time      DATETIME NOT NULL,      -- UTC; Grid Engine reuses job numbers, so it is in the key
      PRIMARY KEY (job_number, task_number, end_time)
    )

jobmon-qpid reads only the job, task, max RSS, wallclock and end time columns, so a site's own table needs
only those (named in [qpid]; the end time is optional).
"""

from __future__ import annotations

import re

from sqlalchemy import BigInteger, Column, DateTime, Double, Integer, MetaData, String, Table

from jobmon.core.config import QpidConfig

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class QpidSchemaError(ValueError):
    """A configured table or column name is not a plain identifier."""


def _ident(name: str, what: str) -> str:
    if not _IDENT.match(name):
        raise QpidSchemaError(f"[qpid] {what} {name!r} is not a plain SQL identifier")
    return name


def qpid_table(config: QpidConfig, metadata: MetaData | None = None) -> Table:
    """The qpid usage table as the configuration names it (the default schema's other columns too)."""
    return Table(
        _ident(config.table, "table"), metadata or MetaData(),
        Column(_ident(config.job_column, "job_column"), BigInteger, primary_key=True, autoincrement=False),
        Column(_ident(config.task_column, "task_column"), Integer, primary_key=True, autoincrement=False,
               default=0),
        Column(_ident(config.maxrss_column, "maxrss_column"), BigInteger, nullable=True),
        Column("maxvmem_bytes", BigInteger, nullable=True),
        Column(_ident(config.wallclock_column, "wallclock_column"), Double, nullable=True),
        Column("exit_status", Integer, nullable=True),
        Column("hostname", String(255), nullable=True),
        Column(_ident(config.end_time_column or "end_time", "end_time_column"), DateTime, primary_key=True),
    )


def executor_key(executor_id: str) -> tuple[int, int] | None:
    """(job number, task number) of a Grid Engine executor id ``job`` or ``job.task``; None if it is not
    one (then no accounting can ever match it)."""
    job, _, task = executor_id.strip().partition(".")
    if not job.isdigit() or (task and not task.isdigit()):
        return None
    return int(job), int(task or 0)
