"""One configuration object for every Jobmon process.

Values come from, in increasing precedence:
  1. the defaults below;
  2. a TOML file: the path in ``JOBMON_CONFIG``, else ``/etc/jobmon/jobmon.toml`` if it exists;
  3. environment variables ``JOBMON_<SECTION>_<KEY>`` (e.g. ``JOBMON_CLIENT_SERVICE_URL``).

The file holds sections ``[client]``, ``[server]``, ``[worker]``, ``[reaper]`` and ``[qpid]``.
Database URLs and the Slack token are secrets, so the deployed file is mode 0600 and never committed;
nothing secret has a default here.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/jobmon/jobmon.toml")
ENV_PREFIX = "JOBMON_"


class ConfigError(ValueError):
    """The configuration file or an override is unreadable or has a wrong value."""


@dataclass(frozen=True)
class ClientConfig:
    service_url: str = "http://127.0.0.1:8070"
    # How often the client heartbeats its workflow run, and how many missed beats make it lost.
    heartbeat_interval: float = 30.0
    report_by_factor: float = 3.1
    request_timeout: float = 60.0
    request_retries: int = 8
    # Seconds between polls of task status while a workflow runs.
    poll_interval: float = 2.0
    bind_chunk_size: int = 2000


@dataclass(frozen=True)
class ServerConfig:
    # State Manager: read-write credentials. Query Service and Visualization: read-only credentials.
    db_url: str = "sqlite:///jobmon.sqlite"
    db_url_read_only: str = ""
    # Migrations run as a user allowed DDL; empty means db_url.
    db_url_migrate: str = ""
    db_pool_size: int = 5
    db_pool_recycle: int = 3600
    log_level: str = "INFO"
    # Largest JSON body a route accepts, in bytes (a bind chunk of several thousand tasks fits).
    max_request_bytes: int = 64 * 1024 * 1024

    @property
    def read_only_url(self) -> str:
        return self.db_url_read_only or self.db_url

    @property
    def migrate_url(self) -> str:
        return self.db_url_migrate or self.db_url


@dataclass(frozen=True)
class WorkerConfig:
    heartbeat_interval: float = 30.0
    report_by_factor: float = 3.1
    # Bytes of the command's stderr kept for the error log.
    stderr_tail_bytes: int = 10_000
    # Seconds between samples of the command's memory.
    sample_interval: float = 0.2


@dataclass(frozen=True)
class ReaperConfig:
    """The workflow reaper (``jobmon-reaper``). It reaches the service at [client] service_url."""

    # Seconds between loops (Guppy: 10 minutes).
    poll_interval: float = 600.0
    # A run in R is lost when its heartbeat deadline passed this many seconds ago (Guppy: 5 minutes).
    loss_threshold: float = 300.0
    # A run in G/B that neither moved nor heartbeated for this long is aborted.
    stuck_threshold: float = 3600.0
    # A task instance in I/B/R is lost this many seconds after its report-by deadline.
    overdue_threshold: float = 300.0
    # Rows asked for and moved per request.
    batch_size: int = 500
    # Slack: no token means notifications off (one warning at start).
    slack_token: str = ""
    slack_base_url: str = "https://slack.com/api/"
    slack_channel: str = "#jobmon-alerts"
    slack_timeout: float = 10.0
    # Retries after a 429 (slack-sdk's RateLimitErrorRetryHandler waits Retry-After each time).
    slack_rate_limit_retries: int = 3
    # Touched after every completed loop; the container's health check reads its age. Empty: none.
    health_file: str = ""
    log_level: str = "INFO"


@dataclass(frozen=True)
class QpidConfig:
    """The qpid max-RSS integration (``jobmon-qpid``) and the accounting collector
    (``jobmon-qpid-collector``)."""

    # The jobmon database as the qpid-integration user (SELECT and UPDATE of the usage columns only).
    db_url: str = ""
    # The qpid accounting database (read by jobmon-qpid, written by the collector).
    qpid_db_url: str = ""
    poll_interval: float = 60.0
    # Rows per UPDATE statement (at least 100) and most instances handled per loop (the bounded backlog).
    batch_size: int = 1000
    max_backlog: int = 20_000
    # Comma-separated executor types whose executor_id is a Grid Engine job[.task] number.
    executor_types: str = "sge"
    # Instances that finished more than this many days ago and never got accounting are no longer tried.
    max_age_days: float = 7.0
    # The qpid schema (see docs/operations.md); names are checked to be plain identifiers.
    table: str = "job_usage"
    job_column: str = "job_number"
    task_column: str = "task_number"
    maxrss_column: str = "maxrss_bytes"
    wallclock_column: str = "wallclock_s"
    # When the job ended (UTC): Grid Engine reuses job numbers (after wrapping, or a new cell), so a row
    # only matches an instance submitted before it ended. Empty: the site's table has no such column.
    end_time_column: str = "end_time"
    # Collector: the Grid Engine accounting file it tails, and where it keeps its read offset.
    accounting_file: str = "/var/lib/gridengine/default/common/accounting"
    offset_file: str = "/var/lib/jobmon/qpid/collector.offset"
    collector_interval: float = 5.0
    health_file: str = ""
    log_level: str = "INFO"


@dataclass(frozen=True)
class JobmonConfig:
    client: ClientConfig = field(default_factory=ClientConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    reaper: ReaperConfig = field(default_factory=ReaperConfig)
    qpid: QpidConfig = field(default_factory=QpidConfig)
    source: str = "defaults"

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> JobmonConfig:
        env = os.environ if environ is None else environ
        file_path = _choose_path(path, env)
        data: dict[str, Any] = {}
        source = "defaults"
        if file_path is not None:
            data = read_toml(file_path, "config file")
            source = str(file_path)
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise ConfigError(f"config file {file_path}: unknown section(s) {sorted(unknown)}")
        sections = {
            name: _build_section(klass, data.get(name, {}), name, env)
            for name, klass in _SECTIONS.items()
        }
        return cls(source=source, **sections)


_SECTIONS: dict[str, type[Any]] = {
    "client": ClientConfig, "server": ServerConfig, "worker": WorkerConfig, "reaper": ReaperConfig,
    "qpid": QpidConfig,
}


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A TOML file's tables, or a ConfigError naming ``what`` and the path."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from exc


def parse_bool(value: Any) -> bool:
    """A boolean from TOML or from an environment variable's text; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


def _choose_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("JOBMON_CONFIG"):
        return Path(env["JOBMON_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def _build_section(klass: type[Any], values: Any, name: str, env: Mapping[str, str]) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config section [{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(klass)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"config section [{name}]: unknown key(s) {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for key, fld in fields.items():
        env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_name in env:
            kwargs[key] = _coerce(env[env_name], fld.type, env_name)
        elif key in values:
            kwargs[key] = _coerce(values[key], fld.type, f"[{name}] {key}")
    return klass(**kwargs)


def _coerce(value: Any, type_name: Any, where: str) -> Any:
    kind = {"str": str, "int": int, "float": float, "bool": bool}[str(type_name)]
    if kind is bool:
        try:
            return parse_bool(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a boolean, got {value!r}") from None
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(value, bool) or (kind is int and isinstance(value, float)):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}") from None
