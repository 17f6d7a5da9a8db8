"""How the HTML pages show timestamps and status letters to people (sizes and durations: core.display)."""

from __future__ import annotations

from datetime import datetime

from jobmon.core.states import TaskInstanceStatus, TaskStatus, WorkflowRunStatus, WorkflowStatus

# Letter -> readable name for each kind of status, e.g. STATUS_NAMES["task"]["E"] == "ERROR RECOVERABLE".
STATUS_NAMES: dict[str, dict[str, str]] = {
    kind: {s.value: s.name.replace("_", " ") for s in enum}
    for kind, enum in (
        ("workflow", WorkflowStatus),
        ("workflow_run", WorkflowRunStatus),
        ("task", TaskStatus),
        ("task_instance", TaskInstanceStatus),
    )
}


def human_time(value: str | None) -> str:
    """An ISO timestamp (naive UTC) to the second, e.g. 2026-01-02 03:04:05; '-' when unknown."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value
