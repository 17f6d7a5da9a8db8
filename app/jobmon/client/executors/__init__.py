"""Executors: what launches ``jobmon-worker`` for each task instance."""

from __future__ import annotations

from jobmon.client.executors.base import (
    Executor,
    ExecutorError,
    LostInstance,
    TaskInstanceSpec,
    find_worker_executable,
)
from jobmon.client.executors.multiprocess import MultiprocessExecutor
from jobmon.client.executors.sequential import SequentialExecutor
from jobmon.client.executors.sge import SGEExecutor

# Names accepted by Workflow.run(executor=...). Slurm registers here when it lands.
EXECUTORS: dict[str, type[Executor]] = {
    SequentialExecutor.name: SequentialExecutor,
    MultiprocessExecutor.name: MultiprocessExecutor,
    SGEExecutor.name: SGEExecutor,
}


def get_executor(executor: str | Executor) -> Executor:
    """An Executor instance from a name or an instance."""
    if isinstance(executor, Executor):
        return executor
    try:
        return EXECUTORS[executor]()
    except KeyError:
        raise ValueError(
            f"unknown executor {executor!r}; expected one of {sorted(EXECUTORS)} or an Executor instance"
        ) from None


__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorError",
    "LostInstance",
    "MultiprocessExecutor",
    "SGEExecutor",
    "SequentialExecutor",
    "TaskInstanceSpec",
    "find_worker_executable",
    "get_executor",
]
