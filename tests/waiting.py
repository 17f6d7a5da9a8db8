"""Waiting on something observable instead of sleeping a fixed time.

A fixed sleep is either too short on a loaded machine (the test flakes) or too long everywhere (the suite
crawls); polling a predicate is neither. This module imports only the standard library: the Grid Engine
tests copy it into the testbed container and use it there too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Raises AssertionError naming ``what`` (e.g. "the worker to write its pid file") if ``timeout`` seconds
    pass first. An exception (or failed assertion) inside the predicate propagates at once: use one to
    stop waiting for something that can no longer happen, e.g. ``assert proc.poll() is None``.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
