"""Fixtures of the end-to-end tests.

  killed_client  factory: killed_client(service_url, out_dir, tasks_done) -> (workflow_id, run_id)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from waiting import wait_until

HERE = Path(__file__).parent


def _start_and_kill_client(service_url: str, out_dir: Path, tasks_done: int) -> tuple[int, int]:
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    client = subprocess.Popen(
        [sys.executable, str(HERE / "resume_workflow.py"), service_url, str(out_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    try:
        assert client.stdout is not None
        workflow_id, run_id = (int(x) for x in client.stdout.readline().split())

        def enough_tasks_done() -> bool:
            assert client.poll() is None, "the client finished before it could be killed"
            return len(list(out_dir.iterdir())) >= tasks_done

        wait_until(enough_tasks_done, 90, f"the client to finish {tasks_done} tasks")
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    return workflow_id, run_id


@pytest.fixture
def killed_client() -> Callable[[str, Path, int], tuple[int, int]]:
    """Factory: ``killed_client(service_url, out_dir, tasks_done)`` runs resume_workflow.py (100 sleeping
    tasks, 2 s heartbeats) against ``service_url`` until ``tasks_done`` tasks wrote their file into
    ``out_dir`` (which it creates), then SIGKILLs it and returns its ``(workflow_id, run_id)``. The run
    stays R, its heartbeat deadline about 6 s ahead; the tasks that finished are D."""
    return _start_and_kill_client
