"""``jobmon-worker`` refuses to run a task when its version differs from the service's (a cluster node
left on an old install), and says so on stderr and in the instance's error log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

import jobmon
from harness import serve_in_thread
from jobmon.client import Tool, Workflow
from jobmon.core.config import ClientConfig, JobmonConfig, ServerConfig
from jobmon.core.requester import Requester
from jobmon.server.app import create_app
from jobmon.worker import cli

# The worker, run with its package version replaced (as an old install on a node would report it).
OLD_WORKER = ("import sys, jobmon; jobmon.__version__ = '0.0.1'; from jobmon.worker.cli import main; "
              "sys.exit(main(sys.argv[1:]))")


@pytest.fixture
def service(service_db) -> Iterator[str]:
    app = create_app(JobmonConfig(server=ServerConfig(db_url=service_db.read_write, log_level="WARNING")))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serve_in_thread(server)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def instance(url: str, tmp: Path, marker: Path) -> tuple[int, int]:
    cfg = ClientConfig(service_url=url)
    tool = Tool("version-tests", config=cfg)
    template = tool.get_task_template("cmd", "{command}", node_args=["command"])
    task = template.create_task(command=f"touch {marker}")
    workflow = Workflow(tool, "w", {"dir": str(tmp)}, config=cfg)
    workflow.add_task(task)
    run_id = workflow.bind()
    req = Requester(url, timeout=30, retries=1)
    req.put(f"/api/state/workflow_run/{run_id}/status", {"status": "R"})
    req.post(f"/api/state/workflow_run/{run_id}/queue", {"task_ids": [task.task_id]})
    row = req.post(f"/api/state/workflow_run/{run_id}/instantiate",
                   {"task_ids": [task.task_id], "executor_type": "sge"})["task_instances"][0]
    req.post(f"/api/state/task_instance/{row['task_instance_id']}/submitted",
             {"executor_id": "1", "next_report_increment": 60})
    return int(row["task_instance_id"]), int(row["task_id"])


def test_a_worker_of_another_version_refuses_to_run_and_says_why(service, tmp_path):
    marker = tmp_path / "ran"
    ti, task_id = instance(service, tmp_path, marker)
    (tmp_path / "none.toml").write_text("")
    done = subprocess.run(
        [sys.executable, "-c", OLD_WORKER, "--task-instance-id", str(ti), "--service-url", service],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "JOBMON_CONFIG": str(tmp_path / "none.toml")},
    )
    assert done.returncode == cli.EXIT_VERSION_MISMATCH
    assert not marker.exists()
    assert (f"jobmon-worker 0.0.1 differs from the Jobmon service's version {jobmon.__version__}"
            in done.stderr)
    view = Requester(service, timeout=30, retries=1).get(f"/api/viz/task/{task_id}")
    inst = view["instances"][0]
    assert inst["status"] == "U"
    assert "differs from the Jobmon service's version" in inst["errors"][0]["description"]


def test_a_worker_of_the_same_version_runs(service, tmp_path):
    marker = tmp_path / "ran"
    ti, _ = instance(service, tmp_path, marker)
    (tmp_path / "none.toml").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "jobmon.worker.cli", "--task-instance-id", str(ti), "--service-url", service],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "JOBMON_CONFIG": str(tmp_path / "none.toml")},
    )
    assert done.returncode == 0, done.stderr
    assert marker.exists()
