"""Reports about one task instance, from the executor (submitted, no executor id) and the worker (running,
heartbeat, done, error).

Every reported move is judged by ``jobmon.core.states.task_instance_verdict``: applied, ignored (a known
late or racing report: 200 with ``"ignored": true`` and the unchanged status) or refused (409). Repeating the
current status is ignored too, so a retried request whose answer was lost is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobmon.core.states import (
    TASK_INSTANCE_ACTIVE_STATES,
    TASK_INSTANCE_SHOULD_DIE,
    TaskInstanceStatus,
    TaskStatus,
    Verdict,
    WorkflowRunStatus,
    task_instance_verdict,
)
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_deadline, db_now, transaction
from jobmon.server.errors import Conflict, NotFound
from jobmon.server.models import Task, TaskInstance, TaskInstanceErrorLog, WorkflowRun
from jobmon.server.openapi import request_schema
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import deadline, load, table, write_route
from jobmon.server.state_manager.inputs import (
    TEXT_BYTES,
    USAGE_SCHEMA,
    executor_id,
    fits_text,
    increment,
    int_field,
    text_field,
    usage,
)
from jobmon.server.state_manager.transitions import end_attempt, move_task
from jobmon.server.validation import ID_MAX, field, json_body

log = logging.getLogger(__name__)

TI = TaskInstanceStatus
ERROR_REPORTS = (TI.ERROR, TI.UNKNOWN_ERROR, TI.RESOURCE_ERROR, TI.KILL_SELF)

_INCREMENT = {"type": "number", "exclusiveMinimum": 0,
              "description": "seconds until the next report; the deadline is DB now + this"}


_ti = table(TaskInstance)
_run = table(WorkflowRun)

def _load(session: Session, task_instance_id: int) -> TaskInstance:
    return load(session, TaskInstance, task_instance_id, "task instance", lock=True)


def _verdict(ti: TaskInstance, new: TaskInstanceStatus) -> Verdict:
    current = TI(ti.status)
    if current == new:
        return Verdict.IGNORE
    verdict = task_instance_verdict(current, new)
    if verdict == Verdict.REFUSE:
        raise Conflict(
            f"task instance {ti.id} cannot move from {current.value} to {new.value}",
            task_instance_status=current.value,
        )
    if verdict == Verdict.IGNORE:
        log.info("task instance %s: late report %s -> %s ignored", ti.id, current.value, new.value)
    return verdict


def _ignored(ti: TaskInstance, **extra: Any) -> ResponseReturnValue:
    return jsonify({"status": ti.status, **extra, "ignored": True})


def _tail(text: str) -> str:
    """The end of an over-long text (of stderr, the end says most), cut to fit a TEXT column."""
    if fits_text(text):
        return text
    return text.encode()[-(TEXT_BYTES - 4):].decode(errors="ignore")


def _cold_resumed(session: Session, ti: TaskInstance, now: datetime) -> None:
    """An instance still live in a run another process cold-resumed is told to die (normally the resume
    already set it to K; this closes the gap for any report racing it)."""
    if ti.status not in TASK_INSTANCE_ACTIVE_STATES:
        return
    run_status = session.execute(
        select(WorkflowRun.status).where(WorkflowRun.id == ti.workflow_run_id)
    ).scalar_one()
    if run_status == WorkflowRunStatus.COLD_RESUME:
        ti.status = TI.KILL_SELF.value
        ti.status_date = now


def _log_error(session: Session, ti: TaskInstance, description: str, now: datetime) -> None:
    session.add(TaskInstanceErrorLog(task_instance_id=ti.id, error_time=now, description=_tail(description)))


@blueprint.post("/task_instance/<int:task_instance_id>/submitted")
@request_schema({
    "type": "object",
    "required": ["executor_id", "next_report_increment"],
    "properties": {
        "executor_id": {"type": ["string", "integer"]},
        "next_report_increment": _INCREMENT,
        "stdout": {"type": "string", "description": "where the job's stdout goes"},
        "stderr": {"type": "string", "description": "where the job's stderr goes"},
    },
})
@write_route
def instance_submitted(task_instance_id: int) -> ResponseReturnValue:
    """The executor submitted the instance to its batch system: I -> B, with the executor's job id."""
    body = json_body()
    job_id = executor_id(body, required=True)
    seconds = increment(body)
    stdout = text_field(body, "stdout", max_length=4096, default=None)
    stderr = text_field(body, "stderr", max_length=4096, default=None)
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, TI.SUBMITTED_TO_BATCH_EXECUTOR) == Verdict.IGNORE:
            return _ignored(ti)
        now = db_now(session)
        ti.status = TI.SUBMITTED_TO_BATCH_EXECUTOR.value
        ti.status_date = now
        ti.submitted_date = now
        ti.executor_id = job_id
        ti.report_by_date = deadline(session, seconds, now)
        if stdout is not None:
            ti.stdout = stdout
        if stderr is not None:
            ti.stderr = stderr
        status = ti.status
    return jsonify({"status": status})


