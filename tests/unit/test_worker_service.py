"""``jobmon-worker`` as executors start it, against the real app served by werkzeug in a thread."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from harness import serve_in_thread
from jobmon.client import Tool, Workflow
from jobmon.core.config import ClientConfig, JobmonConfig, ServerConfig
from jobmon.core.requester import Requester
from jobmon.server.app import create_app

WORKER = str(Path(sys.executable).parent / "jobmon-worker")


@dataclass
class Live:
    url: str
    requester: Requester
    tmp: Path

    def instance(self, command: str, memory_mb: int = 1024) -> tuple[int, int]:
        """A task instance (id, task id) of a one-task workflow, instantiated and ready for a worker."""
        cfg = ClientConfig(service_url=self.url)
        tool = Tool("worker-tests", config=cfg)
        template = tool.get_task_template("cmd", "{command}", node_args=["command"])
        task = template.create_task(command=command, compute_resources={"memory_mb": memory_mb},
                                    resource_scales={"memory": 1.0})
        workflow = Workflow(tool, "w", {"dir": str(self.tmp), "c": command}, config=cfg)
        workflow.add_task(task)
        run_id = workflow.bind()
        req = self.requester
        req.put(f"/api/state/workflow_run/{run_id}/status", {"status": "R"})
        req.post(f"/api/state/workflow_run/{run_id}/queue", {"task_ids": [task.task_id]})
        answer = req.post(f"/api/state/workflow_run/{run_id}/instantiate",
                          {"task_ids": [task.task_id], "executor_type": "multiprocess"})
        row = answer["task_instances"][0]
        assert row["command"] == command
        return int(row["task_instance_id"]), int(row["task_id"])

    def worker(self, ti: int, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [WORKER, "--task-instance-id", str(ti), "--service-url", self.url, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "JOBMON_CONFIG": str(self.tmp / "none.toml")},
        )

    def task(self, task_id: int) -> dict:
        return self.requester.get(f"/api/viz/task/{task_id}")


@pytest.fixture
def live(tmp_path: Path, service_db) -> Iterator[Live]:
    (tmp_path / "none.toml").write_text("")
    app = create_app(JobmonConfig(server=ServerConfig(db_url=service_db.read_write, log_level="WARNING")))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield Live(base, Requester(base, timeout=30, retries=2), tmp_path)
    finally:
        server.shutdown()


def test_worker_runs_the_command_and_reports_done_with_usage(live):
    marker = live.tmp / "ran"
    ti, task_id = live.instance(f"echo hello; echo to-stderr >&2; touch {marker}")
    worker = live.worker(ti)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert marker.exists()
    assert "hello" in out
    assert "to-stderr" in err
    view = live.task(task_id)
    assert view["status"] == "D"
    inst = view["instances"][0]
    assert inst["status"] == "D"
    assert inst["exit_code"] == 0
    assert inst["executor_id"] == str(worker.pid)
    assert inst["maxrss"] > 0
    assert inst["wallclock"] > 0


def test_worker_reports_failure_with_stderr_tail_and_exits_with_the_commands_code(live):
    ti, task_id = live.instance("echo something broke >&2; exit 7")
    worker = live.worker(ti)
    worker.communicate(timeout=60)
    assert worker.returncode == 7
    inst = live.task(task_id)["instances"][0]
    assert inst["status"] == "E"
    assert inst["exit_code"] == 7
    assert "something broke" in inst["errors"][0]["description"]


def test_worker_over_memory_reports_resource_error(live):
    ti, task_id = live.instance(
        f"{sys.executable} -c \"import time; x = b'x' * (200 << 20); time.sleep(3)\"", memory_mb=50)
    worker = live.worker(ti, "--memory-limit-mb", "50")
    worker.communicate(timeout=60)
    assert worker.returncode == 137
    view = live.task(task_id)
    assert view["status"] == "A"
    inst = view["instances"][0]
    assert inst["status"] == "Z"
    assert inst["maxrss"] > 50 * 1024 * 1024
    assert "memory limit exceeded" in inst["errors"][0]["description"]


def test_worker_told_to_kill_itself_before_starting_exits_quietly(live):
    marker = live.tmp / "ran"
    ti, _ = live.instance(f"touch {marker}")
    live.requester.post(f"/api/state/task_instance/{ti}/error", {"status": "K", "description": "stop"})
    worker = live.worker(ti)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0
    assert not marker.exists()
    assert "Traceback" not in err


def test_worker_kills_its_command_when_a_heartbeat_says_kill_self(live):
    pid_file = live.tmp / "pid"
    ti, _ = live.instance(f"echo $$ > {pid_file}; exec sleep 60")
    worker = live.worker(ti, "--heartbeat-interval", "0.3")
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    command_pid = int(pid_file.read_text())
    live.requester.post(f"/api/state/task_instance/{ti}/error", {"status": "K", "description": "stop"})
    worker.communicate(timeout=30)
    assert worker.returncode == 137
    with pytest.raises(ProcessLookupError):
        os.kill(command_pid, 0)
    inst = live.requester.get(f"/api/query/task_instance/{ti}")
    assert inst["status"] == "K"


def test_worker_for_an_unknown_instance_fails_in_one_line(live):
    worker = live.worker(999)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 1
    assert err.strip().splitlines() == [
        f"jobmon-worker: error: POST {live.url}/api/state/task_instance/999/running answered 404: "
        "task instance 999 not found"]
