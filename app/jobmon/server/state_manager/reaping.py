"""The workflow reaper's moves: lost runs, runs stuck before running, finished resumed runs and overdue
task instances.

Each route takes the ids the reaper found through the Query Service and re-checks the condition in the
UPDATE itself (``... WHERE id = :id AND status = <expected> AND <deadline passed>``): a run that
heartbeated since it was found, or that another reaper already moved, is left alone. Only rows whose
UPDATE matched are answered, so two reapers running at once never both report (and post about) one move.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from msgspec import Meta, Struct
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from jobmon.core.states import (
    TASK_INSTANCE_ACTIVE_STATES,
    WORKFLOW_TRANSITIONS,
    TaskInstanceStatus,
    TaskStatus,
    WorkflowRunStatus,
    WorkflowStatus,
)
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.models import TaskInstance, TaskInstanceErrorLog, Workflow, WorkflowRun
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import load, write_route
from jobmon.server.state_manager.inputs import Id
from jobmon.server.state_manager.transitions import end_attempt
from jobmon.server.validation import accepts

log = logging.getLogger(__name__)

WFR = WorkflowRunStatus
WF = WorkflowStatus
TI = TaskInstanceStatus

# One request moves at most this many rows: each is its own conditional UPDATE in one transaction.
MAX_IDS = 1000
_ACTIVE_TI = [s.value for s in TASK_INSTANCE_ACTIVE_STATES]

Ids = Annotated[list[Id], Meta(max_length=MAX_IDS)]
Threshold = Annotated[float, Meta(
    ge=0, le=365 * 86400,
    description="seconds past the deadline (database clock) before the move applies",
)]


class RunsBody(Struct):
    workflow_run_ids: Ids


class LateRunsBody(RunsBody):
    threshold: Threshold = 0.0


class InstancesBody(Struct):
    task_instance_ids: Ids
    threshold: Threshold = 0.0


class RunMove(Struct):
    """A run this call moved, and its workflow when the workflow followed (else null)."""

    workflow_id: int
    workflow_name: str
    workflow_run_id: int
    user: str
    old_status: WorkflowRunStatus
    new_status: WorkflowRunStatus
    workflow_old_status: WorkflowStatus
    workflow_new_status: WorkflowStatus | None


class InstanceMove(Struct):
    """An instance this call moved to U, and its task's status after it."""

    task_instance_id: int
    task_id: int
    workflow_run_id: int
    workflow_id: int
    workflow_name: str
    user: str
    old_status: TaskInstanceStatus
    new_status: TaskInstanceStatus
    task_status: TaskStatus


class RunMoves(Struct):
    moved: list[RunMove]


class InstanceMoves(Struct):
    moved: list[InstanceMove]


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (its WHERE held): MariaDB's client is told to count matched, not changed,
    rows by SQLAlchemy's pymysql dialect, and SQLite counts matched rows."""
    return int(getattr(result, "rowcount", 0) or 0)


def _run_mover(
    session: Session, run_id: int, expected: tuple[WorkflowRunStatus, ...], new: WorkflowRunStatus,
    now: datetime, *condition: Any,
) -> RunMove | None:
    """Move one run if it is still in an expected state and the extra condition holds; answers the move
    (with the workflow's, if the workflow followed) or None when nothing matched."""
    old = session.execute(
        select(WorkflowRun.status).where(WorkflowRun.id == run_id)
    ).scalar_one_or_none()
    if old is None or old not in expected:
        return None
    moved = _rowcount(session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id == run_id, WorkflowRun.status == old, *condition)
        .values(status=new.value, status_date=now)
        .execution_options(synchronize_session=False)
    ))
    if moved != 1:
        return None  # another reaper or the client got there first
    run = session.execute(
        select(WorkflowRun.workflow_id, WorkflowRun.user).where(WorkflowRun.id == run_id)
    ).one()
    name, wf_old = session.execute(
        select(Workflow.name, Workflow.status).where(Workflow.id == run.workflow_id)
    ).one()
    return RunMove(run.workflow_id, name, run_id, run.user, WFR(old), new, WF(wf_old), None)


def _workflow_follows(session: Session, move: RunMove, target: WorkflowStatus, now: datetime) -> None:
    """The workflow follows the run to ``target`` when this run is its newest and the workflow's table
    allows the move; conditional on the status just read, like the run's own move."""
    workflow_id = move.workflow_id
    newest = session.execute(
        select(func.max(WorkflowRun.id)).where(WorkflowRun.workflow_id == workflow_id)
    ).scalar_one()
    current = move.workflow_old_status
    if newest != move.workflow_run_id or target not in WORKFLOW_TRANSITIONS[current]:
        return
    moved = _rowcount(session.execute(
        update(Workflow)
        .where(Workflow.id == workflow_id, Workflow.status == current.value)
        .values(status=target.value, status_date=now)
        .execution_options(synchronize_session=False)
    ))
    if moved == 1:
        move.workflow_new_status = target


