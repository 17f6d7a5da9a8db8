"""Run task instances as local ``jobmon-worker`` processes, up to N at once."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jobmon.client.executors.base import Executor, LostInstance, TaskInstanceSpec
from jobmon.core.states import TaskInstanceStatus as TI

log = logging.getLogger(__name__)


@dataclass
class _Running:
    spec: TaskInstanceSpec
    proc: subprocess.Popen[bytes]
    files: list[IO[Any]] = field(default_factory=list)
    terminated: bool = False


def describe_exit(pid: int, returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"worker process {pid} was killed by {name} before it reported an outcome"
    return f"worker process {pid} exited with code {returncode} without reporting an outcome"


class MultiprocessExecutor(Executor):
    """Each instance is a ``jobmon-worker`` subprocess in its own session, so it and its command can be
    killed as a group without touching the client. ``parallelism`` bounds how many run at once (default:
    the CPU count); the client never submits more than ``capacity()``.

    With ``log_dir`` each worker's stdout/stderr go to ``<name>.o<id>`` / ``<name>.e<id>`` there (Grid
    Engine's naming); without it they are discarded (the worker sends the stderr tail of a failed command
    to the server anyway).
    """

    name = "multiprocess"

    def __init__(
        self,
        parallelism: int | None = None,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        worker_executable: str | None = None,
        worker_heartbeat_interval: float | None = None,
        terminate_grace: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(worker_executable, worker_heartbeat_interval)
        if parallelism is not None and parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        self.parallelism = parallelism or max(1, os.cpu_count() or 1)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.terminate_grace = terminate_grace
        self.env = env
        self._running: dict[str, _Running] = {}
        self._lost: list[LostInstance] = []

    def start(self) -> None:
        super().start()
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)

    def _outputs(self, spec: TaskInstanceSpec) -> tuple[list[IO[Any]], Any, Any]:
        if self.log_dir is None:
            return [], subprocess.DEVNULL, subprocess.DEVNULL
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name)[:100] or "task"
        out = open(self.log_dir / f"{stem}.o{spec.task_instance_id}", "ab")  # noqa: SIM115
        err = open(self.log_dir / f"{stem}.e{spec.task_instance_id}", "ab")  # noqa: SIM115
        return [out, err], out, err

    def _launch(self, spec: TaskInstanceSpec) -> _Running | None:
        cmd = self.worker_command(spec)
        files, out, err = self._outputs(spec)
        env = {**os.environ, **self.env} if self.env else None
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, env=env)
        except OSError as exc:
            log.error("cannot start worker for task instance %d: %s", spec.task_instance_id, exc)
            for fh in files:
                fh.close()
            return None
        running = _Running(spec, proc, files)
        self._running[str(proc.pid)] = running
        return running

    def submit(self, instance: TaskInstanceSpec) -> str | None:
        running = self._launch(instance)
        return None if running is None else str(running.proc.pid)

    def _reap(self) -> None:
        """Forget exited workers; an abnormal exit becomes a LostInstance for the next reconcile."""
        for executor_id, running in list(self._running.items()):
            rc = running.proc.poll()
            if rc is None:
                continue
            self._finish(executor_id, running, rc)

    def _finish(self, executor_id: str, running: _Running, rc: int) -> None:
        del self._running[executor_id]
        for fh in running.files:
            fh.close()
        # Exit code 0: the worker reported done (or was told to kill itself). Non-zero: it reported an
        # error, or could not report; posting U is harmless in the first case (the server ignores a late
        # U after E/Z/D/K) and is the only record in the second.
        if rc != 0 and not running.terminated:
            self._lost.append(LostInstance(running.spec.task_instance_id, TI.UNKNOWN_ERROR,
                                           describe_exit(running.proc.pid, rc)))

    def reconcile(self) -> list[LostInstance]:
        self._reap()
        lost, self._lost = self._lost, []
        return lost

    def capacity(self) -> int | None:
        self._reap()
        return max(0, self.parallelism - len(self._running))

    def active_executor_ids(self) -> list[str]:
        return list(self._running)

    def task_instance_ids(self) -> set[int]:
        self._reap()
        return {r.spec.task_instance_id for r in self._running.values()}

    def terminate(self, executor_ids: Iterable[str]) -> None:
        """SIGTERM each worker (it kills its command's process group and reports), then SIGKILL the
        workers still alive after ``terminate_grace`` seconds."""
        targets = [(eid, self._running[eid]) for eid in executor_ids if eid in self._running]
        for _, running in targets:
            running.terminated = True
            _signal_group(running.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.terminate_grace
        for executor_id, running in targets:
            try:
                rc = running.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not exit after SIGTERM; sending SIGKILL", executor_id)
                _signal_group(running.proc.pid, signal.SIGKILL)
                rc = running.proc.wait()
            self._finish(executor_id, running, rc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        log.warning("cannot signal process group %d: %s", pgid, exc)
