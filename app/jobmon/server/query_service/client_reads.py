"""Query Service: the reads the client and the worker need.

Every route uses the read-only session factory (a SELECT-only database user in production) and selects
only the columns it answers with, so large workflows never load ORM objects per task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

import jobmon
from jobmon.core.states import TaskInstanceStatus
from jobmon.server.context import ro_sessions
from jobmon.server.db import db_now
from jobmon.server.errors import NotFound
from jobmon.server.models import Task, TaskInstance, Workflow, WorkflowRun
from jobmon.server.query_service import blueprint
from jobmon.server.validation import check_id, iso, query_datetime

# A write sets status_date before it commits, so a change can become visible after a poll whose clock
# was already later than its status_date. Polls by `since` therefore look back this much further; a task
# may be reported twice, never missed.
SINCE_OVERLAP = timedelta(seconds=10)

# Instances that still owe the server a report.
_OVERDUE_CANDIDATES = (
    TaskInstanceStatus.INSTANTIATED,
    TaskInstanceStatus.SUBMITTED_TO_BATCH_EXECUTOR,
    TaskInstanceStatus.RUNNING,
)


def _workflow_exists(session: Session, workflow_id: int) -> None:
    check_id(workflow_id, "workflow")
    found = session.execute(select(Workflow.id).where(Workflow.id == workflow_id)).first()
    if found is None:
        raise NotFound(f"workflow {workflow_id} not found")


def _workflow_run_exists(session: Session, workflow_run_id: int) -> None:
    check_id(workflow_run_id, "workflow run")
    found = session.execute(select(WorkflowRun.id).where(WorkflowRun.id == workflow_run_id)).first()
    if found is None:
        raise NotFound(f"workflow run {workflow_run_id} not found")


@blueprint.get("/time")
def get_time() -> ResponseReturnValue:
    """The database's clock (naive UTC): every deadline is judged by it."""
    with ro_sessions()() as session:
        return jsonify({"time": iso(db_now(session))})


@blueprint.get("/version")
def get_version() -> ResponseReturnValue:
    """The service's Jobmon version."""
    return jsonify({"version": jobmon.__version__})


@blueprint.get("/workflow/<int:workflow_id>")
def get_workflow(workflow_id: int) -> ResponseReturnValue:
    """A workflow: name, status, concurrency limit, DAG and tool version."""
    check_id(workflow_id, "workflow")
    with ro_sessions()() as session:
        row = session.execute(
            select(
                Workflow.id, Workflow.name, Workflow.status, Workflow.max_concurrently_running,
                Workflow.dag_id, Workflow.tool_version_id, Workflow.created_date, Workflow.status_date,
            ).where(Workflow.id == workflow_id)
        ).first()
    if row is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return jsonify({
        "workflow_id": row.id,
        "name": row.name,
        "status": row.status,
        "max_concurrently_running": row.max_concurrently_running,
        "dag_id": row.dag_id,
        "tool_version_id": row.tool_version_id,
        "created_date": iso(row.created_date),
        "status_date": iso(row.status_date),
    })


@blueprint.get("/workflow_run/<int:workflow_run_id>")
def get_workflow_run(workflow_run_id: int) -> ResponseReturnValue:
    """A workflow run: its workflow, status, heartbeat deadline and user."""
    check_id(workflow_run_id, "workflow run")
    with ro_sessions()() as session:
        row = session.execute(
            select(
                WorkflowRun.id, WorkflowRun.workflow_id, WorkflowRun.status, WorkflowRun.heartbeat_date,
                WorkflowRun.user, WorkflowRun.executor_class, WorkflowRun.jobmon_version,
                WorkflowRun.created_date, WorkflowRun.status_date,
            ).where(WorkflowRun.id == workflow_run_id)
        ).first()
    if row is None:
        raise NotFound(f"workflow run {workflow_run_id} not found")
    return jsonify({
        "workflow_run_id": row.id,
        "workflow_id": row.workflow_id,
        "status": row.status,
        "heartbeat_date": iso(row.heartbeat_date),
        "user": row.user,
        "executor_class": row.executor_class,
        "jobmon_version": row.jobmon_version,
        "created_date": iso(row.created_date),
        "status_date": iso(row.status_date),
    })


