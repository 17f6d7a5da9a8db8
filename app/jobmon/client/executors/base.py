"""The executor interface: how the client hands task instances to something that runs them.

The shape follows what a batch scheduler offers, so Grid Engine (qsub/qstat/qacct/qdel) and Slurm fit
beside the local executors:

- ``submit`` launches ``jobmon-worker`` for one instance and returns the scheduler's id for it (qsub's job
  id, a local pid), or None when the submission failed (the client then reports ``no_executor_id``);
- ``reconcile`` names instances whose process vanished or died without a final report from its worker
  (qstat no longer knows the job, qacct says it hit h_vmem, a local process exited abnormally);
- ``terminate`` kills instances (qdel);
- ``usage`` reads accounting for a finished instance (qacct); local executors have none, the worker
  measures usage itself.

The worker does the reporting (running, heartbeats, done/error); the executor only launches and watches.
"""

from __future__ import annotations

import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from jobmon.core.states import TaskInstanceStatus


@dataclass(frozen=True)
class TaskInstanceSpec:
    """One instance as ``/instantiate`` answered it: what to run and what it may use."""

    task_instance_id: int
    task_id: int
    name: str
    command: str
    queue: str
    num_cores: int
    memory_mb: int
    runtime_s: int

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> TaskInstanceSpec:
        return cls(
            task_instance_id=int(data["task_instance_id"]),
            task_id=int(data["task_id"]),
            name=str(data.get("name") or f"task_{data['task_id']}"),
            command=str(data.get("command") or ""),
            queue=str(data.get("queue") or ""),
            num_cores=int(data.get("num_cores") or 1),
            memory_mb=int(data.get("memory_mb") or 0),
            runtime_s=int(data.get("runtime_s") or 0),
        )


@dataclass(frozen=True)
class LostInstance:
    """An instance whose process is gone without (necessarily) having reported: the client posts it as
    an error with this status (U unknown, Z resource). If the worker did report, the server ignores it."""

    task_instance_id: int
    status: TaskInstanceStatus
    description: str


class ExecutorError(RuntimeError):
    """The executor cannot work at all (e.g. ``jobmon-worker`` is not installed)."""


def find_worker_executable() -> str:
    """``jobmon-worker`` installed beside this Python (the same venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "jobmon-worker"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("jobmon-worker")
    if found:
        return found
    raise ExecutorError(
        f"jobmon-worker not found beside {sys.executable} nor on PATH; install the jobmon package"
    )


class Executor(ABC):
    """Base class. Subclasses set ``name`` (sent to the server as executor type) and implement the
    abstract methods."""

    name: ClassVar[str] = ""
    # True when submit() runs the instance to completion before returning: there is nothing left to
    # mark as "submitted" then (the worker already reported running and its outcome).
    submit_blocks: ClassVar[bool] = False

    def __init__(
        self, worker_executable: str | None = None, worker_heartbeat_interval: float | None = None
    ) -> None:
        self.worker_executable = worker_executable
        self.service_url = ""
        # None: the worker's own configuration decides.
        self.worker_heartbeat_interval = worker_heartbeat_interval
        self.started = False

    def configure(self, service_url: str, worker_heartbeat_interval: float | None = None) -> None:
        """Called by the workflow before ``start``: where workers report, and how often."""
        self.service_url = service_url
        if worker_heartbeat_interval is not None:
            self.worker_heartbeat_interval = worker_heartbeat_interval

    def start(self) -> None:
        if self.worker_executable is None:
            self.worker_executable = find_worker_executable()
        self.started = True

    def stop(self) -> None:
        """Terminate whatever is still running and release resources. Safe to call twice."""
        self.terminate(self.active_executor_ids())
        self.started = False

    @abstractmethod
    def submit(self, instance: TaskInstanceSpec) -> str | None:
        """Launch the worker for ``instance``; the executor id, or None if it could not be launched."""

    def prepare_submit(self, instances: Sequence[TaskInstanceSpec]) -> None:
        """Called with every instance of one launch before ``submit`` is called for each of them, so a
        scheduler that takes many at once (Grid Engine array jobs, parallel qsubs) can submit them
        together; ``submit`` then answers from that. The default does nothing."""
        return None

    @abstractmethod
    def reconcile(self) -> list[LostInstance]:
        """Instances that died or vanished since the last call without a final report."""

    @abstractmethod
    def terminate(self, executor_ids: Iterable[str]) -> None:
        """Kill these instances (their workers and commands)."""

    @abstractmethod
    def active_executor_ids(self) -> list[str]:
        """Ids of instances this executor launched that may still be running."""

    def usage(self, executor_id: str) -> dict[str, Any] | None:
        """Accounting of a finished instance (wallclock, cpu, maxrss), if the scheduler keeps any."""
        return None

    def capacity(self) -> int | None:
        """How many more instances may be submitted now; None for no local limit (a batch queue)."""
        return None

    def task_instance_ids(self) -> set[int]:
        """Task instances this executor still watches (the client checks overdue instances against it)."""
        return set()

    def worker_command(self, instance: TaskInstanceSpec) -> list[str]:
        if not self.service_url:
            raise ExecutorError(f"{type(self).__name__} was not configured with a service URL")
        worker = self.worker_executable or find_worker_executable()
        cmd = [worker, "--task-instance-id", str(instance.task_instance_id),
               "--service-url", self.service_url]
        if instance.memory_mb > 0:
            cmd += ["--memory-limit-mb", str(instance.memory_mb)]
        if instance.runtime_s > 0:
            cmd += ["--runtime-limit-s", str(instance.runtime_s)]
        if self.worker_heartbeat_interval is not None:
            cmd += ["--heartbeat-interval", f"{self.worker_heartbeat_interval:g}"]
        return cmd
