"""Visualization routes: JSON summaries under /api/viz (the `jobmon` CLI reads them) and server-rendered
HTML pages under /viz. Both read through the read-only session factory."""

from __future__ import annotations

from flask import jsonify, render_template, request
from flask.typing import ResponseReturnValue

from jobmon.core.display import human_bytes, human_seconds
from jobmon.server.context import ro_sessions
from jobmon.server.errors import ApiError, InvalidInput
from jobmon.server.validation import ID_MAX as MAX_ID
from jobmon.server.validation import query_int
from jobmon.server.visualization import blueprint
from jobmon.server.visualization.formatting import STATUS_NAMES, human_time
from jobmon.server.visualization.summaries import (
    TASK_STATUS_LETTERS,
    task_detail,
    workflow_summaries,
    workflow_summary,
    workflow_tasks,
)

MAX_WORKFLOWS = 1000
MAX_TASKS_PAGE = 100_000
MAX_USER_LENGTH = 150  # workflow_run.user column width


def _query_user() -> str | None:
    user = request.args.get("user")
    if user is None or user == "":
        return None
    if len(user) > MAX_USER_LENGTH:
        raise InvalidInput(f"query parameter 'user' is longer than {MAX_USER_LENGTH}")
    return user


def _query_ids(name: str) -> list[int]:
    """A repeatable (or comma-separated) query parameter of ids."""
    ids: list[int] = []
    for raw in request.args.getlist(name):
        for part in filter(None, (p.strip() for p in raw.split(","))):
            try:
                value = int(part)
            except ValueError:
                raise InvalidInput(f"query parameter '{name}' must be an integer") from None
            if not 1 <= value <= MAX_ID:
                raise InvalidInput(f"query parameter '{name}' must be between 1 and {MAX_ID}")
            ids.append(value)
    if len(ids) > MAX_WORKFLOWS:
        raise InvalidInput(f"query parameter '{name}' has more than {MAX_WORKFLOWS} values")
    return ids


def _query_statuses() -> list[str]:
    """Task status letters from a repeatable (or comma-separated) `status` parameter."""
    letters: list[str] = []
    for raw in request.args.getlist("status"):
        for part in filter(None, (p.strip() for p in raw.split(","))):
            letter = part.upper()
            if letter not in TASK_STATUS_LETTERS:
                raise InvalidInput(
                    f"query parameter 'status' must be task status letters ({''.join(TASK_STATUS_LETTERS)}),"
                    f" got {part!r}"
                )
            if letter not in letters:
                letters.append(letter)
    return letters


def _limit(default: int, maximum: int) -> int:
    value = query_int("limit", default=default, minimum=1, maximum=maximum)
    assert value is not None
    return value


def _after() -> int | None:
    return query_int("after", default=None, minimum=0, maximum=MAX_ID)


@blueprint.app_template_filter("jobmon_bytes")
def _bytes_filter(value: int | None) -> str:
    return human_bytes(value)


@blueprint.app_template_filter("jobmon_seconds")
def _seconds_filter(value: float | None) -> str:
    return human_seconds(value)


@blueprint.app_template_filter("jobmon_time")
def _time_filter(value: str | None) -> str:
    return human_time(value)


@blueprint.errorhandler(ApiError)
def _error(exc: ApiError) -> ResponseReturnValue:
    # A person reading /viz pages gets an HTML page; the /api/viz JSON routes keep the JSON error body.
    if request.path.startswith("/viz"):
        return render_template("error.html", error=exc), exc.status
    return jsonify({"error": exc.kind, "reason": exc.reason, **exc.details}), exc.status


# ---- JSON ----------------------------------------------------------------------------------------


@blueprint.get("/api/viz/workflows")
def api_workflows() -> ResponseReturnValue:
    """Workflows newest first with task counts by status (filters: user, workflow_id, limit).

    `workflow_id` may repeat; `user` matches any run's user; `limit` defaults to 20 (at most 1000).
    """
    user = _query_user()
    ids = _query_ids("workflow_id")
    limit = _limit(20, MAX_WORKFLOWS)
    with ro_sessions()() as session:
        workflows = workflow_summaries(session, user=user, workflow_ids=ids, limit=limit)
    return jsonify({"workflows": workflows})


@blueprint.get("/api/viz/workflow/<int:workflow_id>/tasks")
def api_workflow_tasks(workflow_id: int) -> ResponseReturnValue:
    """A page of a workflow's tasks in id order (filters: status, limit, after).

    `status` may repeat; `limit` defaults to 1000 (at most 100000); pass `next_after` from one answer as
    `after` to get the next page.
    """
    statuses = _query_statuses()
    limit = _limit(1000, MAX_TASKS_PAGE)
    after = _after()
    with ro_sessions()() as session:
        page = workflow_tasks(session, workflow_id, statuses=statuses, limit=limit, after=after)
    return jsonify(page)


@blueprint.get("/api/viz/task/<int:task_id>")
def api_task(task_id: int) -> ResponseReturnValue:
    """A task, its resources and every instance with usage and error log."""
    with ro_sessions()() as session:
        return jsonify(task_detail(session, task_id))


# ---- HTML ----------------------------------------------------------------------------------------


@blueprint.get("/viz/")
def page_index() -> ResponseReturnValue:
    """HTML: workflows newest first with task counts by status (filters: user, limit)."""
    user = _query_user()
    limit = _limit(20, MAX_WORKFLOWS)
    with ro_sessions()() as session:
        workflows = workflow_summaries(session, user=user, limit=limit)
    return render_template("index.html", workflows=workflows, user=user or "", limit=limit,
                           letters=TASK_STATUS_LETTERS, names=STATUS_NAMES)


@blueprint.get("/viz/workflow/<int:workflow_id>")
def page_workflow(workflow_id: int) -> ResponseReturnValue:
    """HTML: a workflow's status counts and a page of its tasks (filters: status, limit, after)."""
    statuses = _query_statuses()
    limit = _limit(200, MAX_TASKS_PAGE)
    after = _after()
    with ro_sessions()() as session:
        workflow = workflow_summary(session, workflow_id)
        page = workflow_tasks(session, workflow_id, statuses=statuses, limit=limit, after=after)
    return render_template("workflow.html", workflow=workflow, page=page, statuses=statuses,
                           limit=limit, letters=TASK_STATUS_LETTERS, names=STATUS_NAMES)


@blueprint.get("/viz/task/<int:task_id>")
def page_task(task_id: int) -> ResponseReturnValue:
    """HTML: a task, its resources, and each instance's usage (max RSS) and errors."""
    with ro_sessions()() as session:
        task = task_detail(session, task_id)
    return render_template("task.html", task=task, names=STATUS_NAMES)
