"""Client-side building of templates, tasks and DAGs: validation that happens before any binding.

The requester here only answers the get-or-create calls a Tool and a TaskTemplate make on creation."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from jobmon.client import (
    ComputeResources,
    DagCycleError,
    Tool,
    Workflow,
    WorkflowAlreadyDone,
    WorkflowAlreadyRunning,
    WorkflowError,
)
from jobmon.client.swarm import Swarm, WorkflowRunResult
from jobmon.core import routes
from jobmon.core.config import ClientConfig
from jobmon.core.requester import JobmonRequestError
from jobmon.core.states import TaskStatus, describe_counts


class CannedRequester:
    base_url = "http://127.0.0.1:1"
    timeout = 5.0

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.calls: list[tuple[str, dict]] = []

    def post(self, path: str, body: dict | None = None) -> dict:
        self.calls.append((path, body or {}))
        if path == "/api/state/tool":
            return {"tool_id": 1, "tool_version_id": 1}
        if path == "/api/state/task_template":
            return {"task_template_id": next(self.ids)}
        if path == "/api/state/task_template_version":
            return {"task_template_version_id": next(self.ids)}
        raise AssertionError(f"unexpected call {path}")


@pytest.fixture
def tool() -> Tool:
    return Tool("model-tests", requester=CannedRequester(), config=ClientConfig())  # type: ignore[arg-type]


def test_create_task_formats_the_command_from_all_arg_kinds(tool):
    template = tool.get_task_template(
        "model", "{python} run.py --loc {location} --release {release}",
        node_args=["location"], task_args=["release"], op_args=["python"],
        default_compute_resources={"memory_mb": 2048},
    )
    task = template.create_task(location=12, release=3, python=Path("/usr/bin/python3"))
    assert task.command == "/usr/bin/python3 run.py --loc 12 --release 3"
    assert task.node_args == {"location": "12"}
    assert task.task_args == {"release": "3"}
    assert task.name == "model_location-12"
    assert task.compute_resources == ComputeResources("all.q", 1, 2048, 3600)
    assert task.resource_scales == {"memory": 0.5, "runtime": 0.5}
    assert task.max_attempts == 3
    # Template versions are registered once per distinct definition.
    assert tool.get_task_template("model", "{python} run.py --loc {location} --release {release}",
                                  node_args=["location"], task_args=["release"], op_args=["python"],
                                  default_compute_resources={"memory_mb": 2048}) is template


def test_missing_and_unexpected_args_are_named(tool):
    template = tool.get_task_template("t", "echo {a} {b}", node_args=["a"], task_args=["b"])
    with pytest.raises(ValueError, match=r"missing value for argument\(s\) \['b'\]"):
        template.create_task(a=1)
    with pytest.raises(ValueError, match=r"unexpected argument\(s\) \['c'\]"):
        template.create_task(a=1, b=2, c=3)


def test_template_placeholders_must_be_declared(tool):
    with pytest.raises(ValueError, match=r"uses \['out'\] which are not node, task or op args"):
        tool.get_task_template("t", "echo {a} > {out}", node_args=["a"])
    with pytest.raises(ValueError, match="positional field"):
        tool.get_task_template("t", "echo {}", node_args=["a"])
    with pytest.raises(ValueError, match="reserved by create_task"):
        tool.get_task_template("t", "echo {name}", node_args=["name"])
    with pytest.raises(ValueError, match="more than one of"):
        tool.get_task_template("t", "echo {a}", node_args=["a"], task_args=["a"])


def test_compute_resources_are_validated(tool):
    template = tool.get_task_template("t", "echo {a}", node_args=["a"])
    with pytest.raises(ValueError, match="unknown compute resource"):
        template.create_task(a=1, compute_resources={"mem": 5})
    with pytest.raises(ValueError, match="'memory_mb' must be a positive integer"):
        template.create_task(a=1, compute_resources={"memory_mb": 0})
    with pytest.raises(ValueError, match="unknown resource scale"):
        template.create_task(a=1, resource_scales={"cores": 1.0})
    task = template.create_task(a=1, resource_scales={"memory": 3.0},
                                compute_resources={"queue": "long.q", "runtime_s": 7200})
    assert task.resource_scales == {"memory": 3.0, "runtime": 0.5}
    assert task.compute_resources == ComputeResources("long.q", 1, 1024, 7200)


def test_cycle_is_found_before_binding(tool):
    template = tool.get_task_template("t", "echo {a}", node_args=["a"])
    a, b, c, d = (template.create_task(a=i) for i in "abcd")
    b.add_upstream(a)
    c.add_upstream(b)
    d.add_upstream(c)
    b.add_upstream(d)
    workflow = Workflow(tool, "cyclic")
    workflow.add_tasks([a, b, c, d])
    calls = len(tool.requester.calls)
    with pytest.raises(DagCycleError) as info:
        workflow.bind()
    assert info.value.cycle == ["t_a-b", "t_a-c", "t_a-d", "t_a-b"]
    assert "t_a-b -> t_a-c -> t_a-d -> t_a-b" in str(info.value)
    assert len(tool.requester.calls) == calls, "nothing may be bound for a cyclic DAG"


def test_upstream_outside_the_workflow_and_duplicate_nodes_are_refused(tool):
    template = tool.get_task_template("t", "echo {a}", node_args=["a"])
    a = template.create_task(a=1)
    b = template.create_task(a=2, upstream_tasks=[a])
    workflow = Workflow(tool, "w")
    workflow.add_task(b)
    with pytest.raises(WorkflowError, match="depends on 't_a-1', which is not in the workflow"):
        workflow.topological_order()
    workflow.add_task(a)
    workflow.add_task(a)  # the same task twice is fine
    with pytest.raises(ValueError, match="same template and node args"):
        workflow.add_task(template.create_task(a=1))
    assert [t.name for t in workflow.topological_order()] == ["t_a-1", "t_a-2"]
    with pytest.raises(ValueError, match="cannot depend on itself"):
        a.add_upstream(a)


def test_swarm_tracks_which_tasks_are_ready():
    # 1 -> 2 -> 4, 1 -> 3 -> 4
    swarm = Swarm(workflow_id=1, workflow_run_id=1, statuses={1: "G", 2: "G", 3: "G", 4: "G"},
                  upstreams={2: [1], 3: [1], 4: [2, 3]}, requester=None, executor=None,  # type: ignore[arg-type]
                  config=ClientConfig(), max_concurrently_running=10)
    assert swarm.ready == {1}
    swarm.set_status(1, "Q")
    assert swarm.ready == set()
    swarm.set_status(1, "D")
    assert swarm.ready == {2, 3}
    swarm.set_status(2, "D")
    swarm.set_status(3, "E")  # failed once: ready to be queued again
    assert swarm.ready == {3}
    swarm.set_status(3, "F")
    assert swarm.ready == set()
    assert swarm.finished()  # 4 can never run
    assert swarm.counts() == {"D": 2, "F": 1, "G": 1}


def test_counts_and_results_name_statuses_whatever_set_them():
    swarm = Swarm(workflow_id=1, workflow_run_id=2, statuses={1: "D", 2: "G", 3: "G"},
                  upstreams={}, requester=None, executor=None,  # type: ignore[arg-type]
                  config=ClientConfig(), max_concurrently_running=10)
    swarm.set_status(2, TaskStatus.QUEUED)  # the client's own move
    swarm.set_status(3, "Q")  # a row of the server's JSON
    assert swarm.counts() == {"D": 1, "Q": 2}
    assert all(type(letter) is str for letter in swarm.counts())
    assert describe_counts(swarm.counts()) == "QUEUED=2, DONE=1"
    result = WorkflowRunResult(1, 2, "E", {"D": 3, "F": 1}, 4.0, "1 task(s) failed")
    assert str(result) == "workflow 1 run 2: ERROR after 4.0 s (ERROR_FATAL=1, DONE=3): 1 task(s) failed"


def test_swarm_starts_from_resumed_statuses():
    swarm = Swarm(workflow_id=1, workflow_run_id=1, statuses={1: "D", 2: "G", 3: "R"},
                  upstreams={2: [1], 3: [1]}, requester=None, executor=None,  # type: ignore[arg-type]
                  config=ClientConfig(), max_concurrently_running=10)
    assert swarm.ready == {2}
    assert swarm.active == 1
    assert not swarm.finished()


class RefusingRequester(CannedRequester):
    """Binds a workflow (id 5) and refuses its new run as the server does while another run is active."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def post(self, path: str, body: dict | None = None) -> dict:
        if path == routes.NODES:
            return {"node_ids": [next(self.ids) for _ in (body or {})["nodes"]]}
        if path == routes.DAG:
            return {"dag_id": 3}
        if path == routes.WORKFLOW:
            return {"workflow_id": 5, "status": "G"}
        if path == routes.new_workflow_run(5):
            raise JobmonRequestError("POST", path, 409, self.reason, "conflict")
        return super().post(path, body)


