"""State Manager: binding nodes, edges and tasks in chunks, idempotently and race-safely."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from state_calls import RESOURCES, StateApi
from werkzeug.serving import make_server

from jobmon.client import Tool, Workflow
from jobmon.core.config import ClientConfig
from jobmon.server.models import Edge, NodeArg, Task, TaskArg, TaskResources


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def _count(api: StateApi, model: type, *where: object) -> int:
    with api.session() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_bind_3000_tasks_in_chunks_then_rebind_gives_the_same_ids(api: StateApi) -> None:
    b = api.bind(1, chain=False)
    # 2,500 per request: more than one IN-list chunk per request, and a ragged last request.
    node_ids = api.nodes(b.task_template_version_id, range(1, 3001), chunk=2500)
    assert len(set(node_ids)) == 3000
    assert api.nodes(b.task_template_version_id, range(1, 3001), chunk=700) == node_ids
    edges = [[node_ids[i], node_ids[i + 1]] for i in range(2999)]
    assert api.post(f"/dag/{b.dag_id}/edges", {"edges": edges})["inserted"] == 2999
    assert api.post(f"/dag/{b.dag_id}/edges", {"edges": edges})["inserted"] == 0

    specs = [api.task_spec(nid) for nid in node_ids]
    first = api.bind_tasks(b, specs, chunk=1200)
    assert [t["node_id"] for t in first] == node_ids
    assert {t["status"] for t in first} == {"G"}
    again = api.bind_tasks(b, specs, chunk=2000)
    assert again == first
    task_ids = [t["task_id"] for t in first]
    assert len(set(task_ids)) == 3000

    # An unchanged re-bind writes nothing new: still one O and one V row per task.
    assert _count(api, Task, Task.workflow_id == b.workflow_id) == 3001
    assert _count(api, TaskResources, TaskResources.task_id.in_(task_ids)) == 6000
    assert _count(api, TaskArg, TaskArg.task_id.in_(task_ids)) == 3000
    assert _count(api, NodeArg, NodeArg.node_id.in_(node_ids)) == 3000
    # Every task points at its V row.
    with api.session() as s:
        kinds = s.execute(
            select(TaskResources.resource_type, func.count())
            .join(Task, Task.task_resources_id == TaskResources.id)
            .where(Task.workflow_id == b.workflow_id)
            .group_by(TaskResources.resource_type)
        ).all()
    assert dict(kinds) == {"V": 3001}


def test_rebind_keeps_ids_and_statuses_and_updates_what_changed(api: StateApi) -> None:
    b = api.bind(2, chain=False)
    api.start(b)
    api.launch(b.workflow_run_id, b.task_ids[:1])
    specs = [api.task_spec(nid) for nid in b.node_ids]
    specs[1] = api.task_spec(b.node_ids[1], command="new command", max_attempts=7,
                             resources={**RESOURCES, "memory_mb": 4096})
    out = api.bind_tasks(b, specs)
    assert [t["task_id"] for t in out] == b.task_ids
    assert [t["status"] for t in out] == ["I", "G"]
    changed = api.task(b.task_ids[1])
    assert (changed.command, changed.max_attempts) == ("new command", 7)
    with api.session() as s:
        current = s.get(TaskResources, changed.task_resources_id)
        assert current is not None
        assert (current.resource_type, current.memory_mb) == ("V", 4096)
    assert _count(api, TaskResources, TaskResources.task_id == b.task_ids[1]) == 4
    assert _count(api, TaskResources, TaskResources.task_id == b.task_ids[0]) == 2


def test_validated_resources_are_capped_at_the_queue_limits(api: StateApi) -> None:
    b = api.bind(1, resources={"queue": "all.q", "num_cores": 500, "memory_mb": 10**7,
                               "runtime_s": 10**8})
    task = api.task(b.task_ids[0])
    with api.session() as s:
        rows = {r.resource_type: r for r in s.execute(
            select(TaskResources).where(TaskResources.task_id == task.id)).scalars()}
    assert (rows["O"].num_cores, rows["O"].memory_mb, rows["O"].runtime_s) == (500, 10**7, 10**8)
    assert (rows["V"].num_cores, rows["V"].memory_mb, rows["V"].runtime_s) == (64, 256 * 1024, 3 * 86400)
    assert task.task_resources_id == rows["V"].id


def test_unknown_queue_is_400_and_nothing_is_written(api: StateApi) -> None:
    b = api.bind(1, chain=False)
    extra = api.nodes(b.task_template_version_id, [100, 101])
    specs = [api.task_spec(extra[0]),
             api.task_spec(extra[1], resources={**RESOURCES, "queue": "nope.q"})]
    out = api.post(f"/workflow/{b.workflow_id}/tasks", {"workflow_run_id": b.workflow_run_id,
                                                        "tasks": specs}, 400)
    assert "unknown queue 'nope.q'" in out["reason"]
    assert _count(api, Task, Task.workflow_id == b.workflow_id) == 1


def test_nodes_answer_in_request_order_with_duplicates(api: StateApi) -> None:
    _, ttv = api.template()
    items = [{"task_template_version_id": ttv, "node_args_hash": h, "node_args": {"i": h}}
             for h in ("0a", "0b", "0a", "0C")]
    ids = api.post("/nodes", {"nodes": items})["node_ids"]
    assert ids[0] == ids[2]
    assert len(set(ids)) == 3
    # Hashes are hex and compared case-insensitively.
    assert api.post("/nodes", {"nodes": [{**items[3], "node_args_hash": "0c"}]})["node_ids"] == [ids[3]]


@pytest.mark.parametrize("bad", [
    {"nodes": "x"},
    {"nodes": [1]},
    {"nodes": [{"task_template_version_id": "1", "node_args_hash": "aa"}]},
    {"nodes": [{"task_template_version_id": 1, "node_args_hash": "zz"}]},
    {"nodes": [{"task_template_version_id": 1, "node_args_hash": "aa", "node_args": {"x": [1]}}]},
    {"nodes": [{"task_template_version_id": 2**70, "node_args_hash": "aa"}]},
    {},
])
def test_nodes_reject_malformed_input(api: StateApi, bad: dict) -> None:
    out = api.post("/nodes", bad, 400)
    assert out["error"] == "invalid_input"


def test_nodes_of_an_unknown_template_version_are_404(api: StateApi) -> None:
    out = api.post("/nodes", {"nodes": [{"task_template_version_id": 999_999, "node_args_hash": "aa"}]},
                   404)
    assert "999999" in out["reason"]


def test_too_many_items_are_refused(api: StateApi) -> None:
    items = [{"task_template_version_id": 1, "node_args_hash": "aa"}] * 10_001
    assert "more than 10000" in api.post("/nodes", {"nodes": items}, 400)["reason"]


def test_dag_is_get_or_create(api: StateApi) -> None:
    first = api.post("/dag", {"dag_hash": "ABCDEF"})
    assert first["created"] is True
    again = api.post("/dag", {"dag_hash": "abcdef"})
    assert again == {"dag_id": first["dag_id"], "created": False}


def test_edges_are_validated(api: StateApi) -> None:
    b = api.bind(2, chain=False)
    n0, n1 = b.node_ids
    api.post("/dag/999999/edges", {"edges": [[n0, n1]]}, 404)
    assert "999999" in api.post(f"/dag/{b.dag_id}/edges", {"edges": [[n0, 999_999]]}, 404)["reason"]
    api.post(f"/dag/{b.dag_id}/edges", {"edges": [[n0, n0]]}, 400)
    api.post(f"/dag/{b.dag_id}/edges", {"edges": [[n0]]}, 400)
    api.post(f"/dag/{b.dag_id}/edges", {"edges": [[n0, "x"]]}, 400)
    api.post(f"/dag/{b.dag_id}/edges", {"edges": {"a": 1}}, 400)
    assert api.post(f"/dag/{b.dag_id}/edges", {"edges": [[n0, n1], [n0, n1]]})["inserted"] == 1
    assert _count(api, Edge, Edge.dag_id == b.dag_id) == 1


def test_tasks_are_validated(api: StateApi) -> None:
    b = api.bind(1)
    url = f"/workflow/{b.workflow_id}/tasks"
    run = b.workflow_run_id
    good = api.task_spec(b.node_ids[0])
    for bad_task in (
        {**good, "node_id": "1"},
        {**good, "command": ""},
        {**good, "max_attempts": 0},
        {**good, "resources": {**RESOURCES, "memory_mb": 0}},
        {**good, "resources": {"queue": "all.q"}},
        {**good, "resource_scales": {"memory": "a lot"}},
        {**good, "task_args": {"a": {"nested": 1}}},
        {**good, "name": "x" * 256},
    ):
        out = api.post(url, {"workflow_run_id": run, "tasks": [bad_task]}, 400)
        assert out["reason"].startswith("tasks[0]: "), out
    dup = api.post(url, {"workflow_run_id": run, "tasks": [good, good]}, 400)
    assert "appears twice" in dup["reason"]
    api.post(url, {"workflow_run_id": run, "tasks": [api.task_spec(999_999)]}, 404)
    api.post("/workflow/999999/tasks", {"workflow_run_id": run, "tasks": [good]}, 404)
    api.post(url, {"workflow_run_id": 999_999, "tasks": [good]}, 404)
    other = api.bind(1)
    api.post(url, {"workflow_run_id": other.workflow_run_id, "tasks": [good]}, 400)
    api.run_status(run, "A")
    assert "no longer bind" in api.post(url, {"workflow_run_id": run, "tasks": [good]}, 409)["reason"]


def test_concurrent_identical_binds_get_the_same_ids(api: StateApi) -> None:
    b = api.bind(1, chain=False)
    ttv = b.task_template_version_id

    def bind_nodes(_: int) -> list[int]:
        return api.nodes(ttv, range(1000, 2500), chunk=1500)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(bind_nodes, range(4)))
    assert all(r == results[0] for r in results)
    assert len(set(results[0])) == 1500

    specs = [api.task_spec(nid) for nid in results[0]]

    def bind_tasks(_: int) -> list[dict]:
        return api.bind_tasks(b, specs)

    with ThreadPoolExecutor(3) as pool:
        tasks = list(pool.map(bind_tasks, range(3)))
    assert all([t["task_id"] for t in r] == [t["task_id"] for t in tasks[0]] for r in tasks)
    assert _count(api, Task, Task.workflow_id == b.workflow_id) == 1501


def test_the_bind_answer_names_each_value_the_queue_caps(api: StateApi) -> None:
    b = api.bind(1, chain=False)
    assert api.bind_tasks(b, [api.task_spec(b.node_ids[0])]) == [
        {"node_id": b.node_ids[0], "task_id": b.task_ids[0], "status": "G"}]
    big, fits = api.nodes(b.task_template_version_id, [100, 101])
    body = {"workflow_run_id": b.workflow_run_id, "tasks": [
        api.task_spec(big, resources={**RESOURCES, "memory_mb": 10**7, "runtime_s": 10**8}),
        api.task_spec(fits, resources={**RESOURCES, "memory_mb": 256 * 1024}),
    ]}
    out = api.post(f"/workflow/{b.workflow_id}/tasks", body)
    task_id = out["tasks"][0]["task_id"]
    capped = {"node_id": big, "task_id": task_id, "queue": "all.q"}
    assert out["capped"] == [
        {**capped, "resource": "memory_mb", "requested": 10**7, "capped_to": 256 * 1024},
        {**capped, "resource": "runtime_s", "requested": 10**8, "capped_to": 3 * 86400},
    ]
    # An unchanged re-bind (a resume) writes nothing, and says so again: the request is still capped.
    assert api.post(f"/workflow/{b.workflow_id}/tasks", body) == out
    uncapped = api.post(f"/workflow/{b.workflow_id}/tasks", {
        "workflow_run_id": b.workflow_run_id, "tasks": [api.task_spec(b.node_ids[0])]})
    assert uncapped["capped"] == []


@pytest.fixture
def service_url(app) -> Iterator[str]:
    """The app served over HTTP in a thread, for the client library."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_the_client_warns_of_each_capped_request(service_url: str, caplog) -> None:
    config = ClientConfig(service_url=service_url)
    tool = Tool(f"capped-{uuid.uuid4().hex[:8]}", config=config)
    template = tool.get_task_template("t", "run {i}", node_args=["i"])
    big = template.create_task(name="big", i=1, compute_resources={"memory_mb": 10**7})
    fits = template.create_task(name="fits", i=2)
    many = [template.create_task(name=f"many{i}", i=i, compute_resources={"num_cores": 100})
            for i in range(3, 10)]
    workflow = Workflow(tool, "capped", {"nonce": uuid.uuid4().hex}, config=config)
    workflow.add_tasks([big, fits, *many])
    with caplog.at_level(logging.WARNING, logger="jobmon.client.workflow"):
        workflow.bind()
    assert sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == [
        "7 tasks 'many3', 'many4', 'many5', 'many6', 'many7' and 2 more asked queue all.q for num_cores "
        "100, above the queue's limit: capped to 64",
        "task 'big' asked queue all.q for memory_mb 10000000, above the queue's limit: capped to 262144",
    ]