@blueprint.post("/task_instance/<int:task_instance_id>/no_executor_id")
@request_schema({
    "type": "object",
    "properties": {"description": {"type": "string"}},
})
@write_route
def instance_no_executor_id(task_instance_id: int) -> ResponseReturnValue:
    """The executor could not submit the instance: I -> W, and the task -> E (or F when out of attempts)."""
    description = field(json_body(), "description", str, default="the executor returned no job id")
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, TI.NO_EXECUTOR_ID) == Verdict.IGNORE:
            task_status = session.execute(select(Task.status).where(Task.id == ti.task_id)).scalar_one()
            return _ignored(ti, task_status=task_status)
        now = db_now(session)
        ti.status = TI.NO_EXECUTOR_ID.value
        ti.status_date = now
        _log_error(session, ti, description, now)
        task_status = end_attempt(session, ti, now, resource_error=False)
        status = ti.status
    return jsonify({"status": status, "task_status": task_status})


@blueprint.post("/task_instance/<int:task_instance_id>/running")
@request_schema({
    "type": "object",
    "required": ["next_report_increment"],
    "properties": {
        "node_name": {"type": "string", "maxLength": 255},
        "process_group_id": {"type": "integer"},
        "next_report_increment": _INCREMENT,
        "executor_id": {"type": ["string", "integer"]},
    },
})
@write_route
def instance_running(task_instance_id: int) -> ResponseReturnValue:
    """The worker started: I/B -> R and the task -> R; answers the task's command to run. An instance that
    should no longer run (W/U/Z/K, or its run was cold-resumed) is answered ``kill_self: true``."""
    body = json_body()
    node_name = text_field(body, "node_name", default=None)
    pgid = int_field(body, "process_group_id", default=None)
    seconds = increment(body)
    job_id = executor_id(body, required=False)
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        now = db_now(session)
        _cold_resumed(session, ti, now)
        if ti.status in TASK_INSTANCE_SHOULD_DIE:
            return jsonify({"status": ti.status, "kill_self": True})
        if _verdict(ti, TI.RUNNING) == Verdict.IGNORE:
            # A repeated report (its answer was lost): the worker still needs its command.
            command = session.execute(select(Task.command).where(Task.id == ti.task_id)).scalar_one()
            return _ignored(ti, kill_self=False, command=command)
        ti.status = TI.RUNNING.value
        ti.status_date = now
        ti.report_by_date = deadline(session, seconds, now)
        if node_name is not None:
            ti.node_name = node_name
        if pgid is not None:
            ti.process_group_id = pgid
        if job_id is not None and ti.executor_id is None:
            ti.executor_id = job_id
        command = move_task(session, ti, TaskStatus.INSTANTIATED, TaskStatus.RUNNING, now).command
        status = ti.status
    return jsonify({"status": status, "kill_self": False, "command": command})


