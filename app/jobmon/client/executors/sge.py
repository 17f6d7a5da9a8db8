"""Grid Engine executor: each task instance is a qsub job running the node's ``jobmon-worker``.

- ``submit``: qsub -terse with the job name, -o/-e, -q queue, -pe for more than one core, memory as h_vmem
  (and/or mem_free: ``memory_resources``), runtime as h_rt, -wd, -P project; the job id is the executor
  id (an array task is "<job>.<task>"). No id (qsub failed): None, and the client reports W.
- ``prepare_submit``: the client hands over every instance of one launch first, so they are submitted
  together: instances with the same resources become one array job (``-t 1-N``; the job script maps
  $SGE_TASK_ID to the task instance), the rest are single jobs submitted by a small pool of parallel
  qsubs (``submit_mode``; docs/gridengine.md has the measurements behind the default).
- ``reconcile`` (at most every ``reconcile_interval`` s): qstat -xml for the user's jobs. A job in an
  error state (Eqw) is deleted and reported U with Grid Engine's reason. A job that vanished is looked up
  on the server: if its worker never reported an outcome, qacct -j says why it ended: killed over h_vmem
  or h_rt -> Z (the server retries with more), anything else -> U; the description (error log) carries
  qacct's figures and the tail of the job's stderr file.
- ``terminate``: qdel. ``usage``: qacct's figures for a finished job.

The site settings are ``sge_settings.SGESettings``; ``sge_submission`` builds the qsub command lines and
``sge_output`` reads what the commands print.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobmon.client.executors import sge_output
from jobmon.client.executors.base import (
    Executor,
    ExecutorError,
    LostInstance,
    TaskInstanceSpec,
    find_worker_executable,
)
from jobmon.client.executors.sge_output import (
    MIB,
    AccountingRecord,
    QstatJob,
    SgeOutputError,
    classify_accounting,
    parse_qacct,
    parse_qstat_j_errors,
    parse_qstat_xml,
    parse_qsub_terse,
)
from jobmon.client.executors.sge_settings import SGESettings
from jobmon.client.executors.sge_submission import JobBuilder, array_name, array_script
from jobmon.core import routes
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.core.states import TASK_INSTANCE_FINAL_STATES
from jobmon.core.states import TaskInstanceStatus as TI

log = logging.getLogger(__name__)

__all__ = ["SGEExecutor", "SGESettings", "SgeCommandError"]

STDERR_TAIL_BYTES = 2000


class SgeCommandError(ExecutorError):
    """A Grid Engine command failed (it printed why)."""


@dataclass
class _Job:
    spec: TaskInstanceSpec
    executor_id: str
    job_id: str
    task_id: int | None
    stderr_path: Path | None
    memory_limit: int | None       # bytes, the whole job's h_vmem
    runtime_limit: float | None    # seconds
    submitted: float = field(default_factory=time.monotonic)
    vanished: float | None = None  # monotonic time qstat first missed it


class SGEExecutor(Executor):
    """``SGEExecutor(**settings)``; keyword arguments override the site settings (``SGESettings``)."""

    name = "sge"

    def __init__(self, settings: SGESettings | None = None, *, worker_executable: str | None = None,
                 worker_heartbeat_interval: float | None = None, **overrides: Any) -> None:
        self.settings = settings or SGESettings.load(**overrides)
        if settings is not None and overrides:
            self.settings = dataclasses.replace(settings, **overrides)
        super().__init__(worker_executable or self.settings.worker_executable or None,
                         worker_heartbeat_interval)
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._prepared: dict[int, str | Exception | None] = {}
        self._lost: list[LostInstance] = []
        self._last_reconcile = float("-inf")
        self._requester: Requester | None = None
        self.jobs = JobBuilder(self.settings)
        self.user = self.settings.user or _current_user()

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self.worker_executable is None:
            self.worker_executable = find_worker_executable()
        for tool in ("qsub", "qstat", "qacct", "qdel"):
            if not _which(self._tool(tool)):
                raise ExecutorError(
                    f"{tool} not found ({self._tool(tool)}): is this a Grid Engine submit host? Set "
                    "bin_dir in /etc/jobmon/sge.toml [sge] if the commands are not on PATH")
        self.started = True

    def stop(self) -> None:
        """qdel the jobs still queued or running (those that already left qstat need nothing)."""
        ids = self.active_executor_ids()
        if ids:
            try:
                listed = {job.executor_id for job in self.qstat()}
            except (SgeCommandError, SgeOutputError):
                listed = set(ids)
            self.terminate([i for i in ids if i in listed])
            with self._lock:
                self._jobs.clear()
        self.started = False
        if self._requester is not None:
            self._requester.close()
            self._requester = None

    # ---- commands ----------------------------------------------------------------------------------

    def _tool(self, name: str) -> str:
        return str(Path(self.settings.bin_dir) / name) if self.settings.bin_dir else name

    def _run(self, args: Sequence[str], *, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self._tool(args[0]), *args[1:]]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                                  timeout=self.settings.command_timeout,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SgeCommandError(f"{args[0]} failed: {exc}") from exc
        if check and proc.returncode != 0:
            raise SgeCommandError(
                f"{args[0]} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:2000]}")
        return proc

    # ---- building a submission ---------------------------------------------------------------------

    def worker_command(self, instance: TaskInstanceSpec) -> list[str]:
        if not self.settings.worker_limits:
            # Grid Engine enforces h_vmem and h_rt; the worker's own (RSS) limits would only race it.
            instance = dataclasses.replace(instance, memory_mb=0, runtime_s=0)
        return super().worker_command(instance)

    def array_script(self, specs: Sequence[TaskInstanceSpec]) -> str:
        """Job script of an array job: task i runs the worker of specs[i-1]."""
        return array_script(specs, self.worker_command(dataclasses.replace(specs[0], task_instance_id=1)))

    def _track(self, spec: TaskInstanceSpec, job_id: str, task_id: int | None, name: str) -> str:
        executor_id = sge_output.executor_id(job_id, task_id)
        total_mb = self.jobs.memory_limit_mb(spec)
        job = _Job(
            spec=spec, executor_id=executor_id, job_id=job_id, task_id=task_id,
            stderr_path=self.jobs.stderr_path(name, job_id, task_id),
            memory_limit=total_mb * MIB if total_mb > 0 and "h_vmem" in self.settings.memory_resources
            else None,
            runtime_limit=float(spec.runtime_s) if spec.runtime_s > 0 and self.settings.runtime_resource
            else None,
        )
        with self._lock:
            self._jobs[executor_id] = job
        return executor_id

    # ---- submitting --------------------------------------------------------------------------------

    def _qsub_one(self, spec: TaskInstanceSpec) -> str | None:
        try:
            proc = self._run(self.jobs.single_job(spec, self.worker_command(spec)))
            job_id, _ = parse_qsub_terse(proc.stdout)
        except (SgeCommandError, SgeOutputError) as exc:
            log.error("qsub of task instance %d failed: %s", spec.task_instance_id, exc)
            return None
        return self._track(spec, job_id, None, spec.name)

    def _qsub_array(self, specs: Sequence[TaskInstanceSpec]) -> list[str | None]:
        name = array_name(specs)
        args = self.jobs.array_job(specs, name)
        try:
            proc = self._run(args, stdin=self.array_script(specs))
            job_id, _ = parse_qsub_terse(proc.stdout)
        except (SgeCommandError, SgeOutputError) as exc:
            log.error("qsub of an array of %d task instances failed: %s", len(specs), exc)
            return [None] * len(specs)
        return [self._track(spec, job_id, i, name) for i, spec in enumerate(specs, 1)]

    def submit(self, instance: TaskInstanceSpec) -> str | None:
        if instance.task_instance_id not in self._prepared:
            return self._qsub_one(instance)
        prepared = self._prepared.pop(instance.task_instance_id)
        if isinstance(prepared, Exception):
            raise prepared
        return prepared

    def prepare_submit(self, instances: Sequence[TaskInstanceSpec]) -> None:
        """Submit a launch's instances together; ``submit`` then answers each from the results."""
        mode = self.settings.submit_mode
        if mode == "serial" or len(instances) < 2:
            return
        singles: list[TaskInstanceSpec] = list(instances)
        if mode == "array":
            groups: dict[tuple[Any, ...], list[TaskInstanceSpec]] = {}
            for spec in instances:
                key = (spec.queue, spec.num_cores, spec.memory_mb, spec.runtime_s)
                groups.setdefault(key, []).append(spec)
            singles = []
            for group in groups.values():
                if len(group) < 2:
                    singles += group
                    continue
                for start in range(0, len(group), self.settings.array_max_tasks):
                    chunk = group[start:start + self.settings.array_max_tasks]
                    for spec, result in zip(chunk, self._qsub_array(chunk), strict=True):
                        self._prepared[spec.task_instance_id] = result
        if len(singles) > 1:
            with ThreadPoolExecutor(max_workers=self.settings.submit_parallelism,
                                    thread_name_prefix="jobmon-qsub") as pool:
                for spec, result in zip(singles, pool.map(self._qsub_one, singles), strict=True):
                    self._prepared[spec.task_instance_id] = result

    # ---- watching ----------------------------------------------------------------------------------

    def qstat(self) -> list[QstatJob]:
        proc = self._run(["qstat", "-xml", "-u", self.user])
        return parse_qstat_xml(proc.stdout)

    def qacct(self, executor_id: str) -> AccountingRecord | None:
        """The accounting record of a finished job or array task; None if there is none (yet)."""
        job_id, _, task = executor_id.partition(".")
        args = ["qacct", "-j", job_id] + (["-t", task] if task else [])
        proc = self._run(args, check=False)
        if proc.returncode != 0:
            return None
        try:
            records = parse_qacct(proc.stdout)
        except SgeOutputError as exc:
            log.warning("cannot read qacct for job %s: %s", executor_id, exc)
            return None
        matching = [r for r in records if r.executor_id == executor_id]
        # A job number Grid Engine reused after a restart: the newest record is ours.
        return matching[-1] if matching else None

    def _server_status(self, task_instance_id: int) -> str | None:
        if not self.service_url:
            return None
        if self._requester is None:
            self._requester = Requester(self.service_url, timeout=30, retries=2)
        try:
            answer = self._requester.get(routes.task_instance(task_instance_id))
        except JobmonRequestError as exc:
            log.warning("cannot read task instance %d: %s", task_instance_id, exc)
            return None
        return str(answer.get("status", "")) or None

    def _forget(self, executor_id: str) -> _Job | None:
        with self._lock:
            return self._jobs.pop(executor_id, None)

    def reconcile(self) -> list[LostInstance]:
        now = time.monotonic()
        if now - self._last_reconcile >= self.settings.reconcile_interval and self._jobs:
            self._last_reconcile = now
            try:
                self._reconcile(now)
            except (SgeCommandError, SgeOutputError) as exc:
                # qmaster unreachable or busy: nothing is known to be lost; try again next pass.
                log.warning("Grid Engine reconcile skipped: %s", exc)
        lost, self._lost = self._lost, []
        return lost

    def _reconcile(self, now: float) -> None:
        listed = {job.executor_id: job for job in self.qstat()}
        with self._lock:
            tracked = list(self._jobs.values())
        errored = [job for job in tracked if job.executor_id in listed
                   and listed[job.executor_id].in_error and not listed[job.executor_id].deleting]
        if errored:
            self._delete_errored(errored)
        for job in tracked:
            if job.executor_id in listed:
                job.vanished = None
                continue
            if job.vanished is None:
                job.vanished = now
            self._resolve_vanished(job, now)

    def _delete_errored(self, jobs: list[_Job]) -> None:
        reasons: dict[str, str] = {}
        for job_id in sorted({job.job_id for job in jobs}):
            proc = self._run(["qstat", "-j", job_id], check=False)
            reasons[job_id] = "; ".join(parse_qstat_j_errors(proc.stdout)) or "no reason given"
        try:
            self._run(["qdel", *[job.executor_id for job in jobs]], check=False)
        finally:
            for job in jobs:
                self._forget(job.executor_id)
                self._lost.append(LostInstance(
                    job.spec.task_instance_id, TI.UNKNOWN_ERROR,
                    f"Grid Engine job {job.executor_id} was in an error state (Eqw) and has been deleted: "
                    f"{reasons[job.job_id]}"))

    def _resolve_vanished(self, job: _Job, now: float) -> None:
        status = self._server_status(job.spec.task_instance_id)
        # The worker (or someone) already reported the outcome.
        if status in TASK_INSTANCE_FINAL_STATES:
            self._forget(job.executor_id)
            return
        record = self.qacct(job.executor_id)
        if record is None:
            if job.vanished is not None and now - job.vanished < self.settings.accounting_grace:
                return  # accounting not written yet: look again next pass
            description = (f"Grid Engine job {job.executor_id} left qstat without an accounting record "
                           f"(none after {self.settings.accounting_grace:g} s) and its worker never "
                           "reported an outcome")
            verdict_status = TI.UNKNOWN_ERROR
        else:
            verdict = classify_accounting(record, memory_limit=job.memory_limit,
                                          runtime_limit=job.runtime_limit)
            verdict_status, description = verdict.status, verdict.description
        tail = _tail(job.stderr_path)
        if tail:
            description += f"; job stderr ({job.stderr_path}) ends:\n{tail}"
        self._forget(job.executor_id)
        self._lost.append(LostInstance(job.spec.task_instance_id, verdict_status, description))

    # ---- the rest of the interface -----------------------------------------------------------------

    def terminate(self, executor_ids: Iterable[str]) -> None:
        ids = list(executor_ids)
        for start in range(0, len(ids), 200):
            chunk = ids[start:start + 200]
            with self._lock:
                for executor_id in chunk:
                    self._jobs.pop(executor_id, None)
            proc = self._run(["qdel", *chunk], check=False)
            if proc.returncode != 0:
                log.warning("qdel %s: %s", " ".join(chunk), (proc.stderr or proc.stdout).strip()[:500])

    def active_executor_ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def task_instance_ids(self) -> set[int]:
        with self._lock:
            return {job.spec.task_instance_id for job in self._jobs.values()}

    def usage(self, executor_id: str) -> dict[str, Any] | None:
        record = self.qacct(executor_id)
        return None if record is None else record.usage()


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or str(os.getuid())


def _which(tool: str) -> bool:
    return shutil.which(tool) is not None


def _tail(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - STDERR_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
