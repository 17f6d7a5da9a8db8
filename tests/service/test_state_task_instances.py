"""State Manager: task-instance reports, their verdicts (apply / ignore / refuse) and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from state_calls import PREFIX, StateApi

from jobmon.server.models import TaskInstanceErrorLog


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def _instance(api: StateApi, max_attempts: int = 3) -> tuple[int, int, int]:
    """(workflow_run_id, task_id, task_instance_id) of a fresh instance in I."""
    b = api.bind(1, max_attempts=max_attempts)
    api.start(b)
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    return b.workflow_run_id, b.task_ids[0], inst["task_instance_id"]


ROUTES = {
    "submitted": {"executor_id": "1", "next_report_increment": 10},
    "no_executor_id": {"description": "qsub failed"},
    "running": {"node_name": "n", "next_report_increment": 10},
    "heartbeat": {"next_report_increment": 10},
    "done": {},
    "error": {"status": "E", "description": "x"},
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_unknown_instance_is_404(api: StateApi, route: str) -> None:
    out = api.post(f"/task_instance/999999/{route}", ROUTES[route], 404)
    assert out["error"] == "not_found"
    assert "999999" in out["reason"]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_malformed_json_is_400(client, route: str) -> None:
    for data in (b"{not json", b"[1, 2]", b'"text"'):
        response = client.post(f"{PREFIX}/task_instance/1/{route}", data=data,
                               content_type="application/json")
        assert response.status_code == 400, (route, data)
        assert response.get_json()["error"] == "invalid_input"


@pytest.mark.parametrize(("route", "body"), [
    ("submitted", {"next_report_increment": 10}),
    ("submitted", {"executor_id": "1", "next_report_increment": "soon"}),
    ("submitted", {"executor_id": "1", "next_report_increment": 0}),
    ("submitted", {"executor_id": [1], "next_report_increment": 10}),
    ("running", {"node_name": "n", "next_report_increment": -5}),
    ("running", {"node_name": 5, "next_report_increment": 5}),
    ("running", {"node_name": "n", "next_report_increment": 5, "process_group_id": "1"}),
    ("heartbeat", {}),
    ("heartbeat", {"next_report_increment": True}),
    ("done", {"exit_code": "0"}),
    ("done", {"maxrss": -1}),
    ("done", {"wallclock": "long"}),
    ("error", {"status": "D", "description": "x"}),
    ("error", {"status": "E"}),
    ("error", {"status": "E", "description": 5}),
])
def test_wrong_types_are_400(api: StateApi, route: str, body: dict) -> None:
    _, _, ti = _instance(api)
    out = api.post(f"/task_instance/{ti}/{route}", body, 400)
    assert out["error"] == "invalid_input"
    assert api.instance(ti).status == "I"


def test_invalid_transitions_are_409_with_the_current_status(api: StateApi) -> None:
    _, task_id, ti = _instance(api)
    out = api.post(f"/task_instance/{ti}/done", {}, 409)
    assert out["error"] == "conflict"
    assert out["task_instance_status"] == "I"
    assert "cannot move from I to D" in out["reason"]
    api.post(f"/task_instance/{ti}/error", {"status": "E", "description": "x"}, 409)  # I -> E
    api.post(f"/task_instance/{ti}/submitted", {"executor_id": "1", "next_report_increment": 10})
    api.post(f"/task_instance/{ti}/no_executor_id", {"description": "x"}, 409)  # B -> W
    api.post(f"/task_instance/{ti}/running", {"node_name": "n", "next_report_increment": 10})
    api.post(f"/task_instance/{ti}/done", {})
    out = api.post(f"/task_instance/{ti}/running", {"node_name": "n", "next_report_increment": 10}, 409)
    assert out["task_instance_status"] == "D"
    assert api.task(task_id).status == "D"


def test_late_racing_reports_are_ignored(api: StateApi) -> None:
    _, task_id, ti = _instance(api)
    api.run_instance(ti)
    # The executor's "submitted" arriving after the worker's "running".
    out = api.post(f"/task_instance/{ti}/submitted", {"executor_id": "9", "next_report_increment": 10})
    assert out == {"status": "R", "ignored": True}
    assert api.instance(ti).executor_id == f"job{ti}"
    # A repeated "running" (a retry whose answer was lost).
    assert api.post(f"/task_instance/{ti}/running", {"node_name": "n", "next_report_increment": 10}) == {
        "status": "R", "kill_self": False, "command": api.task(task_id).command, "ignored": True}
    api.post(f"/task_instance/{ti}/error", {"status": "E", "description": "worker saw failure"})
    # The reaper's "unknown error" after the worker's own error report.
    out = api.post(f"/task_instance/{ti}/error", {"status": "U", "description": "lost"})
    assert out == {"status": "E", "task_status": "E", "ignored": True}
    with api.session() as s:
        logs = s.execute(select(TaskInstanceErrorLog.description)
                         .where(TaskInstanceErrorLog.task_instance_id == ti)).scalars().all()
    assert logs == ["worker saw failure"]


def test_done_after_unknown_error_is_ignored(api: StateApi) -> None:
    _, task_id, ti = _instance(api)
    api.run_instance(ti)
    assert api.post(f"/task_instance/{ti}/error", {"status": "U", "description": "lost"}) == {
        "status": "U", "task_status": "E"}
    assert api.post(f"/task_instance/{ti}/done", {"exit_code": 0}) == {"status": "U", "ignored": True}
    assert api.post(f"/task_instance/{ti}/done", {"exit_code": 0})["ignored"] is True
    assert api.task(task_id).status == "E"


@pytest.mark.parametrize("status", ["U", "Z"])
def test_an_instance_given_up_on_is_told_to_kill_itself(api: StateApi, status: str) -> None:
    _, _, ti = _instance(api)
    api.post(f"/task_instance/{ti}/submitted", {"executor_id": "1", "next_report_increment": 10})
    api.post(f"/task_instance/{ti}/error", {"status": status, "description": "gone"})
    out = api.post(f"/task_instance/{ti}/running", {"node_name": "n", "next_report_increment": 10})
    assert out == {"status": status, "kill_self": True}
    assert api.post(f"/task_instance/{ti}/heartbeat", {"next_report_increment": 10}) == {
        "status": status, "kill_self": True}
    assert api.instance(ti).node_name is None


def test_no_executor_id_fails_the_attempt(api: StateApi) -> None:
    _, _task_id, ti = _instance(api)
    out = api.post(f"/task_instance/{ti}/no_executor_id", {"description": "qsub: queue full"})
    assert out == {"status": "W", "task_status": "E"}
    assert api.post(f"/task_instance/{ti}/running", {"node_name": "n", "next_report_increment": 10}) == {
        "status": "W", "kill_self": True}
    with api.session() as s:
        logs = s.execute(select(TaskInstanceErrorLog.description)
                         .where(TaskInstanceErrorLog.task_instance_id == ti)).scalars().all()
    assert logs == ["qsub: queue full"]


def test_unknown_error_before_any_report_fails_the_attempt(api: StateApi) -> None:
    # A local executor can lose a process before it reported anything: I -> U.
    _, _task_id, ti = _instance(api)
    assert api.post(f"/task_instance/{ti}/error", {"status": "U", "description": "vanished"}) == {
        "status": "U", "task_status": "E"}


def test_heartbeat_of_a_finished_instance_answers_its_status(api: StateApi) -> None:
    _, _, ti = _instance(api)
    api.run_instance(ti)
    api.post(f"/task_instance/{ti}/done", {})
    before = api.instance(ti).report_by_date
    assert api.post(f"/task_instance/{ti}/heartbeat", {"next_report_increment": 999}) == {
        "status": "D", "kill_self": False}
    assert api.instance(ti).report_by_date == before


def test_running_may_bring_the_executor_id(api: StateApi) -> None:
    _, task_id, ti = _instance(api)
    out = api.post(f"/task_instance/{ti}/running",
                   {"node_name": "host", "next_report_increment": 10, "executor_id": 4242})
    assert out == {"status": "R", "kill_self": False, "command": api.task(task_id).command}
    row = api.instance(ti)
    assert (row.executor_id, row.node_name) == ("4242", "host")
    assert api.task(task_id).status == "R"


def test_long_descriptions_keep_their_end(api: StateApi) -> None:
    _, _, ti = _instance(api)
    api.run_instance(ti)
    text = "x" * 70_000 + "THE END"
    api.post(f"/task_instance/{ti}/error", {"status": "E", "description": text})
    with api.session() as s:
        (stored,) = s.execute(select(TaskInstanceErrorLog.description)
                              .where(TaskInstanceErrorLog.task_instance_id == ti)).scalars().all()
    assert stored.endswith("THE END")
    assert len(stored.encode()) <= 65_535


def test_ids_too_large_for_any_column_are_404(api: StateApi) -> None:
    huge = 10**30
    api.post(f"/task_instance/{huge}/heartbeat", {"next_report_increment": 10}, 404)
    api.post(f"/workflow_run/{huge}/queue", {"task_ids": [1]}, 404)
    api.put(f"/workflow/{huge}/max_concurrently_running", {"limit": 1}, 404)
    api.post(f"/dag/{huge}/edges", {"edges": [[1, 2]]}, 404)


@pytest.mark.parametrize("raw", [
    b'{"next_report_increment": NaN}',
    b'{"next_report_increment": Infinity}',
    b'{"next_report_increment": 10, "wallclock": NaN}',
])
def test_non_finite_numbers_are_400(client, api: StateApi, raw: bytes) -> None:
    _, _, ti = _instance(api)
    route = "done" if b"wallclock" in raw else "heartbeat"
    if route == "done":
        api.run_instance(ti)
    response = client.post(f"{PREFIX}/task_instance/{ti}/{route}", data=raw,
                           content_type="application/json")
    assert response.status_code == 400, response.get_json()


def test_text_that_is_not_unicode_is_400(client, api: StateApi) -> None:
    _, _, ti = _instance(api)
    api.run_instance(ti)
    response = client.post(f"{PREFIX}/task_instance/{ti}/error", content_type="application/json",
                           data=b'{"status": "E", "description": "bad \\ud800 text"}')
    assert response.status_code == 400, response.get_json()
    assert api.instance(ti).status == "R"
