"""The Visualization server's reads, shared by its JSON routes and its HTML pages.

Counts are aggregated in SQL (GROUP BY over the (workflow_id, status) index) and lists are limited, so a
page for a workflow of 500k tasks reads a few index ranges, never every task row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobmon.core.states import TaskStatus
from jobmon.server.errors import NotFound
from jobmon.server.models import (
    Task,
    TaskInstance,
    TaskInstanceErrorLog,
    TaskResources,
    Workflow,
    WorkflowRun,
)
from jobmon.server.validation import check_id, iso

TASK_STATUS_LETTERS = tuple(s.value for s in TaskStatus)


def workflow_summaries(
    session: Session,
    *,
    user: str | None = None,
    workflow_ids: Sequence[int] = (),
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Workflows newest first with their task counts by status and the user of their latest run."""
    stmt = select(
        Workflow.id, Workflow.name, Workflow.status, Workflow.created_date, Workflow.status_date,
        Workflow.max_concurrently_running,
    )
    if workflow_ids:
        stmt = stmt.where(Workflow.id.in_(workflow_ids))
    if user is not None:
        stmt = stmt.where(Workflow.id.in_(select(WorkflowRun.workflow_id).where(WorkflowRun.user == user)))
    # Ids grow with creation time, and ordering by the primary key needs no sort.
    rows = session.execute(stmt.order_by(Workflow.id.desc()).limit(limit)).all()
    ids = [r.id for r in rows]
    if not ids:
        return []

    counts: dict[int, dict[str, int]] = {i: dict.fromkeys(TASK_STATUS_LETTERS, 0) for i in ids}
    for wf_id, status, n in session.execute(
        select(Task.workflow_id, Task.status, func.count())
        .where(Task.workflow_id.in_(ids))
        .group_by(Task.workflow_id, Task.status)
    ):
        counts[wf_id][status] = n

    latest_runs = (
        select(func.max(WorkflowRun.id)).where(WorkflowRun.workflow_id.in_(ids))
        .group_by(WorkflowRun.workflow_id)
    )
    users: dict[int, str] = {
        wf_id: user
        for wf_id, user in session.execute(
            select(WorkflowRun.workflow_id, WorkflowRun.user).where(WorkflowRun.id.in_(latest_runs))
        )
    }
    return [
        {
            "workflow_id": r.id,
            "name": r.name,
            "status": r.status,
            "created_date": iso(r.created_date),
            "status_date": iso(r.status_date),
            "user": users.get(r.id),
            "max_concurrently_running": r.max_concurrently_running,
            "tasks": counts[r.id],
            "total": sum(counts[r.id].values()),
        }
        for r in rows
    ]


def workflow_summary(session: Session, workflow_id: int) -> dict[str, Any]:
    """One workflow's summary, or NotFound."""
    check_id(workflow_id, "workflow")
    found = workflow_summaries(session, workflow_ids=[workflow_id], limit=1)
    if not found:
        raise NotFound(f"workflow {workflow_id} not found")
    return found[0]


def workflow_tasks(
    session: Session,
    workflow_id: int,
    *,
    statuses: Sequence[str] = (),
    limit: int = 1000,
    after: int | None = None,
) -> dict[str, Any]:
    """A page of a workflow's tasks in id order, optionally only some statuses.

    `after` is the last task id of the previous page (keyset paging stays cheap deep into 500k tasks);
    `total` counts every matching task, `next_after` is set when another page follows.
    """
    check_id(workflow_id, "workflow")
    if session.execute(select(Workflow.id).where(Workflow.id == workflow_id)).first() is None:
        raise NotFound(f"workflow {workflow_id} not found")
    where = [Task.workflow_id == workflow_id]
    if statuses:
        where.append(Task.status.in_(statuses))
    total = session.execute(select(func.count()).select_from(Task).where(*where)).scalar_one()
    if after is not None:
        where.append(Task.id > after)
    # One row more than asked tells whether another page follows.
    rows = session.execute(
        select(Task.id, Task.name, Task.status, Task.num_attempts, Task.max_attempts)
        .where(*where).order_by(Task.id).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "workflow_id": workflow_id,
        "total": total,
        "next_after": rows[-1].id if more else None,
        "tasks": [
            {"task_id": r.id, "name": r.name, "status": r.status,
             "num_attempts": r.num_attempts, "max_attempts": r.max_attempts}
            for r in rows
        ],
    }


def task_detail(session: Session, task_id: int) -> dict[str, Any]:
    """A task, the resources its next instance asks for, and every instance with usage and errors."""
    check_id(task_id, "task")
    task = session.execute(
        select(Task.id, Task.workflow_id, Task.name, Task.command, Task.status, Task.status_date,
               Task.num_attempts, Task.max_attempts, Task.task_resources_id)
        .where(Task.id == task_id)
    ).first()
    if task is None:
        raise NotFound(f"task {task_id} not found")

    resources: dict[str, Any] | None = None
    if task.task_resources_id is not None:
        res = session.execute(
            select(TaskResources.queue, TaskResources.num_cores, TaskResources.memory_mb,
                   TaskResources.runtime_s, TaskResources.resource_type)
            .where(TaskResources.id == task.task_resources_id)
        ).first()
        if res is not None:
            resources = {"queue": res.queue, "num_cores": res.num_cores, "memory_mb": res.memory_mb,
                         "runtime_s": res.runtime_s, "resource_type": res.resource_type}

    ti = TaskInstance
    instances = session.execute(
        select(ti.id, ti.workflow_run_id, ti.status, ti.executor_type, ti.executor_id, ti.node_name,
               ti.exit_code, ti.wallclock, ti.cpu, ti.maxrss, ti.maxpss, ti.status_date,
               ti.submitted_date)
        .where(ti.task_id == task_id).order_by(ti.id)
    ).all()
    errors: dict[int, list[dict[str, Any]]] = {i.id: [] for i in instances}
    if instances:
        log = TaskInstanceErrorLog
        for ti_id, when, text in session.execute(
            select(log.task_instance_id, log.error_time, log.description)
            .where(log.task_instance_id.in_(list(errors))).order_by(log.id)
        ):
            errors[ti_id].append({"error_time": iso(when), "description": text})

    return {
        "task_id": task.id,
        "workflow_id": task.workflow_id,
        "name": task.name,
        "command": task.command,
        "status": task.status,
        "status_date": iso(task.status_date),
        "num_attempts": task.num_attempts,
        "max_attempts": task.max_attempts,
        "resources": resources,
        "instances": [
            {
                "task_instance_id": i.id,
                "workflow_run_id": i.workflow_run_id,
                "status": i.status,
                "executor_type": i.executor_type,
                "executor_id": i.executor_id,
                "node_name": i.node_name,
                "exit_code": i.exit_code,
                "wallclock": i.wallclock,
                "cpu": i.cpu,
                "maxrss": i.maxrss,
                "maxpss": i.maxpss,
                "submitted_date": iso(i.submitted_date),
                "status_date": iso(i.status_date),
                "errors": errors[i.id],
            }
            for i in instances
        ],
    }