@pytest.mark.parametrize(
    ("reason", "resume", "error", "message"),
    [
        ("workflow 5 has an active run 7; pass resume", False, WorkflowAlreadyRunning,
         "workflow 5 has an active run 7; pass resume (run(resume=True) takes it over)"),
        ("workflow 5 is done; reset it to run it again", True, WorkflowAlreadyDone,
         "workflow 5 is done; reset it to run it again"),
        ("conflict", False, WorkflowAlreadyRunning, "workflow 5: conflict (run(resume=True) takes it over)"),
    ],
)
def test_a_refused_run_names_its_workflow_once(reason, resume, error, message):
    tool = Tool("refused", requester=RefusingRequester(reason), config=ClientConfig())  # type: ignore[arg-type]
    workflow = Workflow(tool, "w", workflow_args={"a": 1}, config=ClientConfig())
    workflow.add_task(tool.get_task_template("t", "echo {a}", node_args=["a"]).create_task(a=1))
    with pytest.raises(error) as caught:
        workflow.bind(resume=resume)
    assert str(caught.value) == message


def test_client_and_worker_import_no_server_dependencies():
    # A cluster node installs only the base package: requests and the standard library.
    code = ("import sys, jobmon.client, jobmon.client.executors, jobmon.worker.cli, jobmon.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'flask', 'sqlalchemy', 'pymysql', 'alembic', 'werkzeug', 'MySQLdb', 'msgspec'} "
            "or m.startswith('jobmon.server')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
