"""Compute resource requests: validated against a queue's limits, and adjusted after a resource error.

Pure functions with no database or web dependency, so the server, the client and tests share them.
Memory is in MB, runtime in seconds; measured max RSS arrives in bytes (as the worker and qpid report it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

# Guppy's scale: after a resource error each scaled resource grows by half.
DEFAULT_SCALE = 0.5
SCALED_RESOURCES = ("memory", "runtime")
BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True)
class Resources:
    queue: str
    num_cores: int
    memory_mb: int
    runtime_s: int


@dataclass(frozen=True)
class QueueLimits:
    name: str
    max_cores: int
    max_memory_mb: int
    max_runtime_s: int


def validated(requested: Resources, limits: QueueLimits) -> Resources:
    """The request as the queue can run it: each value capped at the queue's limit, never below 1."""
    return Resources(
        queue=limits.name,
        num_cores=_clamp(requested.num_cores, limits.max_cores),
        memory_mb=_clamp(requested.memory_mb, limits.max_memory_mb),
        runtime_s=_clamp(requested.runtime_s, limits.max_runtime_s),
    )


def adjusted(
    current: Resources,
    limits: QueueLimits,
    scales: Mapping[str, float] | None = None,
    measured_maxrss_bytes: int | None = None,
) -> Resources:
    """The request for the next attempt after a resource error.

    memory = max(current request, measured max RSS) x (1 + scale['memory']);
    runtime = current x (1 + scale['runtime']); each capped at the queue's limits. Cores stay as they are
    (a resource error is about memory or time, and more cores would not help a single-threaded job).
    """
    scales = scales or {}
    memory_base = current.memory_mb
    if measured_maxrss_bytes is not None and measured_maxrss_bytes > 0:
        memory_base = max(memory_base, bytes_to_mb(measured_maxrss_bytes))
    memory = math.ceil(memory_base * (1 + scales.get("memory", DEFAULT_SCALE)))
    runtime = math.ceil(current.runtime_s * (1 + scales.get("runtime", DEFAULT_SCALE)))
    return Resources(
        queue=current.queue,
        num_cores=_clamp(current.num_cores, limits.max_cores),
        memory_mb=_clamp(memory, limits.max_memory_mb),
        runtime_s=_clamp(runtime, limits.max_runtime_s),
    )


def bytes_to_mb(value: int) -> int:
    """Whole MB, rounded up so a request based on a measurement is never below it."""
    return math.ceil(value / BYTES_PER_MB)


def parse_scales(text: str | None) -> dict[str, float]:
    """A task's stored resource_scales JSON; anything unreadable means the defaults."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    }


def _clamp(value: int, limit: int) -> int:
    return max(1, min(value, limit))
