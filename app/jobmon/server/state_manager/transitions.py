"""How a task follows its instance: the task moves a report or a reaper move of one of its instances
causes. Used by the worker and executor reports (``task_instances``) and the reaper (``reaping``)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobmon.core.states import TaskStatus, task_status_after_error
from jobmon.server.models import Task, TaskInstance
from jobmon.server.state_manager.common import load

log = logging.getLogger(__name__)


def end_attempt(session: Session, ti: TaskInstance, now: datetime, resource_error: bool) -> str:
    """The task's move after its instance failed: R/I -> E, then F (attempts used up), A (resource
    error) or E. Only the task's newest instance can move it, and only while the task is R or I: a report
    from an instance a resume already replaced leaves the task alone."""
    task = load(session, Task, ti.task_id, "task", lock=True)
    if task.status not in (TaskStatus.RUNNING, TaskStatus.INSTANTIATED):
        log.info("task %s is %s: instance %s ending leaves it", task.id, task.status, ti.id)
        return task.status
    newest = session.execute(
        select(func.max(TaskInstance.id)).where(TaskInstance.task_id == task.id)
    ).scalar_one()
    if newest != ti.id:
        log.info("task %s: instance %s is not its newest (%s); task left %s",
                 task.id, ti.id, newest, task.status)
        return task.status
    outcome = task_status_after_error(task.num_attempts, task.max_attempts, resource_error)
    task.status = outcome.value
    task.status_date = now
    return task.status


def move_task(session: Session, ti: TaskInstance, frm: TaskStatus, to: TaskStatus, now: datetime) -> Task:
    task = load(session, Task, ti.task_id, "task", lock=True)
    if task.status == frm:
        task.status = to.value
        task.status_date = now
    elif task.status != to:
        log.warning("task %s is %s: instance %s moving to %s leaves it", task.id, task.status, ti.id,
                    ti.status)
    return task
