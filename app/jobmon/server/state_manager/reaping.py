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
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from jobmon.core.states import (
    TASK_INSTANCE_ACTIVE_STATES,
    WORKFLOW_TRANSITIONS,
    TaskInstanceStatus,
    WorkflowRunStatus,
    WorkflowStatus,
)
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.models import TaskInstance, TaskInstanceErrorLog, Workflow, WorkflowRun
from jobmon.server.openapi import request_schema
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import load, write_route
from jobmon.server.state_manager.inputs import id_list
from jobmon.server.state_manager.transitions import end_attempt
from jobmon.server.validation import field, json_body

log = logging.getLogger(__name__)

WFR = WorkflowRunStatus
WF = WorkflowStatus
TI = TaskInstanceStatus

# One request moves at most this many rows: each is its own conditional UPDATE in one transaction.
MAX_IDS = 1000
_ACTIVE_TI = [s.value for s in TASK_INSTANCE_ACTIVE_STATES]

_IDS_SCHEMA = {"type": "array", "maxItems": MAX_IDS, "items": {"type": "integer", "minimum": 1}}
_THRESHOLD_SCHEMA = {"type": "number", "minimum": 0,
                     "description": "seconds past the deadline (database clock) before the move applies"}


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (its WHERE held): MariaDB's client is told to count matched, not changed,
    rows by SQLAlchemy's pymysql dialect, and SQLite counts matched rows."""
    return int(getattr(result, "rowcount", 0) or 0)


def _threshold(body: dict[str, Any], name: str = "threshold") -> float:
    return field(body, name, float, minimum=0.0, maximum=365 * 86400.0, default=0.0)


def _run_mover(
    session: Session, run_id: int, expected: tuple[WorkflowRunStatus, ...], new: WorkflowRunStatus,
    now: datetime, *condition: Any,
) -> dict[str, Any] | None:
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
    return {
        "workflow_id": run.workflow_id,
        "workflow_name": name,
        "workflow_run_id": run_id,
        "user": run.user,
        "old_status": old,
        "new_status": new.value,
        "workflow_old_status": wf_old,
        "workflow_new_status": None,
    }


def _workflow_follows(session: Session, move: dict[str, Any], target: WorkflowStatus,
                      now: datetime) -> None:
    """The workflow follows the run to ``target`` when this run is its newest and the workflow's table
    allows the move; conditional on the status just read, like the run's own move."""
    workflow_id = move["workflow_id"]
    newest = session.execute(
        select(func.max(WorkflowRun.id)).where(WorkflowRun.workflow_id == workflow_id)
    ).scalar_one()
    current = WF(move["workflow_old_status"])
    if newest != move["workflow_run_id"] or target not in WORKFLOW_TRANSITIONS[current]:
        return
    moved = _rowcount(session.execute(
        update(Workflow)
        .where(Workflow.id == workflow_id, Workflow.status == current.value)
        .values(status=target.value, status_date=now)
        .execution_options(synchronize_session=False)
    ))
    if moved == 1:
        move["workflow_new_status"] = target.value


def _move_runs(
    run_ids: list[int], expected: tuple[WorkflowRunStatus, ...], new: WorkflowRunStatus,
    workflow_target: WorkflowStatus, condition: Any,
) -> list[dict[str, Any]]:
    moves: list[dict[str, Any]] = []
    with transaction(rw_sessions()) as session:
        now = db_now(session)
        for run_id in sorted(set(run_ids)):
            move = _run_mover(session, run_id, expected, new, now, *condition(now))
            if move is None:
                continue
            _workflow_follows(session, move, workflow_target, now)
            log.info("reaper: workflow run %s of workflow %s %s -> %s (workflow %s -> %s)", run_id,
                     move["workflow_id"], move["old_status"], move["new_status"],
                     move["workflow_old_status"], move["workflow_new_status"])
            moves.append(move)
    return moves


