"""The run loop: drives one bound workflow run until every task is done or nothing more can run.

Each pass: collect instances the executor lost, poll the server for task statuses that changed, queue
the tasks whose upstreams are all done, instantiate as many queued tasks as the concurrency limit and
the executor's capacity allow, and hand each instance to the executor. A separate thread heartbeats the
run (so a long blocking ``submit`` of the sequential executor cannot make the run look lost) and re-reads
the workflow's concurrency limit, which an operator may change while it runs.

The server owns every status; the loop keeps a local copy, refreshed from ``task_statuses?since=``, only
to decide what to ask for next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jobmon.client.executors.base import Executor, TaskInstanceSpec
from jobmon.core import routes
from jobmon.core.config import ClientConfig
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.core.states import TaskInstanceStatus as TI
from jobmon.core.states import TaskStatus as T
from jobmon.core.states import WorkflowRunStatus as WFR
from jobmon.core.states import describe_counts, status_name

log = logging.getLogger(__name__)

READY_STATES = frozenset({T.REGISTERED, T.ERROR_RECOVERABLE, T.ADJUSTING_RESOURCES})
# A full poll now and then, as insurance against any missed change (a task stuck forever otherwise).
FULL_POLL_EVERY = 300.0
PROGRESS_EVERY = 30.0


@dataclass(frozen=True)
class WorkflowRunResult:
    """How a run ended. ``status`` is the run's final status (D done, E error, S stopped, or C/H when
    another process resumed the workflow); ``task_counts`` counts tasks by status letter."""

    workflow_id: int
    workflow_run_id: int
    status: str
    task_counts: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.status == WFR.DONE

    @property
    def num_tasks(self) -> int:
        return sum(self.task_counts.values())

    @property
    def num_done(self) -> int:
        return self.task_counts.get(T.DONE, 0)

    @property
    def num_failed(self) -> int:
        return self.task_counts.get(T.ERROR_FATAL, 0)

    def __str__(self) -> str:
        text = (f"workflow {self.workflow_id} run {self.workflow_run_id}: {status_name(WFR, self.status)} "
                f"after {self.elapsed:.1f} s ({describe_counts(self.task_counts)})")
        return f"{text}: {self.reason}" if self.reason else text


class _Heartbeat(threading.Thread):
    """Heartbeats the run every interval; sets ``lost`` when the server answers a status other than R
    and keeps the concurrency limit current."""

    def __init__(self, requester: Requester, run_id: int, workflow_id: int, config: ClientConfig,
                 wake: threading.Event) -> None:
        super().__init__(name=f"jobmon-heartbeat-{run_id}", daemon=True)
        self.requester = requester
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.interval = config.heartbeat_interval
        self.increment = config.heartbeat_interval * config.report_by_factor
        self.wake = wake
        self.stopping = threading.Event()
        self.lost_status: str | None = None
        self.max_concurrently_running: int | None = None

    def beat(self) -> None:
        answer = self.requester.post(routes.workflow_run_heartbeat(self.run_id),
                                     {"next_report_increment": self.increment})
        status = str(answer.get("status", ""))
        if status != WFR.RUNNING:
            self.lost_status = status
            self.wake.set()
            return
        limit = self.requester.get(routes.workflow_concurrency(self.workflow_id))
        self.max_concurrently_running = int(limit["max_concurrently_running"])

    def run(self) -> None:
        while not self.stopping.is_set() and self.lost_status is None:
            try:
                self.beat()
            except JobmonRequestError as exc:
                # Keep trying: the service may come back before the reaper's threshold.
                log.error("heartbeat of workflow run %d failed: %s", self.run_id, exc)
            except Exception:
                log.exception("heartbeat of workflow run %d failed", self.run_id)
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:  # started
            self.join(timeout=self.requester.timeout + 5)
        self.requester.close()


class Swarm:
    """Runs one bound workflow run. Built by ``Workflow.run``; usable alone with task ids and edges."""

    def __init__(
        self,
        *,
        workflow_id: int,
        workflow_run_id: int,
        statuses: Mapping[int, str],
        upstreams: Mapping[int, Iterable[int]],
        requester: Requester,
        executor: Executor,
        config: ClientConfig,
        max_concurrently_running: int,
        fail_fast: bool = False,
        seconds_until_timeout: float = 36_000,
    ) -> None:
        self.workflow_id = workflow_id
        self.run_id = workflow_run_id
        self.requester = requester
        self.executor = executor
        self.config = config
        self.max_concurrently_running = max_concurrently_running
        self.fail_fast = fail_fast
        self.seconds_until_timeout = seconds_until_timeout

        # Statuses as TaskStatus members, whether they came from the server's JSON or were set here.
        self.status: dict[int, T] = {}
        self.downstream: dict[int, list[int]] = {tid: [] for tid in statuses}
        self.waiting: dict[int, int] = {}
        self.sets: dict[T, set[int]] = {s: set() for s in T}
        self.ready: set[int] = set()
        for tid, ups in upstreams.items():
            for up in ups:
                self.downstream[up].append(tid)
        for tid, status in statuses.items():
            self.status[tid] = T(status)
            self.sets[T(status)].add(tid)
        for tid in statuses:
            ups = list(upstreams.get(tid, ()))
            self.waiting[tid] = sum(1 for up in ups if self.status[up] != T.DONE)
            self._update_ready(tid)

        self._since: str | None = None
        self._last_full_poll = 0.0
        self._wake = threading.Event()
        self._increment = config.heartbeat_interval * config.report_by_factor

    # ---- local view -------------------------------------------------------------------------------

    def _update_ready(self, tid: int) -> None:
        if self.waiting[tid] == 0 and self.status[tid] in READY_STATES:
            self.ready.add(tid)
        else:
            self.ready.discard(tid)

    def set_status(self, tid: int, status: str) -> bool:
        old = self.status.get(tid)
        new = T(status)
        if old is None or old == new:
            return False
        self.status[tid] = new
        self.sets[old].discard(tid)
        self.sets[new].add(tid)
        if (new == T.DONE) != (old == T.DONE):
            step = -1 if new == T.DONE else 1
            for down in self.downstream[tid]:
                self.waiting[down] += step
                self._update_ready(down)
        self._update_ready(tid)
        return True

    def counts(self) -> dict[str, int]:
        """Tasks by status letter."""
        return {status.value: n for status, n in Counter(self.status.values()).items()}

    @property
    def active(self) -> int:
        return len(self.sets[T.INSTANTIATED]) + len(self.sets[T.RUNNING])

    def finished(self) -> bool:
        return not (self.ready or self.sets[T.QUEUED] or self.active)

    # ---- server calls -----------------------------------------------------------------------------

    def poll(self, full: bool = False) -> int:
        """Refresh the local view; the number of tasks whose status changed."""
        params: dict[str, str] = {}
        if self._since is not None and not full:
            params["since"] = self._since
        answer = self.requester.get(routes.task_statuses(self.workflow_id), params)
        changed = 0
        for row in answer.get("tasks", []):
            if self.set_status(int(row["task_id"]), str(row["status"])):
                changed += 1
        # The server looks back a few seconds before "since" itself (writes commit after they are
        # stamped), so its "time" is passed back as is.
        self._since = str(answer["time"])
        return changed

    def queue_ready(self) -> int:
        if not self.ready:
            return 0
        ids = sorted(self.ready)
        queued = 0
        for chunk in _chunks(ids, self.config.bind_chunk_size):
            answer = self.requester.post(routes.queue_tasks(self.run_id),
                                         {"task_ids": chunk})
            for tid in answer.get("queued", []):
                if self.set_status(int(tid), T.QUEUED):
                    queued += 1
        return queued

    def launch(self) -> int:
        """Instantiate queued tasks within the limits and submit each instance."""
        room = self.max_concurrently_running - self.active
        capacity = self.executor.capacity()
        if capacity is not None:
            room = min(room, capacity)
        if room <= 0 or not self.sets[T.QUEUED]:
            return 0
        ids = sorted(self.sets[T.QUEUED])[:room]
        launched = 0
        for chunk in _chunks(ids, self.config.bind_chunk_size):
            answer = self.requester.post(
                routes.instantiate_tasks(self.run_id),
                {"task_ids": chunk, "executor_type": self.executor.name},
            )
            specs = [TaskInstanceSpec.from_api(row) for row in answer.get("task_instances", [])]
            for spec in specs:
                self.set_status(spec.task_id, T.INSTANTIATED)
            try:
                self.executor.prepare_submit(specs)
            except Exception:
                log.exception("executor %s failed to prepare a batch; submitting one by one",
                              self.executor.name)
            for spec in specs:
                self._submit(spec)
                launched += 1
        return launched

    def _submit(self, spec: TaskInstanceSpec) -> None:
        ti = spec.task_instance_id
        try:
            executor_id = self.executor.submit(spec)
        except Exception as exc:
            log.exception("executor %s failed to submit task instance %d", self.executor.name, ti)
            executor_id = None
            description = f"{self.executor.name} executor failed to submit: {exc}"
        else:
            description = f"{self.executor.name} executor could not launch the worker"
        if executor_id is None:
            self.requester.post(routes.task_instance_report(ti, "no_executor_id"),
                                {"description": description})
            return
        if self.executor.submit_blocks:
            return  # it already ran: the worker reported running and its outcome
        try:
            self.requester.post(routes.task_instance_report(ti, "submitted"),
                                {"executor_id": executor_id, "next_report_increment": self._increment})
        except JobmonRequestError as exc:
            if exc.status_code != 409:
                raise
            # A fast task can finish before this report arrives; the worker's own reports stand.
            log.debug("late submitted report for task instance %d: %s", ti, exc.reason)

    def report_lost(self) -> int:
        lost = self.executor.reconcile()
        for item in lost:
            self._post_error(item.task_instance_id, item.status, item.description)
        return len(lost)

    def check_overdue(self) -> int:
        """Instances past their report-by deadline that the executor no longer runs are lost."""
        answer = self.requester.get(routes.overdue_instances(self.run_id))
        watched = self.executor.task_instance_ids()
        count = 0
        for row in answer.get("task_instances", []):
            ti = int(row["task_instance_id"])
            if ti in watched or self.executor.submit_blocks:
                continue
            self._post_error(ti, TI.UNKNOWN_ERROR, "no report from the worker by its deadline, and the "
                             f"{self.executor.name} executor no longer runs it")
            count += 1
        return count

    def _post_error(self, ti: int, status: TI, description: str) -> None:
        try:
            self.requester.post(routes.task_instance_report(ti, "error"),
                                {"status": status, "description": description})
        except JobmonRequestError as exc:
            if exc.status_code != 409:
                raise
            log.debug("error report for task instance %d refused: %s", ti, exc.reason)

    def run_status(self) -> str:
        answer = self.requester.get(routes.workflow_run(self.run_id))
        return str(answer["status"])

    def set_run_status(self, status: str) -> str:
        answer = self.requester.put(routes.workflow_run_status(self.run_id), {"status": status})
        return str(answer.get("status", status))

    def halt(self, reason: str) -> None:
        """Kill this run's instances: mark them K (so late reports are ignored and any survivor is told
        to kill itself), then terminate them."""
        for ti in sorted(self.executor.task_instance_ids()):
            try:
                self._post_error(ti, TI.KILL_SELF, reason)
            except JobmonRequestError as exc:
                log.error("cannot mark task instance %d killed: %s", ti, exc)
        self.executor.terminate(self.executor.active_executor_ids())

    # ---- the loop ---------------------------------------------------------------------------------

    def run(self) -> WorkflowRunResult:
        start = time.monotonic()
        heartbeat = _Heartbeat(self.requester.clone(), self.run_id, self.workflow_id, self.config,
                               self._wake)
        final: str | None = None
        reason = ""
        detach = False
        try:
            self.set_run_status(WFR.RUNNING)
            heartbeat.start()
            last_overdue = time.monotonic()
            last_progress = time.monotonic()
            self.poll(full=True)
            self._last_full_poll = time.monotonic()
            while True:
                if heartbeat.lost_status is not None:
                    final = heartbeat.lost_status
                    reason = f"the server moved the run to {final}"
                    if final in (WFR.COLD_RESUME, WFR.HOT_RESUME):
                        reason += " (another process resumed the workflow)"
                    # A hot resume keeps running instances going; a cold one already marked them K.
                    detach = final == WFR.HOT_RESUME
                    if not detach:
                        self.executor.terminate(self.executor.active_executor_ids())
                    break
                if heartbeat.max_concurrently_running is not None:
                    self.max_concurrently_running = heartbeat.max_concurrently_running
                elapsed = time.monotonic() - start
                if elapsed > self.seconds_until_timeout:
                    reason = f"timed out after {self.seconds_until_timeout:g} s"
                    log.warning("workflow %d run %d %s; stopping", self.workflow_id, self.run_id,
                                reason)
                    self.halt(reason)
                    final = self.set_run_status(WFR.STOPPED)
                    break
                now = time.monotonic()
                work = self.report_lost()
                if now - last_overdue >= self.config.heartbeat_interval:
                    work += self.check_overdue()
                    last_overdue = now
                full = now - self._last_full_poll >= FULL_POLL_EVERY
                if full:
                    self._last_full_poll = now
                work += self.poll(full=full)
                if self.fail_fast and self.sets[T.ERROR_FATAL]:
                    reason = f"fail_fast: {len(self.sets[T.ERROR_FATAL])} task(s) failed"
                    self.halt(reason)
                    final = self._finish_status()
                    break
                try:
                    work += self.queue_ready()
                    work += self.launch()
                except JobmonRequestError as exc:
                    # 409: the run may have left R (resumed elsewhere, reaped) since the last
                    # heartbeat; then stop as the heartbeat would have, else it is a real error.
                    status = self.run_status() if exc.status_code == 409 else WFR.RUNNING
                    if status == WFR.RUNNING:
                        raise
                    heartbeat.lost_status = status
                    continue
                if now - last_progress >= PROGRESS_EVERY:
                    log.info("workflow %d run %d: %s", self.workflow_id, self.run_id,
                             describe_counts(self.counts()))
                    last_progress = now
                if self.finished():
                    final = self._finish_status()
                    break
                if not work:
                    self._wake.wait(self.config.poll_interval)
                    self._wake.clear()
        except KeyboardInterrupt:
            self._abandon("interrupted by the user", WFR.STOPPED)
            raise
        except BaseException as exc:
            self._abandon(f"the client failed: {exc}", WFR.ERROR)
            raise
        finally:
            heartbeat.stop()
            if not detach:
                self.executor.stop()
        try:
            self.poll(full=True)
        except JobmonRequestError as exc:
            log.warning("cannot read final task statuses: %s", exc)
        if not reason and final != WFR.DONE:
            counts = self.counts()
            reason = (f"{counts.get(T.ERROR_FATAL, 0)} task(s) failed; "
                      f"{len(self.status) - counts.get(T.DONE, 0)} of {len(self.status)} not done")
        return WorkflowRunResult(self.workflow_id, self.run_id, final or "", self.counts(),
                                 time.monotonic() - start, reason)

    def _finish_status(self) -> str:
        if all(s == T.DONE for s in self.status.values()):
            try:
                return self.set_run_status(WFR.DONE)
            except JobmonRequestError as exc:
                if exc.status_code != 409:
                    raise
                log.warning("server refused DONE for run %d: %s", self.run_id, exc.reason)
        try:
            return self.set_run_status(WFR.ERROR)
        except JobmonRequestError as exc:
            if exc.status_code != 409:
                raise
            # The run already left R (resumed elsewhere or reaped): its status is the outcome.
            return self.run_status()

    def _abandon(self, reason: str, status: str) -> None:
        """Best effort on the way out of a failure: kill instances and close the run."""
        try:
            self.halt(reason)
        except Exception as exc:
            log.error("cannot stop the run's task instances: %s", exc)
        try:
            self.set_run_status(status)
        except Exception as exc:
            log.error("cannot set workflow run %d to %s: %s", self.run_id, status, exc)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    size = max(1, size)
    for i in range(0, len(items), size):
        yield items[i:i + size]

