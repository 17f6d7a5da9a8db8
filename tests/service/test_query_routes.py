"""Query Service routes (/api/query): answers, bad parameters (400) and unknown ids (404)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dbseed import Seeder
from jobmon.server.app import create_app
from jobmon.server.db import db_now


@pytest.fixture
def seeder(app) -> Seeder:
    return Seeder(app.extensions["jobmon"].read_write)


def _db_now(app) -> datetime:
    with app.extensions["jobmon"].read_only() as session:
        return db_now(session)


def test_time_is_the_database_clock(app, client):
    before = _db_now(app)
    answer = client.get("/api/query/time").get_json()
    after = _db_now(app)
    assert before <= datetime.fromisoformat(answer["time"]) <= after


def test_version(client):
    import jobmon

    assert client.get("/api/query/version").get_json() == {"version": jobmon.__version__}


def test_workflow(client, seeder):
    wf = seeder.workflow(name="nightly", status="R", max_concurrently_running=7)
    resp = client.get(f"/api/query/workflow/{wf.workflow_id}")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["workflow_id"] == wf.workflow_id
    assert body["name"] == "nightly"
    assert body["status"] == "R"
    assert body["max_concurrently_running"] == 7
    assert body["dag_id"] == wf.dag_id
    assert body["tool_version_id"] == wf.tool_version_id
    datetime.fromisoformat(body["created_date"])
    datetime.fromisoformat(body["status_date"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/query/workflow/{missing}",
        "/api/query/workflow/{missing}/task_statuses",
        "/api/query/workflow/{missing}/concurrency",
        "/api/query/workflow_run/{missing}",
        "/api/query/workflow_run/{missing}/overdue_instances",
        "/api/query/task_instance/{missing}",
    ],
)
@pytest.mark.parametrize("missing", [424242, 2**63 - 1, 2**64])
def test_unknown_ids_are_404_json(client, seeder, path, missing):
    seeder.workflow()
    resp = client.get(path.format(missing=missing))
    assert resp.status_code == 404
    body = resp.get_json()
    assert body["error"] == "not_found"
    assert f"{missing} not found" in body["reason"]


@pytest.mark.parametrize("path", ["/api/query/workflow/abc", "/api/query/workflow/-1",
                                  "/api/query/task_instance/1.5"])
def test_non_integer_ids_are_404_json(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.get_json()["error"] == "not_found"


def test_workflow_run(client, seeder):
    wf = seeder.workflow(user="bob", run_status="B")
    body = client.get(f"/api/query/workflow_run/{wf.workflow_run_id}").get_json()
    assert body["workflow_run_id"] == wf.workflow_run_id
    assert body["workflow_id"] == wf.workflow_id
    assert body["status"] == "B"
    assert body["user"] == "bob"
    datetime.fromisoformat(body["heartbeat_date"])


def test_task_statuses_every_task(client, seeder):
    wf = seeder.workflow(task_statuses=["G", "D", "F", "R"])
    other = seeder.workflow(task_statuses=["D"])
    body = client.get(f"/api/query/workflow/{wf.workflow_id}/task_statuses").get_json()
    datetime.fromisoformat(body["time"])
    got = sorted((t["task_id"], t["status"], t["num_attempts"]) for t in body["tasks"])
    assert got == [(wf.task_ids[0], "G", 0), (wf.task_ids[1], "D", 1), (wf.task_ids[2], "F", 1),
                   (wf.task_ids[3], "R", 1)]
    assert other.task_ids[0] not in {t["task_id"] for t in body["tasks"]}


def test_task_statuses_since(app, client, seeder):
    old = datetime(2020, 1, 1)
    now = _db_now(app)
    wf = seeder.workflow(task_statuses=["D", "D", "R"], status_dates=[old, old, now])
    url = f"/api/query/workflow/{wf.workflow_id}/task_statuses"

    since = (now - timedelta(hours=1)).isoformat()
    body = client.get(url, query_string={"since": since}).get_json()
    assert [t["task_id"] for t in body["tasks"]] == [wf.task_ids[2]]

    # An offset-aware timestamp is converted to UTC.
    aware = (now - timedelta(hours=1)).replace(tzinfo=UTC).astimezone(timezone_plus_two()).isoformat()
    body = client.get(url, query_string={"since": aware}).get_json()
    assert [t["task_id"] for t in body["tasks"]] == [wf.task_ids[2]]

    # Nothing changed after a `since` an hour ahead, even with the look-back overlap.
    later = (now + timedelta(hours=1)).isoformat()
    assert client.get(url, query_string={"since": later}).get_json()["tasks"] == []

    # The answered time is the DB clock, to pass as the next `since`.
    assert datetime.fromisoformat(body["time"]) >= now


def timezone_plus_two():
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_task_statuses_since_the_beginning_of_time(client, seeder):
    wf = seeder.workflow(task_statuses=["D"])
    resp = client.get(f"/api/query/workflow/{wf.workflow_id}/task_statuses",
                      query_string={"since": "0001-01-01T00:00:00"})
    assert resp.status_code == 200
    assert [t["task_id"] for t in resp.get_json()["tasks"]] == wf.task_ids


@pytest.mark.parametrize("since", ["yesterday", "2024-13-01", "12345", "0001-01-01T00:00:00+14:00"])
def test_task_statuses_bad_since_is_400(client, seeder, since):
    wf = seeder.workflow()
    resp = client.get(f"/api/query/workflow/{wf.workflow_id}/task_statuses", query_string={"since": since})
    assert resp.status_code == 400
    assert resp.get_json() == {"error": "invalid_input",
                               "reason": "query parameter 'since' must be an ISO 8601 timestamp"}


def test_concurrency(client, seeder):
    wf = seeder.workflow(max_concurrently_running=3)
    assert client.get(f"/api/query/workflow/{wf.workflow_id}/concurrency").get_json() == {
        "max_concurrently_running": 3}


def test_task_instance(client, seeder):
    wf = seeder.workflow(task_statuses=["R"])
    deadline = datetime(2030, 1, 2, 3, 4, 5)
    ti = seeder.instance(wf.task_ids[0], wf.workflow_run_id, "R", executor_id="4711", node_name="n1",
                         report_by_date=deadline, maxrss=123)
    body = client.get(f"/api/query/task_instance/{ti}").get_json()
    assert body["task_instance_id"] == ti
    assert body["task_id"] == wf.task_ids[0]
    assert body["workflow_run_id"] == wf.workflow_run_id
    assert body["status"] == "R"
    assert body["executor_id"] == "4711"
    assert body["node_name"] == "n1"
    assert datetime.fromisoformat(body["report_by_date"]) == deadline
    assert body["maxrss"] == 123


def test_overdue_instances(client, seeder):
    wf = seeder.workflow(task_statuses=["R", "R", "R", "D", "I", "I"])
    other = seeder.workflow(task_statuses=["R"])
    past, future = datetime(2020, 1, 1), datetime(2999, 1, 1)
    run = wf.workflow_run_id
    overdue_b = seeder.instance(wf.task_ids[0], run, "B", executor_id="1", report_by_date=past)
    overdue_r = seeder.instance(wf.task_ids[1], run, "R", executor_id="2", report_by_date=past)
    seeder.instance(wf.task_ids[2], run, "R", executor_id="3", report_by_date=future)
    seeder.instance(wf.task_ids[3], run, "D", executor_id="4", report_by_date=past)
    seeder.instance(wf.task_ids[4], run, "I")  # no deadline yet: not overdue
    overdue_i = seeder.instance(wf.task_ids[5], run, "I", report_by_date=past)
    seeder.instance(other.task_ids[0], other.workflow_run_id, "R", executor_id="9", report_by_date=past)

    body = client.get(f"/api/query/workflow_run/{run}/overdue_instances").get_json()
    got = [(t["task_instance_id"], t["status"], t["executor_id"]) for t in body["task_instances"]]
    assert got == [(overdue_b, "B", "1"), (overdue_r, "R", "2"), (overdue_i, "I", None)]


def test_query_service_alone_needs_no_write_credentials(server_config, seeder):
    """Built as production builds it: only the Query Service, only read-only credentials."""
    ro_app = create_app(server_config, services=["query"])
    assert ro_app.extensions["jobmon"].read_write is None
    wf = seeder.workflow(task_statuses=["D"])
    c = ro_app.test_client()
    assert c.get(f"/api/query/workflow/{wf.workflow_id}").status_code == 200
    assert c.get(f"/api/query/workflow/{wf.workflow_id}/task_statuses").status_code == 200
    assert c.get("/api/query/time").status_code == 200
    assert c.get("/api/query/health").get_json()["status"] == "ok"
    assert c.get("/api/viz/workflows").status_code == 404
