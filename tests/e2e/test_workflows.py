"""End to end: the client library, executors and ``jobmon-worker`` against a real uWSGI server."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from jobmon.client import Tool, Workflow, WorkflowAlreadyDone, WorkflowAlreadyRunning
from jobmon.client.executors import MultiprocessExecutor, SequentialExecutor, TaskInstanceSpec
from jobmon.core.config import ClientConfig
from waiting import wait_until

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent


def fast_config(service_url: str) -> ClientConfig:
    # Short intervals keep the tests quick; production defaults are tens of seconds.
    return ClientConfig(service_url=service_url, heartbeat_interval=2.0, poll_interval=0.3,
                        request_retries=3)


def viz_task(service_url: str, task_id: int) -> dict:
    resp = requests.get(f"{service_url}/api/viz/task/{task_id}", timeout=30)
    resp.raise_for_status()
    return resp.json()


def test_three_layer_dag_of_200_tasks_runs_to_done(service_url, tmp_path):
    # Small chunks so binding and queueing take several requests each (7 for nodes and tasks, 2 for
    # the 320 edges).
    cfg = dataclasses.replace(fast_config(service_url), bind_chunk_size=30)
    tool = Tool("e2e-layers", config=cfg)
    template = tool.get_task_template(
        "layer", "echo {layer}-{i}", node_args=["layer", "i"],
        default_compute_resources={"memory_mb": 256, "runtime_s": 300},
    )
    first = [template.create_task(layer=1, i=i) for i in range(20)]
    middle = [template.create_task(layer=2, i=i, upstream_tasks=[first[i // 8]]) for i in range(160)]
    last = [template.create_task(layer=3, i=i, upstream_tasks=middle[i * 8:(i + 1) * 8])
            for i in range(20)]
    workflow = Workflow(tool, "layers", {"test": str(tmp_path)}, config=cfg,
                        max_concurrently_running=50)
    workflow.add_tasks(first + middle + last)

    result = workflow.run(MultiprocessExecutor(8), seconds_until_timeout=150)

    assert result.done, result
    assert result.task_counts == {"D": 200}
    assert all(task.status == "D" for task in workflow.tasks.values())
    run = requests.get(f"{service_url}/api/query/workflow_run/{result.workflow_run_id}", timeout=30).json()
    assert run["status"] == "D"
    assert requests.get(f"{service_url}/api/query/workflow/{result.workflow_id}",
                        timeout=30).json()["status"] == "D"


def test_task_failing_twice_then_succeeding_is_retried(service_url, tmp_path):
    cfg = fast_config(service_url)
    tool = Tool("e2e-retry", config=cfg)
    counter = tmp_path / "counter"
    template = tool.get_task_template(
        "flaky",
        # Fails (with a message on stderr) on its first two runs, succeeds on the third.
        'n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; '
        '[ $n -ge 3 ] || {{ echo "attempt $n failed" >&2; exit 3; }}',
        node_args=["counter"],
    )
    task = template.create_task(counter=counter, max_attempts=3)
    workflow = Workflow(tool, "retry", {"test": str(tmp_path)}, config=cfg)
    workflow.add_task(task)

    result = workflow.run(SequentialExecutor(), seconds_until_timeout=120)

    assert result.done, result
    assert counter.read_text().strip() == "3"
    view = viz_task(service_url, task.task_id)
    assert view["num_attempts"] == 3
    assert [i["status"] for i in view["instances"]] == ["E", "E", "D"]
    assert [i["exit_code"] for i in view["instances"]] == [3, 3, 0]
    assert "attempt 1 failed" in view["instances"][0]["errors"][0]["description"]


def test_task_failing_every_attempt_fails_the_workflow(service_url, tmp_path):
    cfg = fast_config(service_url)
    tool = Tool("e2e-fatal", config=cfg)
    template = tool.get_task_template("step", "{cmd}", node_args=["i"], op_args=["cmd"])
    bad = template.create_task(i=1, cmd="exit 5", max_attempts=2)
    after = template.create_task(i=2, cmd="true", upstream_tasks=[bad])
    workflow = Workflow(tool, "fatal", {"test": str(tmp_path)}, config=cfg)
    workflow.add_tasks([bad, after])

    result = workflow.run(MultiprocessExecutor(2), seconds_until_timeout=120)

    assert result.status == "E"
    assert result.task_counts == {"F": 1, "G": 1}
    assert bad.status == "F"
    assert after.status == "G"
    assert requests.get(f"{service_url}/api/query/workflow/{result.workflow_id}",
                        timeout=30).json()["status"] == "F"


class RecordingExecutor(MultiprocessExecutor):
    """Multiprocess, remembering each instance it was handed (to see the resources requested)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.specs: list[TaskInstanceSpec] = []

    def submit(self, instance: TaskInstanceSpec) -> str | None:
        self.specs.append(instance)
        return super().submit(instance)


