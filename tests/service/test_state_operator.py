"""State Manager: operator writes (concurrency limit, workflow reset, task statuses)."""

from __future__ import annotations

import pytest
from state_calls import StateApi


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def _finished(api: StateApi, n: int) -> object:
    """A workflow of ``n`` chained tasks, run to D."""
    b = api.bind(n)
    api.start(b)
    for inst in api.launch(b.workflow_run_id, b.task_ids):
        api.run_instance(inst["task_instance_id"])
        api.post(f"/task_instance/{inst['task_instance_id']}/done", {})
    api.run_status(b.workflow_run_id, "D")
    return b


def test_concurrency_limit(api: StateApi) -> None:
    b = api.bind(1)
    url = f"/workflow/{b.workflow_id}/max_concurrently_running"
    assert api.put(url, {"limit": 7}) == {"workflow_id": b.workflow_id, "max_concurrently_running": 7}
    assert api.put(url, {"limit": 0})["max_concurrently_running"] == 0
    api.put(url, {"limit": -1}, 400)
    api.put(url, {"limit": "7"}, 400)
    api.put(url, {}, 400)
    api.put("/workflow/999999/max_concurrently_running", {"limit": 1}, 404)


def test_reset_needs_no_active_run(api: StateApi) -> None:
    b = api.bind(2)
    api.start(b)
    out = api.post(f"/workflow/{b.workflow_id}/reset", {}, 409)
    assert "active run" in out["reason"]
    api.post("/workflow/999999/reset", {}, 404)


def test_reset_puts_every_task_and_the_workflow_back_to_g(api: StateApi) -> None:
    b = _finished(api, 3)
    assert api.workflow_status(b.workflow_id) == "D"
    assert api.post(f"/workflow/{b.workflow_id}/reset", {}) == {"workflow_id": b.workflow_id, "status": "G"}
    assert set(api.task_statuses(b.workflow_id).values()) == {"G"}
    assert api.task(b.task_ids[0]).num_attempts == 0
    assert api.workflow_status(b.workflow_id) == "G"
    api.new_run(b.workflow_id)


def test_setting_g_resets_everything_downstream(api: StateApi) -> None:
    b = _finished(api, 1)  # placeholder workflow so ids of the next one are not 1
    b = api.bind(1, chain=False)
    ttv = b.task_template_version_id
    # a -> b -> c -> d, a -> e, and f unrelated.
    na, nb, nc, nd, ne, nf = api.nodes(ttv, range(10, 16))
    api.post(f"/dag/{b.dag_id}/edges", {"edges": [[na, nb], [nb, nc], [nc, nd], [na, ne]]})
    tasks = {t["node_id"]: t["task_id"] for t in api.bind_tasks(
        b, [api.task_spec(n) for n in (na, nb, nc, nd, ne, nf)])}
    all_ids = [*tasks.values(), b.task_ids[0]]
    url = f"/workflow/{b.workflow_id}/task_statuses"
    api.run_status(b.workflow_run_id, "A")  # no active run from here on

    assert api.put(url, {"task_ids": all_ids, "status": "D"}) == {"updated": 7}
    assert api.put(url, {"task_ids": all_ids, "status": "D"}) == {"updated": 0}
    assert api.put(url, {"task_ids": [tasks[nb]], "status": "G"}) == {"updated": 3}
    statuses = api.task_statuses(b.workflow_id)
    assert {n: statuses[t] for n, t in tasks.items()} == {
        na: "D", nb: "G", nc: "G", nd: "G", ne: "D", nf: "D"}
    assert api.put(url, {"task_ids": [tasks[na]], "status": "G"}) == {"updated": 2}
    statuses = api.task_statuses(b.workflow_id)
    assert {n: statuses[t] for n, t in tasks.items()} == {
        na: "G", nb: "G", nc: "G", nd: "G", ne: "G", nf: "D"}


def test_setting_g_on_a_done_workflow_lets_it_run_again(api: StateApi) -> None:
    b = _finished(api, 3)
    url = f"/workflow/{b.workflow_id}/task_statuses"
    assert api.put(url, {"task_ids": [b.task_ids[1]], "status": "G"}) == {"updated": 2}
    assert api.workflow_status(b.workflow_id) == "G"
    assert api.task_statuses(b.workflow_id)[b.task_ids[0]] == "D"
    api.new_run(b.workflow_id)


def test_task_statuses_reject_bad_requests(api: StateApi) -> None:
    b = api.bind(2)
    other = api.bind(1)
    url = f"/workflow/{b.workflow_id}/task_statuses"
    api.put(url, {"task_ids": [b.task_ids[0]], "status": "D"}, 409)  # run in G is active
    api.run_status(b.workflow_run_id, "A")
    api.put(url, {"task_ids": [b.task_ids[0]], "status": "R"}, 400)
    api.put(url, {"task_ids": "1", "status": "D"}, 400)
    out = api.put(url, {"task_ids": [other.task_ids[0]], "status": "D"}, 404)
    assert str(other.task_ids[0]) in out["reason"]
    api.put("/workflow/999999/task_statuses", {"task_ids": [1], "status": "D"}, 404)
