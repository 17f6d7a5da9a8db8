"""Launching tasks: queue them (G/E/A -> Q) and instantiate them (Q -> I, one task instance each)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from msgspec import Meta, Struct
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobmon.core.resources import ComputeResources, QueueLimits, adjusted, parse_scales
from jobmon.core.states import ACTIVE_WORKFLOW_RUN_STATES, TaskInstanceStatus, TaskStatus
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.errors import Conflict
from jobmon.server.models import Queue, Task, TaskInstance, TaskResources, WorkflowRun
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import (
    chunked,
    deadline,
    insert_resources,
    insert_rows,
    load,
    table,
    write_route,
)
from jobmon.server.state_manager.inputs import Id
from jobmon.server.validation import accepts

log = logging.getLogger(__name__)

MAX_IDS = 50_000
# An instance not yet submitted has this long (by the DB clock) before it counts as overdue: submission
# to a busy batch system can take a while, and the executor reports a real deadline once it has a job id.
INSTANTIATED_REPORT_BY_S = 3600.0

_task = table(Task)
_ti = table(TaskInstance)
_res = table(TaskResources)

QUEUEABLE = (TaskStatus.REGISTERED, TaskStatus.ERROR_RECOVERABLE, TaskStatus.ADJUSTING_RESOURCES)

TaskIds = Annotated[list[Id], Meta(max_length=MAX_IDS)]


def _active_run(session: Session, workflow_run_id: int) -> WorkflowRun:
    run = load(session, WorkflowRun, workflow_run_id, "workflow run")
    if run.status not in ACTIVE_WORKFLOW_RUN_STATES:
        raise Conflict(f"workflow run {run.id} is in status {run.status}: it can no longer launch tasks",
                       workflow_run_status=run.status)
    return run


class QueueBody(Struct):
    task_ids: TaskIds


class QueueAnswer(Struct):
    queued: Annotated[list[int], Meta(description="the tasks this call queued, in the request's order")]


@blueprint.post("/workflow_run/<int:workflow_run_id>/queue")
@accepts(QueueBody, answers=QueueAnswer)
@write_route
def queue_tasks(body: QueueBody, workflow_run_id: int) -> QueueAnswer:
    """Queue tasks of the run's workflow: G/E/A -> Q; others are skipped, not refused.

    A task leaving A gets an adjusted (A) task_resources row: memory = max(request, latest measured max
    RSS) x (1 + scale), runtime x (1 + scale), each capped at its queue's limits.
    """
    task_ids = body.task_ids
    queued: set[int] = set()
    with transaction(rw_sessions()) as session:
        run = _active_run(session, workflow_run_id)
        now = db_now(session)
        for chunk in chunked(sorted(set(task_ids))):
            rows = session.execute(
                select(_task.c.id, _task.c.status, _task.c.task_resources_id, _task.c.resource_scales)
                .where(_task.c.id.in_(chunk), _task.c.workflow_id == run.workflow_id,
                       _task.c.status.in_(QUEUEABLE))
                .with_for_update()
            ).all()
            if not rows:
                continue
            adjusting = [r for r in rows if r.status == TaskStatus.ADJUSTING_RESOURCES]
            if adjusting:
                _adjust_resources(session, adjusting)
            ids = [r.id for r in rows]
            session.execute(
                update(_task)
                .where(_task.c.id.in_(ids), _task.c.status.in_(QUEUEABLE))
                .values(status=TaskStatus.QUEUED.value, status_date=now)
            )
            queued.update(ids)
    return QueueAnswer([i for i in dict.fromkeys(task_ids) if i in queued])


def _adjust_resources(session: Session, rows: list[Any]) -> None:
    """Insert an A row per task from its current request and measured memory, then point the task at it."""
    limits = {
        q.name: QueueLimits(q.name, q.max_cores, q.max_memory_mb, q.max_runtime_s)
        for q in session.execute(select(Queue)).scalars()
    }
    current: dict[int, ComputeResources] = {}
    res_ids = [r.task_resources_id for r in rows if r.task_resources_id is not None]
    for chunk in chunked(res_ids):
        for rid, queue, cores, memory, runtime in session.execute(
            select(_res.c.id, _res.c.queue, _res.c.num_cores, _res.c.memory_mb, _res.c.runtime_s)
            .where(_res.c.id.in_(chunk))
        ):
            current[rid] = ComputeResources(queue, cores, memory, runtime)
    # The newest measurement of each task: qpid may fill max RSS in only after a later attempt started.
    measured: dict[int, int] = {}
    for chunk in chunked([r.id for r in rows]):
        for task_id, maxrss in session.execute(
            select(_ti.c.task_id, _ti.c.maxrss)
            .where(_ti.c.task_id.in_(chunk), _ti.c.maxrss.is_not(None))
            .order_by(_ti.c.id)
        ):
            measured[task_id] = maxrss
    new_rows: list[dict[str, Any]] = []
    for r in rows:
        base = current.get(r.task_resources_id)
        if base is None:
            log.warning("task %s in A has no resources to adjust", r.id)
            continue
        queue = limits.get(base.queue)
        if queue is None:
            # The queue was removed since binding: keep the request rather than guess limits.
            log.warning("task %s: queue %s no longer exists; resources not adjusted", r.id, base.queue)
            continue
        new = adjusted(base, queue, parse_scales(r.resource_scales), measured.get(r.id))
        new_rows.append({
            "task_id": r.id, "resource_type": "A", "queue": new.queue, "num_cores": new.num_cores,
            "memory_mb": new.memory_mb, "runtime_s": new.runtime_s,
        })
    insert_resources(session, new_rows, "A")


class InstantiateBody(Struct):
    task_ids: TaskIds
    executor_type: Annotated[str, Meta(min_length=1, max_length=64)]


class Instance(Struct):
    """What the executor needs to launch one instance."""

    task_instance_id: int
    task_id: int
    name: str
    command: str
    queue: str | None
    num_cores: int | None
    memory_mb: int | None
    runtime_s: int | None


class InstantiateAnswer(Struct):
    task_instances: Annotated[list[Instance], Meta(description="in the request's order")]


@blueprint.post("/workflow_run/<int:workflow_run_id>/instantiate")
@accepts(InstantiateBody, answers=InstantiateAnswer)
@write_route
def instantiate_tasks(body: InstantiateBody, workflow_run_id: int) -> InstantiateAnswer:
    """Create one task instance (status I) per queued task: Q -> I, attempts + 1; others are skipped.

    Answers what the executor needs to launch each instance: its id, the task's name and command, and the
    resources to request.
    """
    task_ids, executor_type = body.task_ids, body.executor_type
    out: dict[int, Instance] = {}
    with transaction(rw_sessions()) as session:
        run = _active_run(session, workflow_run_id)
        now = db_now(session)
        report_by = deadline(session, INSTANTIATED_REPORT_BY_S, now)
        for chunk in chunked(sorted(set(task_ids))):
            rows = session.execute(
                select(_task.c.id, _task.c.task_resources_id)
                .where(_task.c.id.in_(chunk), _task.c.workflow_id == run.workflow_id,
                       _task.c.status == TaskStatus.QUEUED)
                .with_for_update()
            ).all()
            if not rows:
                continue
            ids = [r.id for r in rows]
            insert_rows(session, _ti, [
                {
                    "workflow_run_id": run.id, "task_id": r.id, "task_resources_id": r.task_resources_id,
                    "executor_type": executor_type, "status": TaskInstanceStatus.INSTANTIATED.value,
                    "status_date": now, "report_by_date": report_by,
                }
                for r in rows
            ])
            session.execute(
                update(_task)
                .where(_task.c.id.in_(ids), _task.c.status == TaskStatus.QUEUED)
                .values(status=TaskStatus.INSTANTIATED.value, num_attempts=_task.c.num_attempts + 1,
                        status_date=now)
            )
            # Ordered by id so that each task ends up with its newest (just created) instance.
            for row in session.execute(
                select(_ti.c.id, _ti.c.task_id, _task.c.name, _task.c.command, _res.c.queue,
                       _res.c.num_cores, _res.c.memory_mb, _res.c.runtime_s)
                .select_from(_ti.join(_task, _task.c.id == _ti.c.task_id)
                             .outerjoin(_res, _res.c.id == _ti.c.task_resources_id))
                .where(_ti.c.workflow_run_id == run.id, _ti.c.task_id.in_(ids),
                       _ti.c.status == TaskInstanceStatus.INSTANTIATED)
                .order_by(_ti.c.id)
            ):
                out[row.task_id] = Instance(row.id, row.task_id, row.name, row.command, row.queue,
                                            row.num_cores, row.memory_mb, row.runtime_s)
    return InstantiateAnswer([out[i] for i in dict.fromkeys(task_ids) if i in out])
