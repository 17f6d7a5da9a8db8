"""Reports about one task instance, from the executor (submitted, no executor id) and the worker (running,
heartbeat, done, error).

Every reported move is judged by ``jobmon.core.states.task_instance_verdict``: applied, ignored (a known
late or racing report: 200 with ``"ignored": true`` and the unchanged status) or refused (409). Repeating the
current status is ignored too, so a retried request whose answer was lost is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal, get_args

from msgspec import UNSET, Meta, Struct, UnsetType
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
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import deadline, load, table, write_route
from jobmon.server.state_manager.inputs import (
    TEXT_BYTES,
    Count,
    HeartbeatBody,
    Ignorable,
    Increment,
    Name,
    Usage,
    fits_text,
)
from jobmon.server.state_manager.transitions import end_attempt, move_task
from jobmon.server.validation import ID_MAX, accepts

log = logging.getLogger(__name__)

TI = TaskInstanceStatus
ErrorStatus = Literal["E", "U", "Z", "K"]
ERROR_REPORTS = tuple(TI(letter) for letter in get_args(ErrorStatus))
# Grid Engine job ids are numbers, local ones are strings: both are stored as text.
ExecutorId = Annotated[str, Meta(min_length=1, max_length=64)] | Annotated[int, Meta(ge=-ID_MAX, le=ID_MAX)]
# Where the batch system writes the job's output.
OutputPath = Annotated[str, Meta(max_length=4096)]

_ti = table(TaskInstance)
_run = table(WorkflowRun)


class Reported(Ignorable, kw_only=True):
    """The instance's status after the report."""

    status: TI


class ReportedWithTask(Reported, kw_only=True):
    task_status: Annotated[TaskStatus, Meta(description="the task's status after the report")]


class Instructions(Reported, kw_only=True):
    """What the worker does next: stop (``kill_self``), or run ``command``."""

    kill_self: bool
    command: str | UnsetType = UNSET


def _job_id(value: str | int | None) -> str | None:
    return str(value) if isinstance(value, int) else value


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


def _ignored_with_task(session: Session, ti: TaskInstance) -> ReportedWithTask:
    task_status = session.execute(select(Task.status).where(Task.id == ti.task_id)).scalar_one()
    return ReportedWithTask(status=TI(ti.status), task_status=TaskStatus(task_status), ignored=True)


def _log_error(session: Session, ti: TaskInstance, description: str, now: datetime) -> None:
    session.add(TaskInstanceErrorLog(task_instance_id=ti.id, error_time=now, description=_tail(description)))


class SubmittedBody(Struct):
    executor_id: ExecutorId
    next_report_increment: Increment
    stdout: OutputPath | None = None
    stderr: OutputPath | None = None


@blueprint.post("/task_instance/<int:task_instance_id>/submitted")
@accepts(SubmittedBody, answers=Reported)
@write_route
def instance_submitted(body: SubmittedBody, task_instance_id: int) -> Reported:
    """The executor submitted the instance to its batch system: I -> B, with the executor's job id."""
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, TI.SUBMITTED_TO_BATCH_EXECUTOR) == Verdict.IGNORE:
            return Reported(status=TI(ti.status), ignored=True)
        now = db_now(session)
        ti.status = TI.SUBMITTED_TO_BATCH_EXECUTOR.value
        ti.status_date = now
        ti.submitted_date = now
        ti.executor_id = _job_id(body.executor_id)
        ti.report_by_date = deadline(session, body.next_report_increment, now)
        if body.stdout is not None:
            ti.stdout = body.stdout
        if body.stderr is not None:
            ti.stderr = body.stderr
    return Reported(status=TI.SUBMITTED_TO_BATCH_EXECUTOR)


class NoExecutorIdBody(Struct):
    description: str = "the executor returned no job id"


@blueprint.post("/task_instance/<int:task_instance_id>/no_executor_id")
@accepts(NoExecutorIdBody, answers=ReportedWithTask)
@write_route
def instance_no_executor_id(body: NoExecutorIdBody, task_instance_id: int) -> ReportedWithTask:
    """The executor could not submit the instance: I -> W, and the task -> E (or F when out of attempts)."""
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, TI.NO_EXECUTOR_ID) == Verdict.IGNORE:
            return _ignored_with_task(session, ti)
        now = db_now(session)
        ti.status = TI.NO_EXECUTOR_ID.value
        ti.status_date = now
        _log_error(session, ti, body.description, now)
        task_status = end_attempt(session, ti, now, resource_error=False)
    return ReportedWithTask(status=TI.NO_EXECUTOR_ID, task_status=TaskStatus(task_status))


