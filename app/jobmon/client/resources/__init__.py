"""Compute resources a task asks its cluster queue for, and how they grow after a resource error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

RESOURCE_KEYS = ("queue", "num_cores", "memory_mb", "runtime_s")
SCALE_KEYS = ("memory", "runtime")
DEFAULT_RESOURCE_SCALES: dict[str, float] = {"memory": 0.5, "runtime": 0.5}


@dataclass(frozen=True)
class ComputeResources:
    """One request: the server validates it against the queue's limits when the task is bound."""

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


def resource_scales(values: Mapping[str, Any] | None) -> dict[str, float]:
    """Fractional growth per resource after a resource error, e.g. {"memory": 0.5} -> x1.5."""
    scales = dict(DEFAULT_RESOURCE_SCALES)
    if values:
        unknown = sorted(set(values) - set(SCALE_KEYS))
        if unknown:
            raise ValueError(f"unknown resource scale(s) {unknown}; expected some of {list(SCALE_KEYS)}")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"resource scale {key!r} must be a number >= 0, got {value!r}")
            scales[key] = float(value)
    return scales
