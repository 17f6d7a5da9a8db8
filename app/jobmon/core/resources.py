"""Compute resources: the one shape a task asks its queue for, its checks, the queue's limits, and how a
request grows after a resource error.

Pure functions with no database or web dependency, so the server, the client and tests share them.
Memory is in MB, runtime in seconds; measured max RSS arrives in bytes (as the worker and qpid report it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Guppy's scale: after a resource error each scaled resource grows by half.
DEFAULT_SCALE = 0.5
SCALED_RESOURCES = ("memory", "runtime")
DEFAULT_RESOURCE_SCALES: dict[str, float] = dict.fromkeys(SCALED_RESOURCES, DEFAULT_SCALE)
RESOURCE_KEYS = ("queue", "num_cores", "memory_mb", "runtime_s")
BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True)
class ComputeResources:
    """One request; the server validates it against the queue's limits when the task is bound."""

    queue: str = "all.q"
    num_cores: int = 1
    memory_mb: int = 1024
    runtime_s: int = 3600

    def __post_init__(self) -> None:
        if not isinstance(self.queue, str) or not self.queue:
            raise ValueError(f"compute resource 'queue' must be a non-empty string, got {self.queue!r}")
        for key in ("num_cores", "memory_mb", "runtime_s"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"compute resource {key!r} must be a positive integer, got {value!r}")

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any] | None, base: ComputeResources | None = None
    ) -> ComputeResources:
        """``values`` over ``base`` (or the defaults); an unknown key is an error, not silently dropped."""
        merged: dict[str, Any] = asdict(base) if base is not None else {}
        if values:
            unknown = sorted(set(values) - set(RESOURCE_KEYS))
            if unknown:
                raise ValueError(
                    f"unknown compute resource(s) {unknown}; expected some of {list(RESOURCE_KEYS)}"
                )
            merged.update(values)
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QueueLimits:
    name: str
    max_cores: int
    max_memory_mb: int
    max_runtime_s: int


def validated(requested: ComputeResources, limits: QueueLimits) -> ComputeResources:
    """The request as the queue can run it: each value capped at the queue's limit, never below 1."""
    return ComputeResources(
        queue=limits.name,
        num_cores=_clamp(requested.num_cores, limits.max_cores),
        memory_mb=_clamp(requested.memory_mb, limits.max_memory_mb),
        runtime_s=_clamp(requested.runtime_s, limits.max_runtime_s),
    )


def adjusted(
    current: ComputeResources,
    limits: QueueLimits,
    scales: Mapping[str, float] | None = None,
    measured_maxrss_bytes: int | None = None,
) -> ComputeResources:
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
    return ComputeResources(
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


def resource_scales(values: Mapping[str, Any] | None) -> dict[str, float]:
    """Fractional growth per resource after a resource error, e.g. {"memory": 0.5} -> x1.5."""
    scales = dict(DEFAULT_RESOURCE_SCALES)
    if values:
        unknown = sorted(set(values) - set(SCALED_RESOURCES))
        if unknown:
            raise ValueError(
                f"unknown resource scale(s) {unknown}; expected some of {list(SCALED_RESOURCES)}"
            )
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"resource scale {key!r} must be a number >= 0, got {value!r}")
            scales[key] = float(value)
    return scales
