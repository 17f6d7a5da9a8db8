"""Resource requests: validated against a queue, adjusted after a resource error."""

from __future__ import annotations

import pytest

from jobmon.core.resources import (
    BYTES_PER_MB,
    DEFAULT_SCALE,
    ComputeResources,
    QueueLimits,
    adjusted,
    bytes_to_mb,
    parse_scales,
    validated,
)

ALL_Q = QueueLimits("all.q", max_cores=64, max_memory_mb=262_144, max_runtime_s=259_200)


def test_default_scale_is_guppys() -> None:
    assert DEFAULT_SCALE == 0.5


def test_validated_caps_each_value_at_the_queue() -> None:
    asked = ComputeResources("all.q", num_cores=100, memory_mb=10**9, runtime_s=10**9)
    assert validated(asked, ALL_Q) == ComputeResources("all.q", 64, 262_144, 259_200)
    small = ComputeResources("all.q", 2, 1024, 60)
    assert validated(small, ALL_Q) == small


def test_adjusted_scales_memory_and_runtime_by_half() -> None:
    current = ComputeResources("all.q", 2, 1000, 600)
    assert adjusted(current, ALL_Q) == ComputeResources("all.q", 2, 1500, 900)


def test_adjusted_starts_from_measured_memory_when_larger() -> None:
    current = ComputeResources("all.q", 1, 1024, 600)
    assert adjusted(current, ALL_Q, measured_maxrss_bytes=2048 * BYTES_PER_MB).memory_mb == 3072
    # A measurement below the request does not shrink it.
    assert adjusted(current, ALL_Q, measured_maxrss_bytes=10 * BYTES_PER_MB).memory_mb == 1536
    # Partial MB round up, so the base is never below the measurement.
    assert adjusted(current, ALL_Q, {"memory": 0},
                    measured_maxrss_bytes=2048 * BYTES_PER_MB + 1).memory_mb == 2049


def test_adjusted_uses_the_tasks_scales() -> None:
    current = ComputeResources("all.q", 1, 1000, 600)
    doubled = ComputeResources("all.q", 1, 2000, 600)
    assert adjusted(current, ALL_Q, {"memory": 1.0, "runtime": 0.0}) == doubled
    assert adjusted(current, ALL_Q, {"runtime": 2.0}) == ComputeResources("all.q", 1, 1500, 1800)


def test_adjusted_is_capped_at_the_queue() -> None:
    current = ComputeResources("all.q", 64, 200_000, 200_000)
    assert adjusted(current, ALL_Q) == ComputeResources("all.q", 64, 262_144, 259_200)
    assert adjusted(current, ALL_Q, measured_maxrss_bytes=10**15).memory_mb == 262_144


def test_adjusted_rounds_up() -> None:
    assert adjusted(ComputeResources("all.q", 1, 3, 3), ALL_Q) == ComputeResources("all.q", 1, 5, 5)


@pytest.mark.parametrize(("value", "mb"), [(0, 0), (1, 1), (BYTES_PER_MB, 1), (BYTES_PER_MB + 1, 2)])
def test_bytes_to_mb(value: int, mb: int) -> None:
    assert bytes_to_mb(value) == mb


@pytest.mark.parametrize(("text", "scales"), [
    ('{"memory": 0.5, "runtime": 1}', {"memory": 0.5, "runtime": 1.0}),
    ("{}", {}),
    ("", {}),
    (None, {}),
    ("not json", {}),
    ("[1]", {}),
    ('{"memory": "big", "runtime": -1, "cores": true, "x": 2}', {"x": 2.0}),
])
def test_parse_scales(text: str | None, scales: dict) -> None:
    assert parse_scales(text) == scales
