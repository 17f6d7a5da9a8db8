"""Operator writes from the CLI: concurrency limit, resetting a workflow, setting task statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from jobmon.core.states import ACTIVE_WORKFLOW_RUN_STATES, TaskStatus, WorkflowStatus
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.errors import Conflict, NotFound
from jobmon.server.models import Edge, Task, Workflow, WorkflowRun
from jobmon.server.openapi import request_schema
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import chunked, load, table, write_route
from jobmon.server.state_manager.inputs import id_list, int_field
from jobmon.server.validation import field, json_body

MAX_IDS = 100_000

_task = table(Task)
_edge = table(Edge)


@blueprint.put("/workflow/<int:workflow_id>/max_concurrently_running")
@request_schema({
    "type": "object",
    "required": ["limit"],
    "properties": {"limit": {"type": "integer", "minimum": 0,
                             "description": "0 pauses launching; running tasks go on"}},
})
@write_route
def set_concurrency(workflow_id: int) -> ResponseReturnValue:
    """Set how many of a workflow's tasks may be queued or running at once (read by its client)."""
    limit = int_field(json_body(), "limit")
    with transaction(rw_sessions()) as session:
        workflow = load(session, Workflow, workflow_id, "workflow", lock=True)
        workflow.max_concurrently_running = limit
    return jsonify({"workflow_id": workflow_id, "max_concurrently_running": limit})


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


@blueprint.post("/workflow/<int:workflow_id>/reset")
@request_schema({"type": "object", "properties": {}})
@write_route
def reset_workflow(workflow_id: int) -> ResponseReturnValue:
    """Reset a workflow with no active run: every task (done ones too) -> G, the workflow -> G."""
    json_body()
    with transaction(rw_sessions()) as session:
        workflow = _inactive_workflow(session, workflow_id)
        now = db_now(session)
        session.execute(
            update(_task).where(_task.c.workflow_id == workflow_id)
            .values(status=TaskStatus.REGISTERED.value, num_attempts=0, status_date=now)
        )
        workflow.status = WorkflowStatus.REGISTERED.value
        workflow.status_date = now
    return jsonify({"workflow_id": workflow_id, "status": WorkflowStatus.REGISTERED.value})


@blueprint.put("/workflow/<int:workflow_id>/task_statuses")
@request_schema({
    "type": "object",
    "required": ["task_ids", "status"],
    "properties": {
        "task_ids": {"type": "array", "maxItems": MAX_IDS, "items": {"type": "integer", "minimum": 1}},
        "status": {"type": "string", "enum": ["D", "G"]},
    },
})
@write_route
def set_task_statuses(workflow_id: int) -> ResponseReturnValue:
    """Set tasks of a workflow with no active run to D or G; G also resets every task downstream of them.

    Answers how many tasks changed. Setting G on a done workflow puts the workflow back to G so that it
    can run again.
    """
    body = json_body()
    task_ids = id_list(body, "task_ids", max_items=MAX_IDS)
    status = TaskStatus(field(body, "status", str, choices={"D", "G"}))
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
    return jsonify({"updated": updated})


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
