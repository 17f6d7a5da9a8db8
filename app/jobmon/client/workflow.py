"""A Workflow: tasks and their dependencies, bound to the server and run to completion.

Binding is chunked and set-based (Guppy sent one SELECT per task inside one request; large workflows
timed out): nodes, then the DAG and its edges, then the workflow and a new run, then the tasks, each in
requests of at most ``ClientConfig.bind_chunk_size`` rows.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import jobmon
from jobmon.client.errors import (
    DagCycleError,
    WorkflowAlreadyDone,
    WorkflowAlreadyRunning,
    WorkflowError,
)
from jobmon.client.executors import Executor, get_executor
from jobmon.client.swarm import Swarm, WorkflowRunResult
from jobmon.client.task import Task
from jobmon.client.tool import Tool
from jobmon.core import hashing, routes
from jobmon.core.config import ClientConfig
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.core.states import TaskStatus as T
from jobmon.core.states import WorkflowRunStatus as WFR
from jobmon.core.states import WorkflowStatus as WF

log = logging.getLogger(__name__)

# The API's per-request ceilings (docs/api.md).
MAX_NODES_PER_REQUEST = 10_000
MAX_EDGES_PER_REQUEST = 50_000
MAX_TASKS_PER_REQUEST = 10_000


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No passwd entry (e.g. an arbitrary uid in a container).
        return os.environ.get("USER") or f"uid{os.getuid()}"


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Workflow:
    """``Workflow(tool, "name", workflow_args={...})``; add tasks, then ``run()``.

    The workflow's identity is its tool version, DAG, workflow args and task set: building the same
    workflow again (e.g. after the client died) finds the same workflow on the server, and
    ``run(resume=True)`` continues it without rerunning tasks that are done.
    """

    def __init__(
        self,
        tool: Tool,
        name: str = "",
        workflow_args: Mapping[str, Any] | None = None,
        *,
        description: str = "",
        workflow_attributes: Mapping[str, Any] | None = None,
        max_concurrently_running: int = 10_000,
        config: ClientConfig | None = None,
        requester: Requester | None = None,
    ) -> None:
        if isinstance(max_concurrently_running, bool) or not isinstance(max_concurrently_running, int) \
                or max_concurrently_running < 1:
            raise ValueError(
                f"max_concurrently_running must be a positive integer, got {max_concurrently_running!r}"
            )
        self.tool = tool
        self.name = name
        self.description = description
        self.workflow_args = hashing.args_as_text(workflow_args or {})
        self.workflow_attributes = hashing.args_as_text(workflow_attributes or {})
        self.max_concurrently_running = max_concurrently_running
        self.config = config or tool.config
        self.requester = requester or tool.requester
        self.tasks: dict[str, Task] = {}
        self.workflow_id: int | None = None
        self.workflow_run_id: int | None = None
        self.dag_id: int | None = None
        # A run bound by bind() and not yet run.
        self._bound_run: int | None = None

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, workflow_id={self.workflow_id}, tasks={len(self.tasks)})"

    # ---- building ---------------------------------------------------------------------------------

    def add_task(self, task: Task) -> Task:
        existing = self.tasks.get(task.node_hash)
        if existing is task:
            return task
        if existing is not None:
            raise ValueError(
                f"task {task.name!r} has the same template and node args as {existing.name!r}, which "
                "is already in the workflow; node args must tell a template's tasks apart"
            )
        if self._bound_run is not None or self.workflow_id is not None:
            raise WorkflowError("tasks cannot be added after the workflow was bound")
        self.tasks[task.node_hash] = task
        return task

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self.add_task(task)

    def topological_order(self) -> list[Task]:
        """Tasks with every upstream before its downstreams. Raises DagCycleError naming a cycle, or
        WorkflowError when a task depends on a task that was not added."""
        members = set(self.tasks.values())
        for task in members:
            for up in task.upstream_tasks:
                if up not in members:
                    raise WorkflowError(
                        f"task {task.name!r} depends on {up.name!r}, which is not in the workflow; "
                        "add it with add_task"
                    )
        # Insertion order throughout, so the same workflow always reports the same cycle.
        pending = {task: len(task.upstream_tasks) for task in self.tasks.values()}
        order = [task for task in self.tasks.values() if pending[task] == 0]
        i = 0
        while i < len(order):
            for down in order[i].downstream_tasks:
                if down in pending:
                    pending[down] -= 1
                    if pending[down] == 0:
                        order.append(down)
            i += 1
        if len(order) != len(members):
            raise DagCycleError(_find_cycle([t for t, n in pending.items() if n > 0]))
        return order

    # ---- binding ----------------------------------------------------------------------------------

    def bind(self, *, resume: bool = False, cold_resume: bool = True,
             executor_class: str = "multiprocess") -> int:
        """Register everything on the server and create a new run (left in B); the run id.

        ``resume``: take over from an active run of the same workflow (cold: its instances are killed
        and its unfinished tasks start over; hot: running instances go on). Done tasks never rerun.
        """
        if not self.tasks:
            raise WorkflowError("the workflow has no tasks; add some with add_task")
        order = self.topological_order()
        tasks = list(self.tasks.values())
        req = self.requester
        size = max(1, self.config.bind_chunk_size)

        for chunk in _chunks(tasks, min(size, MAX_NODES_PER_REQUEST)):
            answer = req.post(routes.NODES, {"nodes": [
                {"task_template_version_id": t.template.task_template_version_id,
                 "node_args_hash": t.node_args_hash, "node_args": t.node_args} for t in chunk]})
            node_ids = answer["node_ids"]
            if len(node_ids) != len(chunk):
                raise WorkflowError(f"server answered {len(node_ids)} node ids for {len(chunk)} nodes")
            for task, node_id in zip(chunk, node_ids, strict=True):
                task.node_id = int(node_id)

        edges = [(up, t) for t in order for up in t.upstream_tasks]
        dag_hash = hashing.dag_hash([t.node_hash for t in tasks],
                                    [(up.node_hash, down.node_hash) for up, down in edges])
        answer = req.post(routes.DAG, {"dag_hash": dag_hash})
        self.dag_id = int(answer["dag_id"])
        # Edges are sent even for an existing DAG: inserting is idempotent, and a binder that died
        # halfway through the edges of a new DAG must not leave it incomplete for good.
        edge_ids = [[up.node_id, down.node_id] for up, down in edges]
        for chunk in _chunks(edge_ids, min(size * 10, MAX_EDGES_PER_REQUEST)):
            req.post(routes.dag_edges(self.dag_id), {"edges": chunk})

        answer = req.post(routes.WORKFLOW, {
            "tool_version_id": self.tool.tool_version_id,
            "dag_id": self.dag_id,
            "workflow_args_hash": hashing.workflow_args_hash(self.workflow_args),
            "task_hash": hashing.task_hash([(t.node_hash, t.task_args_hash) for t in tasks]),
            "name": self.name,
            "description": self.description,
            "workflow_args": self.workflow_args,
            "workflow_attributes": self.workflow_attributes,
            "max_concurrently_running": self.max_concurrently_running,
        })
        self.workflow_id = int(answer["workflow_id"])
        if answer.get("status") == WF.DONE:
            raise WorkflowAlreadyDone(
                f"workflow {self.workflow_id} is already done; change workflow_args to run it again"
            )

        try:
            answer = req.post(routes.new_workflow_run(self.workflow_id), {
                "user": _user(), "executor_class": executor_class,
                "jobmon_version": jobmon.__version__, "resume": resume, "reset_running": cold_resume,
            })
        except JobmonRequestError as exc:
            if exc.status_code == 409:
                reason = _naming_workflow(self.workflow_id, exc.reason)
                if resume or "done" in exc.reason.lower():
                    raise WorkflowAlreadyDone(reason) from None
                raise WorkflowAlreadyRunning(f"{reason} (run(resume=True) takes it over)") from None
            raise
        run_id = int(answer["workflow_run_id"])
        self.workflow_run_id = run_id
        try:
            self._bind_tasks(run_id, tasks, min(size, MAX_TASKS_PER_REQUEST))
            req.put(routes.workflow_run_status(run_id), {"status": WFR.BOUND})
        except BaseException:
            # A run left in G would block the next bind until the reaper aborts it.
            try:
                req.put(routes.workflow_run_status(run_id), {"status": WFR.ABORTED})
            except JobmonRequestError as exc:
                log.error("cannot abort workflow run %d after a failed bind: %s", run_id, exc)
            raise
        self._bound_run = run_id
        log.info("bound workflow %d run %d: %d tasks, %d edges", self.workflow_id, run_id,
                 len(tasks), len(edges))
        return run_id

    def _bind_tasks(self, run_id: int, tasks: list[Task], size: int) -> None:
        assert self.workflow_id is not None, "the workflow is bound before its tasks"
        # The server runs a request above its queue's limits at the limits (docs/api.md, "capped"):
        # one warning per distinct cap, naming the tasks, so a workflow of 10,000 alike is one line.
        capped: dict[tuple[str, str, int, int], list[str]] = {}
        for chunk in _chunks(tasks, size):
            answer = self.requester.post(routes.workflow_tasks(self.workflow_id), {
                "workflow_run_id": run_id,
                "tasks": [{
                    "node_id": t.node_id,
                    "task_args_hash": t.task_args_hash,
                    "name": t.name,
                    "command": t.command,
                    "max_attempts": t.max_attempts,
                    "task_args": t.task_args,
                    "task_attributes": t.task_attributes,
                    "resource_scales": t.resource_scales,
                    "resources": t.compute_resources.to_dict(),
                } for t in chunk],
            })
            by_node = {t.node_id: t for t in chunk}
            rows = answer["tasks"]
            if len(rows) != len(chunk):
                raise WorkflowError(f"server answered {len(rows)} tasks for {len(chunk)}")
            for row in rows:
                task = by_node[int(row["node_id"])]
                task.task_id = int(row["task_id"])
                task.status = str(row["status"])
            for cap in answer.get("capped", []):
                key = (str(cap["queue"]), str(cap["resource"]), int(cap["requested"]), int(cap["capped_to"]))
                capped.setdefault(key, []).append(by_node[int(cap["node_id"])].name)
        for (queue, resource, requested, limit), names in capped.items():
            shown = ", ".join(repr(name) for name in names[:5])
            if len(names) > 5:
                shown += f" and {len(names) - 5} more"
            log.warning("%s %s asked queue %s for %s %d, above the queue's limit: capped to %d",
                        "task" if len(names) == 1 else f"{len(names)} tasks", shown, queue, resource,
                        requested, limit)

    # ---- running ----------------------------------------------------------------------------------

    def run(
        self,
        executor: str | Executor = "multiprocess",
        *,
        fail_fast: bool = False,
        seconds_until_timeout: float = 36_000,
        resume: bool = False,
        cold_resume: bool = True,
    ) -> WorkflowRunResult:
        """Bind (unless ``bind()`` was just called) and run until every task is done or nothing more
        can run. The result's ``status`` is D when every task is done, E when some failed, S when it
        timed out (running instances are killed), C/H when another process resumed the workflow."""
        runner = get_executor(executor)
        runner.configure(self.requester.base_url)
        # Started before binding: an executor that cannot work (no jobmon-worker) fails before a run
        # exists on the server.
        runner.start()
        try:
            run_id = self._bound_run
            if run_id is None:
                run_id = self.bind(resume=resume, cold_resume=cold_resume, executor_class=runner.name)
        except BaseException:
            runner.stop()
            raise
        self._bound_run = None
        assert self.workflow_id is not None
        tasks = list(self.tasks.values())
        statuses = {t.task_id: t.status or T.REGISTERED for t in tasks if t.task_id is not None}
        upstreams = {t.task_id: [up.task_id for up in t.upstream_tasks if up.task_id is not None]
                     for t in tasks if t.task_id is not None}
        swarm = Swarm(
            workflow_id=self.workflow_id, workflow_run_id=run_id, statuses=statuses,
            upstreams=upstreams, requester=self.requester, executor=runner, config=self.config,
            max_concurrently_running=self.max_concurrently_running, fail_fast=fail_fast,
            seconds_until_timeout=seconds_until_timeout,
        )
        try:
            result = swarm.run()
        finally:
            for task in tasks:
                if task.task_id is not None:
                    task.status = swarm.status.get(task.task_id, task.status)
        log.info("%s", result)
        return result


def _find_cycle(stuck: list[Task]) -> list[str]:
    """Names along one cycle among tasks a topological sort could not place."""
    stuck_set = set(stuck)
    start = stuck[0]
    seen: dict[Task, int] = {}
    path: list[Task] = []
    node = start
    # Every stuck task has a stuck upstream, so walking upstream must revisit a task.
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(up for up in sorted(node.upstream_tasks, key=lambda t: t.name) if up in stuck_set)
    cycle = path[seen[node]:]
    cycle.reverse()  # upstream first, as the dependencies run
    first = min(range(len(cycle)), key=lambda i: stuck.index(cycle[i]))
    cycle = cycle[first:] + cycle[:first]
    return [t.name for t in [*cycle, cycle[0]]]


def _naming_workflow(workflow_id: int, reason: str) -> str:
    """The server's reason, naming the workflow once ("workflow 5 has an active run 7; ...")."""
    subject = f"workflow {workflow_id}"
    return reason if reason.startswith(f"{subject} ") else f"{subject}: {reason}"