@blueprint.get("/workflow/<int:workflow_id>/task_statuses")
def get_task_statuses(workflow_id: int) -> ResponseReturnValue:
    """Status of every task of a workflow, or of those changed since a time (query parameter `since`).

    `time` in the answer is the database's clock, to pass as the next `since`. A task changed within a
    few seconds before `since` may be reported again (see SINCE_OVERLAP); none is missed.
    """
    since = query_datetime("since")
    with ro_sessions()() as session:
        _workflow_exists(session, workflow_id)
        # Read the clock before the tasks: anything changed after it is picked up by the next poll.
        now = db_now(session)
        # Columns only, filtered on (workflow_id, status_date): one index range scan per poll.
        stmt = select(Task.id, Task.status, Task.num_attempts).where(Task.workflow_id == workflow_id)
        if since is not None:
            stmt = stmt.where(Task.status_date >= max(since, datetime.min + SINCE_OVERLAP) - SINCE_OVERLAP)
        tasks = [
            {"task_id": task_id, "status": status, "num_attempts": num_attempts}
            for task_id, status, num_attempts in session.execute(stmt)
        ]
    return jsonify({"time": iso(now), "tasks": tasks})


@blueprint.get("/workflow/<int:workflow_id>/concurrency")
def get_concurrency(workflow_id: int) -> ResponseReturnValue:
    """A workflow's limit on concurrently running tasks (operators change it while it runs)."""
    check_id(workflow_id, "workflow")
    with ro_sessions()() as session:
        limit = session.execute(
            select(Workflow.max_concurrently_running).where(Workflow.id == workflow_id)
        ).scalar_one_or_none()
    if limit is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return jsonify({"max_concurrently_running": limit})


@blueprint.get("/task_instance/<int:task_instance_id>")
def get_task_instance(task_instance_id: int) -> ResponseReturnValue:
    """A task instance: status, executor id, report-by deadline, host and usage."""
    check_id(task_instance_id, "task instance")
    ti = TaskInstance
    with ro_sessions()() as session:
        row = session.execute(
            select(
                ti.id, ti.task_id, ti.workflow_run_id, ti.status, ti.status_date, ti.executor_type,
                ti.executor_id, ti.node_name, ti.process_group_id, ti.submitted_date, ti.report_by_date,
                ti.task_resources_id, ti.exit_code, ti.wallclock, ti.cpu, ti.maxrss, ti.maxpss,
            ).where(ti.id == task_instance_id)
        ).first()
    if row is None:
        raise NotFound(f"task instance {task_instance_id} not found")
    body: dict[str, Any] = {
        "task_instance_id": row.id,
        "task_id": row.task_id,
        "workflow_run_id": row.workflow_run_id,
        "status": row.status,
        "status_date": iso(row.status_date),
        "executor_type": row.executor_type,
        "executor_id": row.executor_id,
        "node_name": row.node_name,
        "process_group_id": row.process_group_id,
        "submitted_date": iso(row.submitted_date),
        "report_by_date": iso(row.report_by_date),
        "task_resources_id": row.task_resources_id,
        "exit_code": row.exit_code,
        "wallclock": row.wallclock,
        "cpu": row.cpu,
        "maxrss": row.maxrss,
        "maxpss": row.maxpss,
    }
    return jsonify(body)


@blueprint.get("/workflow_run/<int:workflow_run_id>/overdue_instances")
def get_overdue_instances(workflow_run_id: int) -> ResponseReturnValue:
    """Instances of a run in I/B/R whose report-by deadline passed, judged by the database's clock."""
    ti = TaskInstance
    with ro_sessions()() as session:
        _workflow_run_exists(session, workflow_run_id)
        now = db_now(session)
        # (workflow_run_id, status) index narrows to the run's live instances; a NULL deadline never
        # compares true, so instances that never set one are not overdue.
        rows = session.execute(
            select(ti.id, ti.task_id, ti.status, ti.executor_id, ti.report_by_date)
            .where(ti.workflow_run_id == workflow_run_id,
                   ti.status.in_([s.value for s in _OVERDUE_CANDIDATES]),
                   ti.report_by_date < now)
            .order_by(ti.id)
        ).all()
    return jsonify({
        "time": iso(now),
        "task_instances": [
            {"task_instance_id": r.id, "task_id": r.task_id, "status": r.status,
             "executor_id": r.executor_id, "report_by_date": iso(r.report_by_date)}
            for r in rows
        ],
    })


