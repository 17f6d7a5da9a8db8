"""Run task instances one at a time, inline: ``submit`` returns when the instance has finished."""

from __future__ import annotations

from typing import Any

from jobmon.client.executors.base import TaskInstanceSpec
from jobmon.client.executors.multiprocess import MultiprocessExecutor


class SequentialExecutor(MultiprocessExecutor):
    """The simplest executor, for debugging a workflow: one ``jobmon-worker`` subprocess at a time, and
    the client waits for it. The workflow run's heartbeat continues in its own thread meanwhile."""

    name = "sequential"
    submit_blocks = True

    def __init__(self, **options: Any) -> None:
        """Takes MultiprocessExecutor's keyword options (``log_dir``, ``worker_executable``, ...) but not
        ``parallelism``: one instance runs at a time."""
        super().__init__(1, **options)

    def submit(self, instance: TaskInstanceSpec) -> str | None:
        running = self._launch(instance)
        if running is None:
            return None
        try:
            running.proc.wait()
        except BaseException:
            # Interrupted (Ctrl-C): do not leave the worker and its command behind.
            self.terminate([str(running.proc.pid)])
            raise
        self._reap()
        return str(running.proc.pid)
