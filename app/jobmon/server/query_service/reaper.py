"""Query Service reads for the workflow reaper: what may need moving, judged by the database's clock.

Each answer is a candidate list only; the State Manager's ``/reaper/*`` routes re-check the condition when
they move a row, so a run that heartbeats between the two calls is left alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import exists, select

from jobmon.core.states import TASK_INSTANCE_ACTIVE_STATES, WorkflowRunStatus
from jobmon.server.context import ro_sessions
from jobmon.server.db import db_now
from jobmon.server.errors import InvalidInput
from jobmon.server.models import TaskInstance, Workflow, WorkflowRun
from jobmon.server.query_service import blueprint
from jobmon.server.validation import iso, query_int

WFR = WorkflowRunStatus
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
_ACTIVE_TI = [s.value for s in TASK_INSTANCE_ACTIVE_STATES]


def _seconds(name: str, default: float) -> timedelta:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return timedelta(seconds=default)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"query parameter '{name}' must be a number of seconds") from None
    if not 0 <= value <= 365 * 86400:
        raise InvalidInput(f"query parameter '{name}' must be between 0 and 31536000")
    return timedelta(seconds=value)


def _limit() -> int:
    return query_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT


def _runs(where: Any, now: datetime) -> ResponseReturnValue:
    run = WorkflowRun
    with ro_sessions()() as session:
        rows = session.execute(
            select(run.id, run.workflow_id, Workflow.name, run.user, run.status, run.heartbeat_date,
                   run.status_date)
            .join(Workflow, Workflow.id == run.workflow_id)
            .where(*where)
            .order_by(run.id)
            .limit(_limit())
        ).all()
    return jsonify({
        "time": iso(now),
        "workflow_runs": [
            {"workflow_run_id": r.id, "workflow_id": r.workflow_id, "workflow_name": r.name,
             "user": r.user, "status": r.status, "heartbeat_date": iso(r.heartbeat_date),
             "status_date": iso(r.status_date)}
            for r in rows
        ],
    })


def _now() -> datetime:
    with ro_sessions()() as session:
        return db_now(session)


@blueprint.get("/reaper/lost_runs")
def get_lost_runs() -> ResponseReturnValue:
    """Runs in R whose heartbeat deadline passed more than ``threshold`` seconds ago (query parameter,
    default 0), oldest id first, at most ``limit`` (default 1000)."""
    grace = _seconds("threshold", 0.0)
    now = _now()
    # (status, heartbeat_date) index: one range scan however many runs are active.
    return _runs((WorkflowRun.status == WFR.RUNNING.value, WorkflowRun.heartbeat_date < now - grace), now)


@blueprint.get("/reaper/stuck_runs")
def get_stuck_runs() -> ResponseReturnValue:
    """Runs in G or B that neither changed status nor heartbeated for ``threshold`` seconds (default
    3600)."""
    age = _seconds("threshold", 3600.0)
    now = _now()
    return _runs((WorkflowRun.status.in_([WFR.REGISTERED.value, WFR.BOUND.value]),
                  WorkflowRun.status_date < now - age, WorkflowRun.heartbeat_date < now - age), now)


@blueprint.get("/reaper/resumed_runs")
def get_resumed_runs() -> ResponseReturnValue:
    """Resumed runs (C/H) none of whose task instances is still live (I/B/R)."""
    now = _now()
    live = exists().where(TaskInstance.workflow_run_id == WorkflowRun.id,
                          TaskInstance.status.in_(_ACTIVE_TI))
    return _runs((WorkflowRun.status.in_([WFR.COLD_RESUME.value, WFR.HOT_RESUME.value]), ~live), now)


@blueprint.get("/reaper/overdue_instances")
def get_reaper_overdue_instances() -> ResponseReturnValue:
    """Task instances of every run in I/B/R whose report-by deadline passed more than ``threshold``
    seconds ago (default 0), at most ``limit``."""
    grace = _seconds("threshold", 0.0)
    ti = TaskInstance
    with ro_sessions()() as session:
        now = db_now(session)
        # (status, report_by_date) index; NULL deadlines never compare true.
        rows = session.execute(
            select(ti.id, ti.task_id, ti.workflow_run_id, ti.status, ti.executor_id, ti.report_by_date)
            .where(ti.status.in_(_ACTIVE_TI), ti.report_by_date < now - grace)
            .order_by(ti.id)
            .limit(_limit())
        ).all()
    return jsonify({
        "time": iso(now),
        "task_instances": [
            {"task_instance_id": r.id, "task_id": r.task_id, "workflow_run_id": r.workflow_run_id,
             "status": r.status, "executor_id": r.executor_id, "report_by_date": iso(r.report_by_date)}
            for r in rows
        ],
    })
