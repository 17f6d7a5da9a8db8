"""Operator writes from the CLI: concurrency limit, resetting a workflow, setting task statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from jobmon.core.states import ACTIVE_WORKFLOW_RUN_STATES, TaskStatus, WorkflowStatus
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.errors import Conflict, NotFound
from jobmon.server.models import Edge, Task, Workflow, WorkflowRun
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import chunked, load, table, write_route
from jobmon.server.state_manager.inputs import Count, Empty, Id
from jobmon.server.validation import accepts

MAX_IDS = 100_000

_task = table(Task)
_edge = table(Edge)


class ConcurrencyBody(Struct):
    limit: Annotated[Count, Meta(description="0 pauses launching; running tasks go on")]


class ConcurrencyAnswer(Struct):
    workflow_id: int
    max_concurrently_running: int


@blueprint.put("/workflow/<int:workflow_id>/max_concurrently_running")
@accepts(ConcurrencyBody, answers=ConcurrencyAnswer)
@write_route
def set_concurrency(body: ConcurrencyBody, workflow_id: int) -> ConcurrencyAnswer:
    """Set how many of a workflow's tasks may be queued or running at once (read by its client)."""
    limit = body.limit
    with transaction(rw_sessions()) as session:
        workflow = load(session, Workflow, workflow_id, "workflow", lock=True)
        workflow.max_concurrently_running = limit
    return ConcurrencyAnswer(workflow_id, limit)


def _inactive_workflow(session: Session, workflow_id: int) -> Workflow:
    """The workflow, locked, provided no run of it is active (a live client would fight the change)."""
    workflow = load(session, Workflow, workflow_id, "workflow", lock=True)
    active = session.execute(
        select(WorkflowRun.id).where(WorkflowRun.workflow_id == workflow_id,
                                     WorkflowRun.status.in_(ACTIVE_WORKFLOW_RUN_STATES))
    ).scalars().first()
    if active is not None:
        raise Conflict(f"workflow {workflow_id} has an active run {active}; stop it first",
                       active_workflow_run_id=active)
    return workflow


class ResetAnswer(Struct):
    workflow_id: int
    status: WorkflowStatus


@blueprint.post("/workflow/<int:workflow_id>/reset")
@accepts(Empty, answers=ResetAnswer)
@write_route
def reset_workflow(_: Empty, workflow_id: int) -> ResetAnswer:
    """Reset a workflow with no active run: every task (done ones too) -> G, the workflow -> G."""
    with transaction(rw_sessions()) as session:
        workflow = _inactive_workflow(session, workflow_id)
        now = db_now(session)
        session.execute(
            update(_task).where(_task.c.workflow_id == workflow_id)
            .values(status=TaskStatus.REGISTERED.value, num_attempts=0, status_date=now)
        )
        workflow.status = WorkflowStatus.REGISTERED.value
        workflow.status_date = now
    return ResetAnswer(workflow_id, WorkflowStatus.REGISTERED)


class TaskStatusesBody(Struct):
    task_ids: Annotated[list[Id], Meta(max_length=MAX_IDS)]
    status: Literal["D", "G"]


class TaskStatusesAnswer(Struct):
    updated: Annotated[int, Meta(description="tasks whose status changed")]


@blueprint.put("/workflow/<int:workflow_id>/task_statuses")
@accepts(TaskStatusesBody, answers=TaskStatusesAnswer)
@write_route
def set_task_statuses(body: TaskStatusesBody, workflow_id: int) -> TaskStatusesAnswer:
    """Set tasks of a workflow with no active run to D or G; G also resets every task downstream of them.

    Answers how many tasks changed. Setting G on a done workflow puts the workflow back to G so that it
    can run again.
    """
    task_ids, status = body.task_ids, TaskStatus(body.status)
    with transaction(rw_sessions()) as session:
        workflow = _inactive_workflow(session, workflow_id)
        now = db_now(session)
        nodes = _nodes_of(session, workflow_id, task_ids)
        if status == TaskStatus.DONE:
            updated = _set_status(session, workflow_id, _task.c.id, sorted(set(task_ids)), status, now)
        else:
            everything = _downstream_closure(session, workflow.dag_id, nodes)
            updated = _set_status(session, workflow_id, _task.c.node_id, sorted(everything), status, now)
            if updated and workflow.status != WorkflowStatus.REGISTERED:
                workflow.status = WorkflowStatus.REGISTERED.value
                workflow.status_date = now
    return TaskStatusesAnswer(updated)


def _nodes_of(session: Session, workflow_id: int, task_ids: list[int]) -> set[int]:
    """The node of each task; a task id not in this workflow is a 404."""
    found: dict[int, int] = {}
    unique = sorted(set(task_ids))
    for chunk in chunked(unique):
        for task_id, node_id in session.execute(
            select(_task.c.id, _task.c.node_id)
            .where(_task.c.workflow_id == workflow_id, _task.c.id.in_(chunk))
        ):
            found[task_id] = node_id
    missing = [i for i in unique if i not in found]
    if missing:
        raise NotFound(f"task(s) not in workflow {workflow_id}: {', '.join(map(str, missing[:10]))}")
    return set(found.values())


def _downstream_closure(session: Session, dag_id: int, start: set[int]) -> set[int]:
    """Every node reachable from ``start`` along the DAG's edges, walked level by level: one SELECT per
    chunk of each level's frontier, never one per node."""
    seen = set(start)
    frontier = sorted(start)
    while frontier:
        reached: set[int] = set()
        for chunk in chunked(frontier):
            reached.update(session.execute(
                select(_edge.c.downstream_node_id)
                .where(_edge.c.dag_id == dag_id, _edge.c.upstream_node_id.in_(chunk))
            ).scalars())
        frontier = sorted(reached - seen)
        seen.update(frontier)
    return seen


def _set_status(
    session: Session, workflow_id: int, column: ColumnElement[Any], values: list[int], status: TaskStatus,
    now: datetime,
) -> int:
    extra = {"num_attempts": 0} if status == TaskStatus.REGISTERED else {}
    updated = 0
    for chunk in chunked(values):
        result = session.execute(
            update(_task)
            .where(_task.c.workflow_id == workflow_id, column.in_(chunk), _task.c.status != status)
            .values(status=status.value, status_date=now, **extra)
        )
        updated += int(getattr(result, "rowcount", 0) or 0)
    return updated
