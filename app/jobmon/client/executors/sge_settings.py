"""The Grid Engine executor's site settings: the ``[sge]`` table of /etc/jobmon/sge.toml (or the file named
by JOBMON_SGE_CONFIG), then JOBMON_SGE_<KEY> environment variables, then keyword arguments."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobmon.client.executors.base import ExecutorError
from jobmon.core.config import ConfigError, parse_bool, read_toml

DEFAULT_SETTINGS_PATH = Path("/etc/jobmon/sge.toml")
ENV_PREFIX = "JOBMON_SGE_"
SUBMIT_MODES = ("array", "parallel", "serial")


@dataclass(frozen=True)
class SGESettings:
    """Site settings of the Grid Engine executor."""

    # Queue for instances whose compute resources name none; empty: Grid Engine chooses.
    queue: str = ""
    # -P project; empty: none.
    project: str = ""
    # Parallel environment for instances with more than one core.
    parallel_environment: str = "smp"
    # Resources the memory request is given as: h_vmem (enforced), mem_free (scheduling only), ...
    memory_resources: tuple[str, ...] = ("h_vmem",)
    # Memory complexes are per slot (consumable YES, Grid Engine's default): request memory / cores.
    memory_per_slot: bool = True
    # Added to each memory request: the worker's own virtual memory (Python, its threads) counts
    # against h_vmem, and the task's command should get what the task asked for.
    worker_memory_mb: int = 256
    # Resource the runtime request is given as (h_rt: SIGKILL at the limit); empty: none.
    runtime_resource: str = "h_rt"
    # Directory for the jobs' stdout/stderr ("~" is the submitting user's home; a subdirectory per day
    # is made); "none": /dev/null.
    log_dir: str = "~/.jobmon/sge"
    # -wd for the jobs; empty: the client's working directory.
    working_dir: str = ""
    # jobmon-worker on the execution hosts; empty: the one beside this Python, else on PATH.
    worker_executable: str = ""
    # How a launch of many instances is submitted: "array" (array jobs for instances with the same
    # resources, the rest in parallel), "parallel" (one qsub each, submit_parallelism at a time),
    # "serial" (one qsub after another).
    submit_mode: str = "array"
    submit_parallelism: int = 4
    array_max_tasks: int = 1000
    # Seconds between qstat passes; a killed job is noticed within this (plus qacct's flush).
    reconcile_interval: float = 10.0
    # Seconds to wait for a vanished job's accounting record before reporting it U without one.
    accounting_grace: float = 120.0
    # qsub -w e: refuse a job that could never run (e.g. more memory than any host has).
    verify: bool = False
    # Also let the worker enforce the limits itself (--memory-limit-mb/--runtime-limit-s, RSS-based):
    # for sites whose memory resource is not enforced (mem_free only).
    worker_limits: bool = False
    extra_qsub_args: tuple[str, ...] = ()
    # Extra environment for the jobs (qsub -v).
    env: tuple[tuple[str, str], ...] = ()
    # Directory of qsub/qstat/qacct/qdel; empty: PATH.
    bin_dir: str = ""
    command_timeout: float = 120.0
    # The user whose jobs qstat lists; empty: the current user.
    user: str = ""

    def __post_init__(self) -> None:
        if self.submit_mode not in SUBMIT_MODES:
            raise ValueError(f"submit_mode must be one of {SUBMIT_MODES}, got {self.submit_mode!r}")
        for name in ("submit_parallelism", "array_max_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.worker_memory_mb < 0:
            raise ValueError(f"worker_memory_mb must be >= 0, got {self.worker_memory_mb}")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None,
             **overrides: Any) -> SGESettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        chosen = path or env.get("JOBMON_SGE_CONFIG") or (
            DEFAULT_SETTINGS_PATH if DEFAULT_SETTINGS_PATH.exists() else None)
        if chosen:
            try:
                data = read_toml(chosen, "Grid Engine settings")
            except ConfigError as exc:
                raise ExecutorError(str(exc)) from exc
            table = data.get("sge", {})
            if not isinstance(table, dict):
                raise ExecutorError(f"{chosen}: [sge] must be a table")
            values.update(table)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in fields:
            env_name = f"{ENV_PREFIX}{key.upper()}"
            if env_name in env:
                values[key] = env[env_name]
        values.update(overrides)
        unknown = set(values) - set(fields)
        if unknown:
            raise ExecutorError(f"unknown Grid Engine setting(s) {sorted(unknown)}")
        return cls(**{key: _coerce(key, value, fields[key].default) for key, value in values.items()})


def _coerce(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return parse_bool(value)
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        if key == "env":
            if isinstance(value, Mapping):
                return tuple((str(k), str(v)) for k, v in value.items())
            if isinstance(value, str):  # "A=1,B=2"
                pairs = [part.partition("=") for part in value.split(",") if part.strip()]
                return tuple((k.strip(), v) for k, _, v in pairs)
            return tuple((str(k), str(v)) for k, v in value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(shlex.split(value)) if key == "extra_qsub_args" else tuple(
                    part.strip() for part in value.split(",") if part.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError):
        raise ExecutorError(f"Grid Engine setting {key}: cannot use {value!r}") from None