@blueprint.post("/reaper/lost_runs")
@request_schema({
    "type": "object",
    "required": ["workflow_run_ids"],
    "properties": {"workflow_run_ids": _IDS_SCHEMA, "threshold": _THRESHOLD_SCHEMA},
})
@write_route
def reap_lost_runs() -> ResponseReturnValue:
    """Runs in R whose heartbeat deadline passed more than ``threshold`` seconds ago -> E, their workflow
    -> F. Answers ``{"moved": [...]}``: only the runs this call moved."""
    body = json_body()
    ids = id_list(body, "workflow_run_ids", max_items=MAX_IDS)
    grace = timedelta(seconds=_threshold(body))
    moves = _move_runs(ids, (WFR.RUNNING,), WFR.ERROR, WF.FAILED,
                       lambda now: (WorkflowRun.heartbeat_date < now - grace,))
    return jsonify({"moved": moves})


@blueprint.post("/reaper/stuck_runs")
@request_schema({
    "type": "object",
    "required": ["workflow_run_ids"],
    "properties": {"workflow_run_ids": _IDS_SCHEMA, "threshold": _THRESHOLD_SCHEMA},
})
@write_route
def reap_stuck_runs() -> ResponseReturnValue:
    """Runs in G or B that have neither changed status nor heartbeated for ``threshold`` seconds -> A,
    their workflow -> A."""
    body = json_body()
    ids = id_list(body, "workflow_run_ids", max_items=MAX_IDS)
    age = timedelta(seconds=_threshold(body))
    moves = _move_runs(
        ids, (WFR.REGISTERED, WFR.BOUND), WFR.ABORTED, WF.ABORTED,
        lambda now: (WorkflowRun.status_date < now - age, WorkflowRun.heartbeat_date < now - age),
    )
    return jsonify({"moved": moves})


def _no_live_instance() -> Any:
    return ~exists().where(TaskInstance.workflow_run_id == WorkflowRun.id,
                           TaskInstance.status.in_(_ACTIVE_TI))


@blueprint.post("/reaper/resumed_runs")
@request_schema({
    "type": "object",
    "required": ["workflow_run_ids"],
    "properties": {"workflow_run_ids": _IDS_SCHEMA},
})
@write_route
def reap_resumed_runs() -> ResponseReturnValue:
    """Resumed runs (C/H) none of whose instances is still live (I/B/R) -> T; the workflow -> S only when
    the run is still its newest (a resume normally made a newer run, which then owns the workflow)."""
    ids = id_list(json_body(), "workflow_run_ids", max_items=MAX_IDS)
    moves = _move_runs(ids, (WFR.COLD_RESUME, WFR.HOT_RESUME), WFR.TERMINATED, WF.SUSPENDED,
                       lambda _now: (_no_live_instance(),))
    return jsonify({"moved": moves})


@blueprint.post("/reaper/overdue_instances")
@request_schema({
    "type": "object",
    "required": ["task_instance_ids"],
    "properties": {"task_instance_ids": _IDS_SCHEMA, "threshold": _THRESHOLD_SCHEMA},
})
@write_route
def reap_overdue_instances() -> ResponseReturnValue:
    """Instances in I/B/R whose report-by deadline passed more than ``threshold`` seconds ago -> U (lost:
    no word from the worker or the executor), with an error-log row; the task -> E, or F when its attempts
    are used up (``states.task_status_after_error``), so the client queues it again."""
    body = json_body()
    ids = id_list(body, "task_instance_ids", max_items=MAX_IDS)
    grace = timedelta(seconds=_threshold(body))
    moves: list[dict[str, Any]] = []
    with transaction(rw_sessions()) as session:
        now = db_now(session)
        for ti_id in sorted(set(ids)):
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
            moves.append({
                "task_instance_id": ti_id, "task_id": ti.task_id,
                "workflow_run_id": ti.workflow_run_id, "workflow_id": run.workflow_id,
                "workflow_name": run.name, "user": run.user,
                "old_status": old, "new_status": TI.UNKNOWN_ERROR.value, "task_status": task_status,
            })
    return jsonify({"moved": moves})
