"""Sizes and durations as people read them, the same in the ``jobmon`` CLI and the Visualization pages."""

from __future__ import annotations

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
    hours, rest = divmod(round(value), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"