@blueprint.post("/task_instance/<int:task_instance_id>/heartbeat")
@request_schema({
    "type": "object",
    "required": ["next_report_increment"],
    "properties": {"next_report_increment": _INCREMENT},
})
@write_route
def instance_heartbeat(task_instance_id: int) -> ResponseReturnValue:
    """The worker is alive: extends the instance's deadline; ``kill_self`` tells it to stop."""
    seconds = increment(json_body())
    with transaction(rw_sessions()) as session:
        if task_instance_id > ID_MAX:
            raise NotFound(f"task instance {task_instance_id} not found")
        # Fast path, the common case at thousands of beats a second: a live instance of a run nobody
        # cold-resumed gets its deadline moved by one conditional UPDATE, without a row lock held across
        # round trips. Anything else (or a status that changed in between) takes the full path below.
        # Core statements on the session's connection: the ORM adds nothing here but CPU.
        conn = session.connection()
        seen = conn.execute(
            select(_ti.c.status, _run.c.status)
            .join_from(_ti, _run, _run.c.id == _ti.c.workflow_run_id)
            .where(_ti.c.id == task_instance_id)
        ).one_or_none()
        if seen is not None and seen[0] in TASK_INSTANCE_ACTIVE_STATES \
                and seen[1] != WorkflowRunStatus.COLD_RESUME:
            moved = conn.execute(
                update(_ti)
                .where(_ti.c.id == task_instance_id, _ti.c.status == seen[0])
                .values(report_by_date=db_deadline(session, seconds))
            ).rowcount
            if moved == 1:
                return jsonify({"status": seen[0], "kill_self": False})
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        now = db_now(session)
        _cold_resumed(session, ti, now)
        if ti.status in TASK_INSTANCE_ACTIVE_STATES:
            ti.report_by_date = deadline(session, seconds, now)
        status = ti.status
    return jsonify({"status": status, "kill_self": status in TASK_INSTANCE_SHOULD_DIE})


@blueprint.post("/task_instance/<int:task_instance_id>/done")
@request_schema({"type": "object", "properties": USAGE_SCHEMA})
@write_route
def instance_done(task_instance_id: int) -> ResponseReturnValue:
    """The command succeeded: R -> D with its usage, and the task -> D."""
    values = usage(json_body())
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, TI.DONE) == Verdict.IGNORE:
            return _ignored(ti)
        now = db_now(session)
        for name, value in values.items():
            setattr(ti, name, value)
        ti.status = TI.DONE.value
        ti.status_date = now
        move_task(session, ti, TaskStatus.RUNNING, TaskStatus.DONE, now)
        status = ti.status
    return jsonify({"status": status})


@blueprint.post("/task_instance/<int:task_instance_id>/error")
@request_schema({
    "type": "object",
    "required": ["status", "description"],
    "properties": {
        "status": {"type": "string", "enum": [s.value for s in ERROR_REPORTS]},
        "description": {"type": "string"},
        **USAGE_SCHEMA,
    },
})
@write_route
def instance_error(task_instance_id: int) -> ResponseReturnValue:
    """The attempt failed: the instance -> E/U/Z/K, an error-log row keeps the description, and the task
    R/I -> E, then F (attempts used up), A (Z: resource error, retried with more) or stays E."""
    body = json_body()
    new = TI(field(body, "status", str, choices={s.value for s in ERROR_REPORTS}))
    description = field(body, "description", str)
    values = usage(body)
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, new) == Verdict.IGNORE:
            task_status = session.execute(select(Task.status).where(Task.id == ti.task_id)).scalar_one()
            return _ignored(ti, task_status=task_status)
        now = db_now(session)
        for name, value in values.items():
            setattr(ti, name, value)
        ti.status = new.value
        ti.status_date = now
        _log_error(session, ti, description, now)
        task_status = end_attempt(session, ti, now, resource_error=new == TI.RESOURCE_ERROR)
        status = ti.status
    return jsonify({"status": status, "task_status": task_status})

