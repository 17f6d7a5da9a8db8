"""How the HTML pages show numbers, durations, timestamps and status letters to people."""

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

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: int | None) -> str:
    """Bytes in binary units with three significant digits, e.g. 1.50 GiB; '-' when unknown."""
    if value is None:
        return "-"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_seconds(value: float | None) -> str:
    """A duration as 1h02m03s (or 4.2s under a minute); '-' when unknown."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    whole = round(value)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def human_time(value: str | None) -> str:
    """An ISO timestamp (naive UTC) to the second, e.g. 2026-01-02 03:04:05; '-' when unknown."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value