def test_task_over_its_memory_is_killed_and_retried_with_more(service_url, tmp_path):
    cfg = fast_config(service_url)
    tool = Tool("e2e-memory", config=cfg)
    template = tool.get_task_template(
        "hungry",
        # Touches ~300 MiB (bytes multiplication writes every page), then holds it for a moment.
        '{python} -c "import time; x = b\'x\' * (300 << 20); time.sleep(1.5)" # {n}',
        node_args=["n"], op_args=["python"],
    )
    task = template.create_task(
        n=1, python=sys.executable, max_attempts=3,
        compute_resources={"queue": "all.q", "num_cores": 1, "memory_mb": 100, "runtime_s": 600},
        resource_scales={"memory": 3.0},
    )
    workflow = Workflow(tool, "memory", {"test": str(tmp_path)}, config=cfg)
    workflow.add_task(task)
    executor = RecordingExecutor()

    result = workflow.run(executor, seconds_until_timeout=120)

    assert result.done, result
    view = viz_task(service_url, task.task_id)
    assert [i["status"] for i in view["instances"]] == ["Z", "D"]
    killed = view["instances"][0]
    assert "memory limit exceeded" in killed["errors"][0]["description"]
    assert killed["maxrss"] > 100 * 1024 * 1024
    assert executor.specs[0].memory_mb == 100
    assert executor.specs[1].memory_mb > 300
    assert view["resources"]["memory_mb"] == executor.specs[1].memory_mb


