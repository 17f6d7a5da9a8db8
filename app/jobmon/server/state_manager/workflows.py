"""Workflows and their runs: binding a workflow, starting (or resuming) a run, run status and heartbeats."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jobmon.core.states import (
    ACTIVE_WORKFLOW_RUN_STATES,
    TASK_INSTANCE_ACTIVE_STATES,
    WORKFLOW_RUN_TRANSITIONS,
    WORKFLOW_TRANSITIONS,
    TaskInstanceStatus,
    TaskStatus,
    WorkflowRunStatus,
    WorkflowStatus,
)
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.errors import Conflict
from jobmon.server.models import (
    Dag,
    Task,
    TaskInstance,
    ToolVersion,
    Workflow,
    WorkflowArg,
    WorkflowAttribute,
    WorkflowRun,
)
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import (
    deadline,
    insert_ignore,
    latest,
    load,
    table,
    write_route,
)
from jobmon.server.state_manager.inputs import (
    ArgMap,
    Count,
    Hash,
    HeartbeatBody,
    Id,
    Name,
    store_as_text,
)
from jobmon.server.validation import accepts

log = logging.getLogger(__name__)

WFR = WorkflowRunStatus
WF = WorkflowStatus

# Where the workflow goes when its newest run moves; other run states (C, H, T) leave it alone.
WORKFLOW_FOLLOWS_RUN: dict[WorkflowRunStatus, WorkflowStatus] = {
    WFR.BOUND: WF.BOUND,
    WFR.RUNNING: WF.RUNNING,
    WFR.DONE: WF.DONE,
    WFR.ERROR: WF.FAILED,
    WFR.STOPPED: WF.SUSPENDED,
    WFR.ABORTED: WF.ABORTED,
}


class WorkflowBody(Struct):
    tool_version_id: Id
    dag_id: Id
    workflow_args_hash: Hash
    task_hash: Hash
    name: Name = ""
    description: Annotated[str, Meta(max_length=16_000)] = ""
    workflow_args: ArgMap = {}
    workflow_attributes: ArgMap = {}
    max_concurrently_running: Count = 10_000

    def __post_init__(self) -> None:
        self.workflow_args_hash = self.workflow_args_hash.lower()
        self.task_hash = self.task_hash.lower()
        store_as_text(self.workflow_args, "workflow_args")
        store_as_text(self.workflow_attributes, "workflow_attributes")


class WorkflowAnswer(Struct):
    workflow_id: int
    status: WF
    newly_created: bool


@blueprint.post("/workflow")
@accepts(WorkflowBody, answers=WorkflowAnswer)
@write_route
def bind_workflow(body: WorkflowBody) -> WorkflowAnswer:
    """Get or create a workflow: the same tool version, DAG, args hash and task hash are the same workflow.

    A new workflow starts in G with its args and attributes stored; an existing one is answered as it is
    (its name, description and concurrency limit are not changed: use the operator route for the limit).
    """
    tool_version_id, dag_id = body.tool_version_id, body.dag_id
    args_hash, task_hash = body.workflow_args_hash, body.task_hash
    name, description, limit = body.name, body.description, body.max_concurrently_running
    args, attributes = body.workflow_args, body.workflow_attributes

    with transaction(rw_sessions()) as session:
        load(session, ToolVersion, tool_version_id, "tool version")
        load(session, Dag, dag_id, "dag")
        now = db_now(session)
        created = insert_ignore(session, table(Workflow), [{
            "tool_version_id": tool_version_id, "dag_id": dag_id, "workflow_args_hash": args_hash,
            "task_hash": task_hash, "name": name, "description": description,
            "max_concurrently_running": limit, "status": WF.REGISTERED.value,
            "status_date": now, "created_date": now,
        }]) == 1
        workflow_id, status = session.execute(
            latest(select(Workflow.id, Workflow.status).where(
                Workflow.tool_version_id == tool_version_id, Workflow.dag_id == dag_id,
                Workflow.workflow_args_hash == args_hash, Workflow.task_hash == task_hash,
            ))
        ).one()
        if created:
            insert_ignore(session, table(WorkflowArg), [
                {"workflow_id": workflow_id, "name": k, "value": v} for k, v in args.items()
            ])
        # Attributes are descriptive: ones added on a later bind are kept too.
        insert_ignore(session, table(WorkflowAttribute), [
            {"workflow_id": workflow_id, "name": k, "value": v} for k, v in attributes.items()
        ])
    return WorkflowAnswer(workflow_id, WF(status), created)


class RunBody(Struct):
    user: Annotated[str, Meta(min_length=1, max_length=150)]
    executor_class: Annotated[str, Meta(min_length=1, max_length=64)]
    jobmon_version: Annotated[str, Meta(min_length=1, max_length=64)]
    resume: bool = False
    reset_running: Annotated[bool, Meta(description="cold resume: kill the instances still running")] = True


class RunAnswer(Struct):
    workflow_run_id: int
    status: WFR


@blueprint.post("/workflow/<int:workflow_id>/run")
@accepts(RunBody, answers=RunAnswer)
@write_route
def create_workflow_run(body: RunBody, workflow_id: int) -> RunAnswer:
    """Start a run of a workflow, resuming (cold or hot) any run still active when ``resume`` is true.

    The workflow goes back to G and every task not D (and, on a hot resume, not R or I) goes back to G
    with its attempts counted from zero. A cold resume (``reset_running``, the default) sets the
    workflow's live instances to K so they kill themselves.
    """
    resume, cold = body.resume, body.reset_running
    with transaction(rw_sessions()) as session:
        # The row lock serializes concurrent run creation for one workflow.
        workflow = load(session, Workflow, workflow_id, "workflow", lock=True)
        if workflow.status == WF.DONE:
            raise Conflict(f"workflow {workflow_id} is done; reset it to run it again")
        active = session.execute(
            select(WorkflowRun.id, WorkflowRun.status)
            .where(WorkflowRun.workflow_id == workflow_id,
                   WorkflowRun.status.in_(ACTIVE_WORKFLOW_RUN_STATES))
            .order_by(WorkflowRun.id)
            .with_for_update()
        ).all()
        if active and not resume:
            raise Conflict(
                f"workflow {workflow_id} has an active run {active[-1].id}; pass resume",
                active_workflow_run_id=active[-1].id,
            )
        now = db_now(session)
        for run_id, run_status in active:
            # A run still in G never launched anything and cannot go to C/H: it is aborted.
            if run_status == WFR.REGISTERED:
                target = WFR.ABORTED
            else:
                target = WFR.COLD_RESUME if cold else WFR.HOT_RESUME
            session.execute(
                update(WorkflowRun).where(WorkflowRun.id == run_id)
                .values(status=target.value, status_date=now)
            )
        _reset_for_new_run(session, workflow_id, cold, now)
        workflow.status = WF.REGISTERED.value
        workflow.status_date = now
        run = WorkflowRun(
            workflow_id=workflow_id, user=body.user, executor_class=body.executor_class,
            jobmon_version=body.jobmon_version,
            status=WFR.REGISTERED.value, status_date=now, created_date=now, heartbeat_date=now,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    return RunAnswer(run_id, WFR.REGISTERED)


def _reset_for_new_run(session: Session, workflow_id: int, cold: bool, now: datetime) -> None:
    """Instances and tasks as a new run must find them. Done tasks are never reset."""
    runs = select(WorkflowRun.id).where(WorkflowRun.workflow_id == workflow_id).scalar_subquery()
    if cold:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.workflow_run_id.in_(runs),
                   TaskInstance.status.in_(TASK_INSTANCE_ACTIVE_STATES))
            .values(status=TaskInstanceStatus.KILL_SELF.value, status_date=now)
        )
    keep = {TaskStatus.DONE, TaskStatus.REGISTERED}
    if not cold:
        # Hot resume: instances keep running, so their tasks keep R / I.
        keep |= {TaskStatus.RUNNING, TaskStatus.INSTANTIATED}
    session.execute(
        update(Task)
        .where(Task.workflow_id == workflow_id, Task.status.not_in(keep))
        .values(status=TaskStatus.REGISTERED.value, num_attempts=0, status_date=now)
    )
    # G tasks left over from an earlier reset may still count attempts: start them from zero as well.
    session.execute(
        update(Task)
        .where(Task.workflow_id == workflow_id, Task.status == TaskStatus.REGISTERED,
               Task.num_attempts != 0)
        .values(num_attempts=0)
    )


class RunStatusBody(Struct):
    status: WFR


@blueprint.put("/workflow_run/<int:workflow_run_id>/status")
@accepts(RunStatusBody, answers=RunAnswer)
@write_route
def set_workflow_run_status(body: RunStatusBody, workflow_run_id: int) -> RunAnswer:
    """Move a workflow run to a new status; the workflow follows its newest run.

    G->B (workflow B), B->R (workflow R), R->D (workflow D; only when every task is D), R->E (workflow F),
    R->S (workflow S), ->A (workflow A). Repeating the current status is a no-op; any other move is 409.
    """
    new = body.status
    with transaction(rw_sessions()) as session:
        run = load(session, WorkflowRun, workflow_run_id, "workflow run", lock=True)
        current = WFR(run.status)
        if new == current:
            return RunAnswer(run.id, current)
        if new not in WORKFLOW_RUN_TRANSITIONS[current]:
            raise Conflict(f"workflow run {run.id} cannot move from {current.value} to {new.value}")
        if new == WFR.DONE:
            not_done = session.execute(
                select(func.count()).select_from(Task)
                .where(Task.workflow_id == run.workflow_id, Task.status != TaskStatus.DONE)
            ).scalar_one()
            if not_done:
                raise Conflict(f"workflow run {run.id} cannot be done: {not_done} task(s) are not done")
        now = db_now(session)
        run.status = new.value
        run.status_date = now
        _workflow_follows(session, run, new, now)
    return RunAnswer(workflow_run_id, new)


def _workflow_follows(session: Session, run: WorkflowRun, new: WorkflowRunStatus, now: datetime) -> None:
    target = WORKFLOW_FOLLOWS_RUN.get(new)
    if target is None:
        return
    newest = session.execute(
        select(func.max(WorkflowRun.id)).where(WorkflowRun.workflow_id == run.workflow_id)
    ).scalar_one()
    if newest != run.id:
        return  # an older run (resumed by a newer one) no longer speaks for the workflow
    workflow = load(session, Workflow, run.workflow_id, "workflow", lock=True)
    current = WF(workflow.status)
    if current == target:
        return
    if target not in WORKFLOW_TRANSITIONS[current]:
        # The run is authoritative for itself; a workflow move the table forbids is left out and logged.
        log.warning("workflow %s stays %s: run %s moved to %s", workflow.id, current.value, run.id,
                    new.value)
        return
    workflow.status = target.value
    workflow.status_date = now


@blueprint.post("/workflow_run/<int:workflow_run_id>/heartbeat")
@accepts(HeartbeatBody, answers=RunAnswer)
@write_route
def workflow_run_heartbeat(body: HeartbeatBody, workflow_run_id: int) -> RunAnswer:
    """Heartbeat of a run's client: extends its deadline (DB now + increment) and answers its status.

    Only an active run (G/B/R) is extended; the client stops when the answered status is not R.
    """
    seconds = body.next_report_increment
    with transaction(rw_sessions()) as session:
        run = load(session, WorkflowRun, workflow_run_id, "workflow run", lock=True)
        if run.status in ACTIVE_WORKFLOW_RUN_STATES:
            run.heartbeat_date = deadline(session, seconds)
        status = run.status
    return RunAnswer(workflow_run_id, WFR(status))
