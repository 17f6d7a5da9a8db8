"""How task instances become Grid Engine jobs: the qsub command line of a single job, and of an array job
whose script maps $SGE_TASK_ID to the task instance. Nothing here runs a command."""

from __future__ import annotations

import datetime
import logging
import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from jobmon.client.executors.base import TaskInstanceSpec
from jobmon.client.executors.sge_output import format_memory_mb, format_runtime, job_name
from jobmon.client.executors.sge_settings import SGESettings

log = logging.getLogger(__name__)

# Environment the jobs get from the submitting client (never JOBMON_SERVER_*: database credentials).
FORWARDED_ENV_PREFIXES = ("JOBMON_CLIENT_", "JOBMON_WORKER_")


class JobBuilder:
    """qsub arguments from the site settings and an instance's compute resources."""

    def __init__(self, settings: SGESettings) -> None:
        self.settings = settings
        self._log_dir: Path | None = None
        self._day = ""

    def log_dir(self) -> Path | None:
        """Today's directory for the jobs' stdout/stderr (made on first use), or None for /dev/null."""
        base = self.settings.log_dir.strip()
        if not base or base.lower() == "none":
            return None
        day = datetime.date.today().isoformat()
        if self._log_dir is None or day != self._day:
            path = Path(os.path.expanduser(base)) / day
            path.mkdir(parents=True, exist_ok=True)
            self._log_dir, self._day = path, day
        return self._log_dir

    def stderr_path(self, name: str, job_id: str, task_id: int | None) -> Path | None:
        """Where Grid Engine writes a job's (or array task's) stderr: <name>.e<job>[.<task>]."""
        out = self.log_dir()
        if out is None:
            return None
        suffix = f"e{job_id}" if task_id is None else f"e{job_id}.{task_id}"
        return out / f"{job_name(name)}.{suffix}"

    def memory_limit_mb(self, spec: TaskInstanceSpec) -> int:
        """The whole job's memory request: the task's plus the worker's overhead."""
        return spec.memory_mb + self.settings.worker_memory_mb if spec.memory_mb > 0 else 0

    def resource_args(self, spec: TaskInstanceSpec) -> list[str]:
        """-q, -pe, -l, -P for an instance's compute resources."""
        s = self.settings
        args: list[str] = []
        queue = spec.queue or s.queue
        if queue:
            args += ["-q", queue]
        cores = max(1, spec.num_cores)
        if cores > 1:
            args += ["-pe", s.parallel_environment, str(cores)]
        requests: list[str] = []
        total_mb = self.memory_limit_mb(spec)
        if total_mb > 0:
            per_request = -(-total_mb // cores) if s.memory_per_slot else total_mb
            requests += [f"{res}={format_memory_mb(per_request)}" for res in s.memory_resources]
        if spec.runtime_s > 0 and s.runtime_resource:
            requests.append(f"{s.runtime_resource}={format_runtime(spec.runtime_s)}")
        if requests:
            args += ["-l", ",".join(requests)]
        if s.project:
            args += ["-P", s.project]
        return args

    def env_args(self) -> list[str]:
        pairs = [(k, v) for k, v in sorted(os.environ.items())
                 if k == "JOBMON_CONFIG" or k.startswith(FORWARDED_ENV_PREFIXES)]
        pairs += list(self.settings.env)
        usable = []
        for key, value in pairs:
            if "," in value or "\n" in value:
                log.warning("not passing %s to Grid Engine jobs: qsub -v cannot carry a comma or newline",
                            key)
                continue
            usable.append(f"{key}={value}")
        return ["-v", ",".join(usable)] if usable else []

    def common_args(self, name: str) -> list[str]:
        s = self.settings
        args = ["-terse", "-N", job_name(name), "-j", "n", "-r", "n"]
        out = self.log_dir()
        target = str(out) if out is not None else "/dev/null"
        args += ["-o", target, "-e", target]
        args += ["-wd", s.working_dir or os.getcwd()]
        if s.verify:
            args += ["-w", "e"]
        args += self.env_args()
        return args

    def single_job(self, spec: TaskInstanceSpec, worker_command: Sequence[str]) -> list[str]:
        """The whole qsub command line for one instance as a single job running ``worker_command``."""
        return ["qsub", *self.common_args(spec.name), *self.resource_args(spec),
                *self.settings.extra_qsub_args, "-b", "y", *worker_command]

    def array_job(self, specs: Sequence[TaskInstanceSpec], name: str) -> list[str]:
        """The qsub command line of an array job of ``specs`` (same resources); its script goes on stdin."""
        return ["qsub", *self.common_args(name), *self.resource_args(specs[0]),
                *self.settings.extra_qsub_args, "-t", f"1-{len(specs)}", "-S", "/bin/sh"]


def array_script(specs: Sequence[TaskInstanceSpec], worker_command: Sequence[str]) -> str:
    """Job script of an array job: task i runs the worker of specs[i-1]. ``worker_command`` is the worker's
    command line for task instance 1, the template of every task's. Sent on qsub's stdin, so Grid Engine
    spools it (no shared file needed)."""
    worker = shlex.quote(worker_command[0])
    rest = worker_command[3:]  # after "--task-instance-id", "1"
    cases = "".join(f"{i}) ti={spec.task_instance_id} ;;\n" for i, spec in enumerate(specs, 1))
    return (
        "#!/bin/sh\n"
        "# jobmon task instances of this array job, by SGE_TASK_ID\n"
        f'case "$SGE_TASK_ID" in\n{cases}'
        '*) echo "jobmon: no task instance for array task $SGE_TASK_ID" >&2; exit 2 ;;\n'
        "esac\n"
        f'exec {worker} --task-instance-id "$ti" {" ".join(shlex.quote(p) for p in rest)}\n'
    )


def array_name(specs: Sequence[TaskInstanceSpec]) -> str:
    """An array job's name: the longest common prefix of its instances' names, without a trailing
    counter."""
    names = [spec.name for spec in specs]
    prefix = names[0] if names else ""
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip("0123456789_-.:= ")
    return prefix or "jobmon_array"