class RunningBody(Struct):
    next_report_increment: Increment
    node_name: Name | None = None
    process_group_id: Count | None = None
    executor_id: ExecutorId | None = None


@blueprint.post("/task_instance/<int:task_instance_id>/running")
@accepts(RunningBody, answers=Instructions)
@write_route
def instance_running(body: RunningBody, task_instance_id: int) -> Instructions:
    """The worker started: I/B -> R and the task -> R; answers the task's command to run. An instance that
    should no longer run (W/U/Z/K, or its run was cold-resumed) is answered ``kill_self: true``."""
    job_id = _job_id(body.executor_id)
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        now = db_now(session)
        _cold_resumed(session, ti, now)
        if ti.status in TASK_INSTANCE_SHOULD_DIE:
            return Instructions(status=TI(ti.status), kill_self=True)
        if _verdict(ti, TI.RUNNING) == Verdict.IGNORE:
            # A repeated report (its answer was lost): the worker still needs its command.
            command = session.execute(select(Task.command).where(Task.id == ti.task_id)).scalar_one()
            return Instructions(status=TI(ti.status), kill_self=False, command=command, ignored=True)
        ti.status = TI.RUNNING.value
        ti.status_date = now
        ti.report_by_date = deadline(session, body.next_report_increment, now)
        if body.node_name is not None:
            ti.node_name = body.node_name
        if body.process_group_id is not None:
            ti.process_group_id = body.process_group_id
        if job_id is not None and ti.executor_id is None:
            ti.executor_id = job_id
        command = move_task(session, ti, TaskStatus.INSTANTIATED, TaskStatus.RUNNING, now).command
    return Instructions(status=TI.RUNNING, kill_self=False, command=command)


@blueprint.post("/task_instance/<int:task_instance_id>/heartbeat")
@accepts(HeartbeatBody, answers=Instructions)
@write_route
def instance_heartbeat(body: HeartbeatBody, task_instance_id: int) -> Instructions:
    """The worker is alive: extends the instance's deadline; ``kill_self`` tells it to stop."""
    seconds = body.next_report_increment
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
                return Instructions(status=TI(seen[0]), kill_self=False)
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        now = db_now(session)
        _cold_resumed(session, ti, now)
        if ti.status in TASK_INSTANCE_ACTIVE_STATES:
            ti.report_by_date = deadline(session, seconds, now)
        status = TI(ti.status)
    return Instructions(status=status, kill_self=status in TASK_INSTANCE_SHOULD_DIE)


@blueprint.post("/task_instance/<int:task_instance_id>/done")
@accepts(Usage, answers=Reported)
@write_route
def instance_done(body: Usage, task_instance_id: int) -> Reported:
    """The command succeeded: R -> D with its usage, and the task -> D."""
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, TI.DONE) == Verdict.IGNORE:
            return Reported(status=TI(ti.status), ignored=True)
        now = db_now(session)
        for name, value in body.usage().items():
            setattr(ti, name, value)
        ti.status = TI.DONE.value
        ti.status_date = now
        move_task(session, ti, TaskStatus.RUNNING, TaskStatus.DONE, now)
    return Reported(status=TI.DONE)


class ErrorBody(Usage, kw_only=True):
    status: ErrorStatus
    description: Annotated[str, Meta(description="kept in the error log; an over-long one keeps its end")]


@blueprint.post("/task_instance/<int:task_instance_id>/error")
@accepts(ErrorBody, answers=ReportedWithTask)
@write_route
def instance_error(body: ErrorBody, task_instance_id: int) -> ReportedWithTask:
    """The attempt failed: the instance -> E/U/Z/K, an error-log row keeps the description, and the task
    R/I -> E, then F (attempts used up), A (Z: resource error, retried with more) or stays E."""
    new = TI(body.status)
    with transaction(rw_sessions()) as session:
        ti = _load(session, task_instance_id)
        if _verdict(ti, new) == Verdict.IGNORE:
            return _ignored_with_task(session, ti)
        now = db_now(session)
        for name, value in body.usage().items():
            setattr(ti, name, value)
        ti.status = new.value
        ti.status_date = now
        _log_error(session, ti, body.description, now)
        task_status = end_attempt(session, ti, now, resource_error=new == TI.RESOURCE_ERROR)
    return ReportedWithTask(status=new, task_status=TaskStatus(task_status))