def _move_runs(
    run_ids: list[int], expected: tuple[WorkflowRunStatus, ...], new: WorkflowRunStatus,
    workflow_target: WorkflowStatus, condition: Any,
) -> RunMoves:
    moves: list[RunMove] = []
    with transaction(rw_sessions()) as session:
        now = db_now(session)
        for run_id in sorted(set(run_ids)):
            move = _run_mover(session, run_id, expected, new, now, *condition(now))
            if move is None:
                continue
            _workflow_follows(session, move, workflow_target, now)
            log.info("reaper: workflow run %s of workflow %s %s -> %s (workflow %s -> %s)", run_id,
                     move.workflow_id, move.old_status.value, move.new_status.value,
                     move.workflow_old_status.value,
                     move.workflow_new_status.value if move.workflow_new_status else None)
            moves.append(move)
    return RunMoves(moves)


@blueprint.post("/reaper/lost_runs")
@accepts(LateRunsBody, answers=RunMoves)
@write_route
def reap_lost_runs(body: LateRunsBody) -> RunMoves:
    """Runs in R whose heartbeat deadline passed more than ``threshold`` seconds ago -> E, their workflow
    -> F. Answers ``{"moved": [...]}``: only the runs this call moved."""
    grace = timedelta(seconds=body.threshold)
    return _move_runs(body.workflow_run_ids, (WFR.RUNNING,), WFR.ERROR, WF.FAILED,
                      lambda now: (WorkflowRun.heartbeat_date < now - grace,))


@blueprint.post("/reaper/stuck_runs")
@accepts(LateRunsBody, answers=RunMoves)
@write_route
def reap_stuck_runs(body: LateRunsBody) -> RunMoves:
    """Runs in G or B that have neither changed status nor heartbeated for ``threshold`` seconds -> A,
    their workflow -> A."""
    age = timedelta(seconds=body.threshold)
    return _move_runs(
        body.workflow_run_ids, (WFR.REGISTERED, WFR.BOUND), WFR.ABORTED, WF.ABORTED,
        lambda now: (WorkflowRun.status_date < now - age, WorkflowRun.heartbeat_date < now - age),
    )


def _no_live_instance() -> Any:
    return ~exists().where(TaskInstance.workflow_run_id == WorkflowRun.id,
                           TaskInstance.status.in_(_ACTIVE_TI))


@blueprint.post("/reaper/resumed_runs")
@accepts(RunsBody, answers=RunMoves)
@write_route
def reap_resumed_runs(body: RunsBody) -> RunMoves:
    """Resumed runs (C/H) none of whose instances is still live (I/B/R) -> T; the workflow -> S only when
    the run is still its newest (a resume normally made a newer run, which then owns the workflow)."""
    return _move_runs(body.workflow_run_ids, (WFR.COLD_RESUME, WFR.HOT_RESUME), WFR.TERMINATED,
                      WF.SUSPENDED, lambda _now: (_no_live_instance(),))


@blueprint.post("/reaper/overdue_instances")
@accepts(InstancesBody, answers=InstanceMoves)
@write_route
def reap_overdue_instances(body: InstancesBody) -> InstanceMoves:
    """Instances in I/B/R whose report-by deadline passed more than ``threshold`` seconds ago -> U (lost:
    no word from the worker or the executor), with an error-log row; the task -> E, or F when its attempts
    are used up (``states.task_status_after_error``), so the client queues it again."""
    grace = timedelta(seconds=body.threshold)
    moves: list[InstanceMove] = []
    with transaction(rw_sessions()) as session:
        now = db_now(session)
        for ti_id in sorted(set(body.task_instance_ids)):
            old = session.execute(
                select(TaskInstance.status).where(TaskInstance.id == ti_id)
            ).scalar_one_or_none()
            if old is None or old not in _ACTIVE_TI:
                continue
            moved = _rowcount(session.execute(
                update(TaskInstance)
                .where(and_(TaskInstance.id == ti_id, TaskInstance.status == old,
                            TaskInstance.report_by_date < now - grace))
                .values(status=TI.UNKNOWN_ERROR.value, status_date=now)
                .execution_options(synchronize_session=False)
            ))
            if moved != 1:
                continue
            ti = load(session, TaskInstance, ti_id, "task instance", lock=True)
            session.add(TaskInstanceErrorLog(
                task_instance_id=ti_id, error_time=now,
                description=f"reaper: no report since the deadline {ti.report_by_date} (was {old})",
            ))
            task_status = end_attempt(session, ti, now, resource_error=False)
            run = session.execute(
                select(WorkflowRun.workflow_id, WorkflowRun.user, Workflow.name)
                .join(Workflow, Workflow.id == WorkflowRun.workflow_id)
                .where(WorkflowRun.id == ti.workflow_run_id)
            ).one()
            moves.append(InstanceMove(ti_id, ti.task_id, ti.workflow_run_id, run.workflow_id, run.name,
                                      run.user, TI(old), TI.UNKNOWN_ERROR, TaskStatus(task_status)))
    return InstanceMoves(moves)