def _load_resume_module():
    spec = importlib.util.spec_from_file_location("resume_workflow", HERE / "resume_workflow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resume_after_the_client_is_killed_never_reruns_done_tasks(service_url, killed_client, tmp_path):
    resume = _load_resume_module()
    out_dir = tmp_path / "out"
    workflow_id, first_run_id = killed_client(service_url, out_dir, 20)

    statuses = requests.get(f"{service_url}/api/query/workflow/{workflow_id}/task_statuses",
                            timeout=30).json()["tasks"]
    done_before = {row["task_id"] for row in statuses if row["status"] == "D"}
    assert 0 < len(done_before) < resume.NUM_TASKS

    workflow = resume.build(service_url, out_dir)
    result = workflow.run(resume.executor(), resume=True, seconds_until_timeout=150)

    assert result.done, result
    assert workflow.workflow_id == workflow_id
    assert result.workflow_run_id != first_run_id
    first_run = requests.get(f"{service_url}/api/query/workflow_run/{first_run_id}", timeout=30).json()
    assert first_run["status"] == "C"
    by_id = {task.task_id: task for task in workflow.tasks.values()}
    for task_id in done_before:
        i = by_id[task_id].node_args["i"]
        assert (out_dir / f"{i}.txt").read_text().count("ran") == 1, f"done task {i} ran again"
    for task in workflow.tasks.values():
        assert (out_dir / f"{task.node_args['i']}.txt").exists()


def _pid_dead(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return True
    return False


def test_timeout_stops_the_run_and_kills_running_tasks(service_url, tmp_path):
    cfg = fast_config(service_url)
    tool = Tool("e2e-timeout", config=cfg)
    template = tool.get_task_template("slow", "echo $$ > {pid_file}; exec sleep 60", node_args=["pid_file"])
    pid_file = tmp_path / "pid"
    task = template.create_task(pid_file=pid_file)
    workflow = Workflow(tool, "timeout", {"test": str(tmp_path)}, config=cfg)
    workflow.add_task(task)

    start = time.monotonic()
    result = workflow.run(MultiprocessExecutor(2, terminate_grace=5), seconds_until_timeout=3)

    assert time.monotonic() - start < 30
    assert result.status == "S"
    assert "timed out after 3 s" in result.reason
    assert _pid_dead(pid_file)
    view = viz_task(service_url, task.task_id)
    assert [i["status"] for i in view["instances"]] == ["K"]
    assert requests.get(f"{service_url}/api/query/workflow/{result.workflow_id}",
                        timeout=30).json()["status"] == "S"


def test_fail_fast_stops_at_the_first_fatal_task(service_url, tmp_path):
    cfg = fast_config(service_url)
    tool = Tool("e2e-failfast", config=cfg)
    template = tool.get_task_template("step", "{cmd}", node_args=["i"], op_args=["cmd"])
    pid_file = tmp_path / "pid"
    slow = template.create_task(i=1, cmd=f"echo $$ > {pid_file}; exec sleep 60")
    bad = template.create_task(i=2, cmd=f"until [ -s {pid_file} ]; do sleep 0.1; done; exit 1",
                               max_attempts=1)
    workflow = Workflow(tool, "failfast", {"test": str(tmp_path)}, config=cfg)
    workflow.add_tasks([slow, bad])

    start = time.monotonic()
    result = workflow.run(MultiprocessExecutor(2, terminate_grace=5), fail_fast=True,
                          seconds_until_timeout=60)

    assert time.monotonic() - start < 30
    assert result.status == "E"
    assert "fail_fast" in result.reason
    assert bad.status == "F"
    assert slow.status != "D"
    assert _pid_dead(pid_file)


def test_a_second_client_must_resume_and_the_first_run_is_superseded(service_url, tmp_path):
    cfg = fast_config(service_url)

    def build() -> Workflow:
        tool = Tool("e2e-twice", config=cfg)
        template = tool.get_task_template("t", "echo {i}", node_args=["i"])
        workflow = Workflow(tool, "twice", {"test": str(tmp_path)}, config=cfg)
        workflow.add_tasks(template.create_task(i=i) for i in range(3))
        return workflow

    first = build()
    first_run = first.bind()
    second = build()
    with pytest.raises(WorkflowAlreadyRunning, match="pass resume"):
        second.bind()
    result = second.run(SequentialExecutor(), resume=True, seconds_until_timeout=60)
    assert result.done, result
    assert result.workflow_id == first.workflow_id
    run = requests.get(f"{service_url}/api/query/workflow_run/{first_run}", timeout=30).json()
    assert run["status"] == "C"
    with pytest.raises(WorkflowAlreadyDone, match="already done"):
        build().run()


def test_running_client_stops_when_another_resumes_the_workflow(service_url, tmp_path):
    cfg = ClientConfig(service_url=service_url, heartbeat_interval=0.5, poll_interval=0.2,
                       request_retries=3)
    started = tmp_path / "started"

    def build() -> Workflow:
        tool = Tool("e2e-takeover", config=cfg)
        template = tool.get_task_template(
            "t", "echo x >> {started}; sleep {seconds}", node_args=["i"], task_args=["seconds"],
            op_args=["started"])
        workflow = Workflow(tool, "takeover", {"test": str(tmp_path)}, config=cfg)
        workflow.add_tasks(template.create_task(i=i, seconds=2, started=started) for i in range(3))
        return workflow

    results = []
    first = threading.Thread(target=lambda: results.append(build().run(MultiprocessExecutor(1))))
    first.start()
    try:
        wait_until(lambda: started.exists() and started.read_text().strip(), 30,
                   "the first client's first task to start")
        second = build().run(MultiprocessExecutor(3), resume=True, seconds_until_timeout=60)
    finally:
        first.join(timeout=60)
    assert second.done, second
    assert len(results) == 1
    assert results[0].status == "C"
    assert "another process resumed the workflow" in results[0].reason
