"""State Manager: retries after errors, resource adjustment after a resource error, and giving up."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from state_calls import RESOURCES, StateApi

from jobmon.server.models import TaskResources

GIB = 1024**3


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def _fail(api: StateApi, run: int, task_id: int, status: str, maxrss: int | None = None) -> dict:
    (inst,) = api.launch(run, [task_id])
    ti = inst["task_instance_id"]
    api.run_instance(ti)
    body = {"status": status, "description": "died", "maxrss": maxrss}
    return api.post(f"/task_instance/{ti}/error", body)


def test_resource_error_adjusts_from_measured_memory(api: StateApi) -> None:
    b = api.bind(1)
    api.start(b)
    run, task_id = b.workflow_run_id, b.task_ids[0]
    assert _fail(api, run, task_id, "Z", maxrss=2 * GIB) == {"status": "Z", "task_status": "A"}
    (inst,) = api.launch(run, [task_id])
    # max(1024 MB requested, 2048 MB measured) x 1.5; runtime 600 x 1.5.
    assert (inst["memory_mb"], inst["runtime_s"], inst["num_cores"], inst["queue"]) == (
        3072, 900, 1, "all.q")
    task = api.task(task_id)
    assert task.num_attempts == 2
    with api.session() as s:
        current = s.get(TaskResources, task.task_resources_id)
        assert current is not None
        assert current.resource_type == "A"
    # A second resource error compounds from the adjusted request.
    api.run_instance(inst["task_instance_id"])
    api.post(f"/task_instance/{inst['task_instance_id']}/error", {"status": "Z", "description": "again"})
    (third,) = api.launch(run, [task_id])
    assert (third["memory_mb"], third["runtime_s"]) == (4608, 1350)
    assert api.instance(third["task_instance_id"]).task_resources_id == api.task(task_id).task_resources_id


def test_adjusted_resources_are_capped_at_the_queue_limits(api: StateApi) -> None:
    b = api.bind(1, resources={"queue": "all.q", "num_cores": 2, "memory_mb": 200_000,
                               "runtime_s": 216_000})
    api.start(b)
    _fail(api, b.workflow_run_id, b.task_ids[0], "Z")
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    assert (inst["memory_mb"], inst["runtime_s"], inst["num_cores"]) == (256 * 1024, 3 * 86400, 2)


def test_task_scales_are_used(api: StateApi) -> None:
    b = api.bind(1, chain=False)
    extra = api.nodes(b.task_template_version_id, [7])
    (task,) = api.bind_tasks(b, [api.task_spec(extra[0], resource_scales={"memory": 1.0, "runtime": 0})])
    api.start(b)
    _fail(api, b.workflow_run_id, task["task_id"], "Z")
    (inst,) = api.launch(b.workflow_run_id, [task["task_id"]])
    assert (inst["memory_mb"], inst["runtime_s"]) == (2048, 600)


def test_an_ordinary_error_is_retried_with_the_same_resources(api: StateApi) -> None:
    b = api.bind(1)
    api.start(b)
    assert _fail(api, b.workflow_run_id, b.task_ids[0], "E") == {"status": "E", "task_status": "E"}
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    assert (inst["memory_mb"], inst["runtime_s"]) == (RESOURCES["memory_mb"], RESOURCES["runtime_s"])
    with api.session() as s:
        kinds = s.execute(select(TaskResources.resource_type)
                          .where(TaskResources.task_id == b.task_ids[0])).scalars().all()
    assert sorted(kinds) == ["O", "V"]


@pytest.mark.parametrize("last_error", ["E", "Z", "U"])
def test_fatal_once_attempts_are_used_up(api: StateApi, last_error: str) -> None:
    b = api.bind(1, max_attempts=2)
    api.start(b)
    run, task_id = b.workflow_run_id, b.task_ids[0]
    assert _fail(api, run, task_id, "E")["task_status"] == "E"
    assert _fail(api, run, task_id, last_error)["task_status"] == "F"
    assert api.task(task_id).num_attempts == 2
    # A fatal task is not queued again.
    assert api.post(f"/workflow_run/{run}/queue", {"task_ids": [task_id]})["queued"] == []


def test_queue_and_instantiate_skip_tasks_in_other_states(api: StateApi) -> None:
    b = api.bind(3, chain=False)
    other = api.bind(1)
    api.start(b)
    run = b.workflow_run_id
    t0, t1, t2 = b.task_ids
    assert api.post(f"/workflow_run/{run}/queue", {"task_ids": [t0]})["queued"] == [t0]
    # Already queued, and a task of another workflow: skipped, not refused.
    out = api.post(f"/workflow_run/{run}/queue", {"task_ids": [t0, t1, other.task_ids[0], t1]})
    assert out["queued"] == [t1]
    out = api.post(f"/workflow_run/{run}/instantiate", {"task_ids": [t2, t1, t0], "executor_type": "x"})
    assert [i["task_id"] for i in out["task_instances"]] == [t1, t0]
    again = api.post(f"/workflow_run/{run}/instantiate", {"task_ids": [t0], "executor_type": "x"})
    assert again["task_instances"] == []


def test_launching_rejects_bad_input(api: StateApi) -> None:
    b = api.bind(1)
    run = b.workflow_run_id
    api.post("/workflow_run/999999/queue", {"task_ids": [1]}, 404)
    api.post(f"/workflow_run/{run}/queue", {"task_ids": "1"}, 400)
    api.post(f"/workflow_run/{run}/queue", {"task_ids": [1.5]}, 400)
    api.post(f"/workflow_run/{run}/queue", {"task_ids": [0]}, 400)
    api.post(f"/workflow_run/{run}/instantiate", {"task_ids": [1]}, 400)
    api.post("/workflow_run/999999/instantiate", {"task_ids": [1], "executor_type": "x"}, 404)


def test_a_rebind_keeps_adjusted_resources_unless_the_request_changed(api: StateApi) -> None:
    b = api.bind(1)
    api.start(b)
    run, task_id = b.workflow_run_id, b.task_ids[0]
    _fail(api, run, task_id, "Z")
    api.launch(run, [task_id])  # A -> Q makes the adjusted row current
    adjusted_row = api.task(task_id).task_resources_id
    # Resume with the same request: the adjustment stays.
    new_run = api.new_run(b.workflow_id, resume=True)
    b.workflow_run_id = new_run
    api.bind_tasks(b, [api.task_spec(b.node_ids[0])])
    assert api.task(task_id).task_resources_id == adjusted_row
    # A new request from the user starts over from it.
    api.bind_tasks(b, [api.task_spec(b.node_ids[0], resources={**RESOURCES, "memory_mb": 5000})])
    with api.session() as s:
        current = s.get(TaskResources, api.task(task_id).task_resources_id)
    assert current is not None
    assert (current.resource_type, current.memory_mb) == ("V", 5000)
