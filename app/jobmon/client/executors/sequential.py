"""Run task instances one at a time, inline: ``submit`` returns when the instance has finished."""

from __future__ import annotations

import os

from jobmon.client.executors.base import TaskInstanceSpec
from jobmon.client.executors.multiprocess import MultiprocessExecutor


class SequentialExecutor(MultiprocessExecutor):
    """The simplest executor, for debugging a workflow: one ``jobmon-worker`` subprocess at a time, and
    the client waits for it. The workflow run's heartbeat continues in its own thread meanwhile."""

    name = "sequential"
    submit_blocks = True

    def __init__(
        self,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        worker_executable: str | None = None,
        worker_heartbeat_interval: float | None = None,
        terminate_grace: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(1, log_dir=log_dir, worker_executable=worker_executable,
                         worker_heartbeat_interval=worker_heartbeat_interval,
                         terminate_grace=terminate_grace, env=env)

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
