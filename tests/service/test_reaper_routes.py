"""The reaper's routes: candidates from the Query Service, conditional moves in the State Manager.

Deadlines are put in the past by writing the rows directly (the clock is the database's, so sleeping would
only make the tests slow); everything else goes through the routes.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from state_calls import StateApi

from jobmon.server.db import db_now
from jobmon.server.models import TaskInstance, WorkflowRun


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def _query(api: StateApi, path: str, **params: Any) -> dict[str, Any]:
    response = api.client.get(f"/api/query/reaper/{path}", query_string=params)
    assert response.status_code == 200, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def _age_run(api: StateApi, run_id: int, seconds: float) -> None:
    with api.session() as s, s.begin():
        past = db_now(s) - timedelta(seconds=seconds)
        s.execute(update(WorkflowRun).where(WorkflowRun.id == run_id)
                  .values(heartbeat_date=past, status_date=past))


def _age_instance(api: StateApi, ti_id: int, seconds: float) -> None:
    with api.session() as s, s.begin():
        past = db_now(s) - timedelta(seconds=seconds)
        s.execute(update(TaskInstance).where(TaskInstance.id == ti_id).values(report_by_date=past))


def _running(api: StateApi, n: int = 2, **kw: Any) -> Any:
    b = api.bind(n, **kw)
    api.start(b)
    return b


def test_lost_run_moves_to_error_and_its_workflow_fails_once(api: StateApi) -> None:
    lost, alive = _running(api), _running(api)
    _age_run(api, lost.workflow_run_id, 600)
    api.post(f"/workflow_run/{alive.workflow_run_id}/heartbeat", {"next_report_increment": 60})

    found = _query(api, "lost_runs", threshold=300)["workflow_runs"]
    assert [r["workflow_run_id"] for r in found] == [lost.workflow_run_id]
    assert found[0]["workflow_name"] == "wf"
    assert found[0]["user"] == "tester"
    # A longer threshold than the run's age finds nothing.
    assert _query(api, "lost_runs", threshold=900)["workflow_runs"] == []

    ids = [lost.workflow_run_id, alive.workflow_run_id]
    moved = api.post("/reaper/lost_runs", {"workflow_run_ids": ids, "threshold": 300})["moved"]
    assert moved == [{
        "workflow_id": lost.workflow_id, "workflow_name": "wf", "workflow_run_id": lost.workflow_run_id,
        "user": "tester", "old_status": "R", "new_status": "E",
        "workflow_old_status": "R", "workflow_new_status": "F",
    }]
    assert api.run_row(lost.workflow_run_id).status == "E"
    assert api.workflow_status(lost.workflow_id) == "F"
    assert api.run_row(alive.workflow_run_id).status == "R"
    # Idempotent: a second reaper (or the next loop) moves nothing and so posts nothing.
    assert api.post("/reaper/lost_runs", {"workflow_run_ids": ids, "threshold": 300})["moved"] == []


def test_a_run_that_heartbeats_after_being_found_is_left_alone(api: StateApi) -> None:
    b = _running(api)
    _age_run(api, b.workflow_run_id, 600)
    assert _query(api, "lost_runs")["workflow_runs"]
    api.post(f"/workflow_run/{b.workflow_run_id}/heartbeat", {"next_report_increment": 60})
    assert api.post("/reaper/lost_runs", {"workflow_run_ids": [b.workflow_run_id]})["moved"] == []
    assert api.run_row(b.workflow_run_id).status == "R"


def test_stuck_run_is_aborted_with_its_workflow(api: StateApi) -> None:
    b = api.bind(1)  # run left in G
    fresh = api.bind(1)
    _age_run(api, b.workflow_run_id, 7200)
    found = _query(api, "stuck_runs", threshold=3600)["workflow_runs"]
    assert [r["workflow_run_id"] for r in found] == [b.workflow_run_id]
    moved = api.post("/reaper/stuck_runs", {
        "workflow_run_ids": [b.workflow_run_id, fresh.workflow_run_id], "threshold": 3600})["moved"]
    assert [(m["workflow_run_id"], m["old_status"], m["new_status"], m["workflow_new_status"])
            for m in moved] == [(b.workflow_run_id, "G", "A", "A")]
    assert api.workflow_status(b.workflow_id) == "A"
    assert api.run_row(fresh.workflow_run_id).status == "G"


def test_cold_resumed_run_is_terminated_once_its_instances_are_gone(api: StateApi) -> None:
    b = _running(api, 1)
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    api.run_instance(inst["task_instance_id"])
    newer = api.new_run(b.workflow_id, resume=True)  # cold: the old run -> C, its instance -> K
    assert api.run_row(b.workflow_run_id).status == "C"
    found = _query(api, "resumed_runs")["workflow_runs"]
    assert [r["workflow_run_id"] for r in found] == [b.workflow_run_id]
    moved = api.post("/reaper/resumed_runs", {"workflow_run_ids": [b.workflow_run_id]})["moved"]
    assert [(m["old_status"], m["new_status"]) for m in moved] == [("C", "T")]
    # The newer run owns the workflow: it is not suspended under it.
    assert moved[0]["workflow_new_status"] is None
    assert api.workflow_status(b.workflow_id) == "G"
    assert api.run_row(newer).status == "G"
    assert api.post("/reaper/resumed_runs", {"workflow_run_ids": [b.workflow_run_id]})["moved"] == []


def test_hot_resumed_run_waits_for_its_running_instances(api: StateApi) -> None:
    b = _running(api, 1)
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    ti = inst["task_instance_id"]
    api.run_instance(ti)
    api.new_run(b.workflow_id, resume=True, reset_running=False)
    assert api.run_row(b.workflow_run_id).status == "H"
    assert _query(api, "resumed_runs")["workflow_runs"] == []
    assert api.post("/reaper/resumed_runs", {"workflow_run_ids": [b.workflow_run_id]})["moved"] == []
    api.post(f"/task_instance/{ti}/done", {"wallclock": 1.0})
    moved = api.post("/reaper/resumed_runs", {"workflow_run_ids": [b.workflow_run_id]})["moved"]
    assert [(m["old_status"], m["new_status"]) for m in moved] == [("H", "T")]


@pytest.mark.parametrize(("max_attempts", "task_status"), [(3, "E"), (1, "F")])
def test_overdue_instance_is_lost_and_its_task_ends_the_attempt(
    api: StateApi, max_attempts: int, task_status: str
) -> None:
    b = _running(api, 1, max_attempts=max_attempts)
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    ti = inst["task_instance_id"]
    api.run_instance(ti)
    assert _query(api, "overdue_instances")["task_instances"] == []
    _age_instance(api, ti, 120)
    found = _query(api, "overdue_instances", threshold=60)["task_instances"]
    assert [(f["task_instance_id"], f["status"]) for f in found] == [(ti, "R")]
    moved = api.post("/reaper/overdue_instances", {"task_instance_ids": [ti], "threshold": 60})["moved"]
    assert moved == [{
        "task_instance_id": ti, "task_id": b.task_ids[0], "workflow_run_id": b.workflow_run_id,
        "workflow_id": b.workflow_id, "workflow_name": "wf", "user": "tester",
        "old_status": "R", "new_status": "U", "task_status": task_status,
    }]
    assert api.instance(ti).status == "U"
    assert api.task(b.task_ids[0]).status == task_status
    assert api.post("/reaper/overdue_instances", {"task_instance_ids": [ti]})["moved"] == []


def test_reaper_routes_reject_bad_input(api: StateApi) -> None:
    api.post("/reaper/lost_runs", {}, status=400)
    api.post("/reaper/lost_runs", {"workflow_run_ids": ["x"]}, status=400)
    api.post("/reaper/lost_runs", {"workflow_run_ids": [1], "threshold": -1}, status=400)
    api.post("/reaper/overdue_instances", {"task_instance_ids": list(range(1, 1002))}, status=400)
    # Unknown ids are not an error: there is nothing to move.
    assert api.post("/reaper/lost_runs", {"workflow_run_ids": [999_999]})["moved"] == []
    response = api.client.get("/api/query/reaper/lost_runs", query_string={"threshold": "soon"})
    assert response.status_code == 400
    response = api.client.get("/api/query/reaper/stuck_runs", query_string={"limit": 0})
    assert response.status_code == 400


def test_two_reapers_at_once_move_each_run_exactly_once(api: StateApi, app) -> None:
    runs = [_running(api, 1) for _ in range(6)]
    ids = [b.workflow_run_id for b in runs]
    for run_id in ids:
        _age_run(api, run_id, 600)
    results: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def reaper() -> None:
        try:
            barrier.wait()
            response = app.test_client().post("/api/state/reaper/lost_runs",
                                              json={"workflow_run_ids": ids})
            assert response.status_code == 200, response.get_json()
            results.append(response.get_json()["moved"])
        except BaseException as exc:  # surfaced below: a thread's failure would be lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=reaper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    moved = sorted(m["workflow_run_id"] for answer in results for m in answer)
    assert moved == sorted(ids)
    assert all(api.run_row(i).status == "E" for i in ids)
