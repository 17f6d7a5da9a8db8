"""Visualization JSON routes (/api/viz): summaries, filters, paging, bad parameters and unknown ids."""

from __future__ import annotations

import pytest

from dbseed import Seeder
from jobmon.server.app import create_app

ALL_LETTERS = "GQIREAFD"


@pytest.fixture
def seeder(app) -> Seeder:
    return Seeder(app.extensions["jobmon"].read_write)


def _counts(**given: int) -> dict[str, int]:
    return {letter: given.get(letter, 0) for letter in ALL_LETTERS}


def test_workflows_newest_first_with_counts(client, seeder):
    a = seeder.workflow(name="first", task_statuses=["D", "D", "F"], user="alice")
    b = seeder.workflow(name="second", task_statuses=["G", "R", "R", "E", "D"], user="bob")
    c = seeder.workflow(name="empty", status="G", task_statuses=[], user=None)
    body = client.get("/api/viz/workflows").get_json()
    ws = body["workflows"]
    assert [w["workflow_id"] for w in ws] == [c.workflow_id, b.workflow_id, a.workflow_id]
    by_id = {w["workflow_id"]: w for w in ws}
    assert by_id[a.workflow_id]["tasks"] == _counts(D=2, F=1)
    assert by_id[a.workflow_id]["total"] == 3
    assert by_id[a.workflow_id]["user"] == "alice"
    assert by_id[a.workflow_id]["name"] == "first"
    assert by_id[a.workflow_id]["status"] == "R"
    assert by_id[b.workflow_id]["tasks"] == _counts(G=1, R=2, E=1, D=1)
    assert by_id[c.workflow_id]["tasks"] == _counts()
    assert by_id[c.workflow_id]["total"] == 0
    assert by_id[c.workflow_id]["user"] is None
    for w in ws:
        assert set(w) >= {"workflow_id", "name", "status", "created_date", "status_date", "user", "tasks",
                          "total"}


def test_workflows_user_is_that_of_the_latest_run(app, client, seeder):
    from sqlalchemy import insert

    from jobmon.server.models import WorkflowRun

    wf = seeder.workflow(user="alice", run_status="E")
    with app.extensions["jobmon"].read_write() as session, session.begin():
        session.execute(insert(WorkflowRun).values(workflow_id=wf.workflow_id, user="carol",
                                                   executor_class="X", jobmon_version="0", status="R"))
    [w] = client.get("/api/viz/workflows").get_json()["workflows"]
    assert w["user"] == "carol"
    # The user filter matches any run's user.
    assert len(client.get("/api/viz/workflows?user=alice").get_json()["workflows"]) == 1


def test_workflows_filters(client, seeder):
    ids = [seeder.workflow(name=f"w{i}", user="alice" if i % 2 else "bob").workflow_id for i in range(6)]
    get = lambda qs: [w["workflow_id"] for w in client.get("/api/viz/workflows", query_string=qs)  # noqa: E731
                      .get_json()["workflows"]]
    assert get({"limit": 2}) == [ids[5], ids[4]]
    assert get({"user": "alice"}) == [ids[5], ids[3], ids[1]]
    assert get({"user": "nobody"}) == []
    assert get([("workflow_id", ids[0]), ("workflow_id", ids[2])]) == [ids[2], ids[0]]
    assert get({"workflow_id": f"{ids[0]},{ids[1]}"}) == [ids[1], ids[0]]
    assert get({"workflow_id": ids[0], "user": "alice"}) == []
    assert get({"workflow_id": 99999}) == []


def test_workflows_default_limit_is_20(client, seeder):
    for _ in range(22):
        seeder.workflow(task_statuses=[])
    assert len(client.get("/api/viz/workflows").get_json()["workflows"]) == 20


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=0", "query parameter 'limit' must be at least 1"),
        ("limit=1001", "query parameter 'limit' must be at most 1000"),
        ("limit=ten", "query parameter 'limit' must be an integer"),
        ("workflow_id=x", "query parameter 'workflow_id' must be an integer"),
        ("workflow_id=0", "query parameter 'workflow_id' must be between 1 and 9223372036854775807"),
        ("workflow_id=99999999999999999999",
         "query parameter 'workflow_id' must be between 1 and 9223372036854775807"),
        ("user=" + "u" * 151, "query parameter 'user' is longer than 150"),
    ],
)
def test_workflows_bad_parameters_are_400(client, query, reason):
    resp = client.get(f"/api/viz/workflows?{query}")
    assert resp.status_code == 400
    assert resp.get_json() == {"error": "invalid_input", "reason": reason}


def test_workflow_tasks(client, seeder):
    wf = seeder.workflow(task_statuses=["G", "D", "F", "D"], task_names=["a", "b", "c", "d"])
    body = client.get(f"/api/viz/workflow/{wf.workflow_id}/tasks").get_json()
    assert body["workflow_id"] == wf.workflow_id
    assert body["total"] == 4
    assert body["next_after"] is None
    assert body["tasks"] == [
        {"task_id": wf.task_ids[0], "name": "a", "status": "G", "num_attempts": 0, "max_attempts": 3},
        {"task_id": wf.task_ids[1], "name": "b", "status": "D", "num_attempts": 1, "max_attempts": 3},
        {"task_id": wf.task_ids[2], "name": "c", "status": "F", "num_attempts": 1, "max_attempts": 3},
        {"task_id": wf.task_ids[3], "name": "d", "status": "D", "num_attempts": 1, "max_attempts": 3},
    ]


def test_workflow_tasks_status_filter(client, seeder):
    wf = seeder.workflow(task_statuses=["G", "D", "F", "D", "R"])
    other = seeder.workflow(task_statuses=["D"])
    url = f"/api/viz/workflow/{wf.workflow_id}/tasks"
    ids = lambda qs: [t["task_id"] for t in client.get(url, query_string=qs).get_json()["tasks"]]  # noqa: E731
    assert ids({"status": "D"}) == [wf.task_ids[1], wf.task_ids[3]]
    assert ids([("status", "D"), ("status", "f")]) == [wf.task_ids[1], wf.task_ids[2], wf.task_ids[3]]
    assert ids({"status": "G,R"}) == [wf.task_ids[0], wf.task_ids[4]]
    assert ids({"status": "Q"}) == []
    assert ids({"status": ""}) == wf.task_ids  # an empty filter is no filter
    assert other.task_ids[0] not in ids({})


def test_workflow_tasks_paging(client, seeder):
    wf = seeder.workflow(task_statuses=["D"] * 7 + ["G"] * 3)
    url = f"/api/viz/workflow/{wf.workflow_id}/tasks"
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        qs = {"limit": 3, "status": "D"} | ({"after": after} if after is not None else {})
        body = client.get(url, query_string=qs).get_json()
        assert body["total"] == 7
        seen += [t["task_id"] for t in body["tasks"]]
        pages += 1
        after = body["next_after"]
        if after is None:
            break
    assert seen == wf.task_ids[:7]
    assert pages == 3


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("status=X", "query parameter 'status' must be task status letters (GQIREAFD), got 'X'"),
        ("status=DONE", "query parameter 'status' must be task status letters (GQIREAFD), got 'DONE'"),
        ("limit=0", "query parameter 'limit' must be at least 1"),
        ("limit=100001", "query parameter 'limit' must be at most 100000"),
        ("after=-1", "query parameter 'after' must be at least 0"),
        ("after=z", "query parameter 'after' must be an integer"),
    ],
)
def test_workflow_tasks_bad_parameters_are_400(client, seeder, query, reason):
    wf = seeder.workflow()
    resp = client.get(f"/api/viz/workflow/{wf.workflow_id}/tasks?{query}")
    assert resp.status_code == 400
    assert resp.get_json() == {"error": "invalid_input", "reason": reason}


@pytest.mark.parametrize("path", ["/api/viz/workflow/{id}/tasks", "/api/viz/task/{id}"])
@pytest.mark.parametrize("missing", [31337, 2**64])
def test_unknown_ids_are_404_json(client, seeder, path, missing):
    seeder.workflow()
    resp = client.get(path.format(id=missing))
    assert resp.status_code == 404
    body = resp.get_json()
    assert body["error"] == "not_found"
    assert body["reason"].endswith(f"{missing} not found")


def test_task_detail(client, seeder):
    wf = seeder.workflow(task_statuses=["D"], task_names=["align"])
    task_id = wf.task_ids[0]
    seeder.resources(task_id, queue="long.q", num_cores=4, memory_mb=2048, runtime_s=7200)
    first = seeder.instance(task_id, wf.workflow_run_id, "Z", executor_id="101", node_name="n1",
                            exit_code=137, wallclock=12.5, cpu=10.0, maxrss=3 * 1024**3)
    seeder.error(first, "killed: out of memory")
    seeder.error(first, "second note")
    second = seeder.instance(task_id, wf.workflow_run_id, "D", executor_id="102", node_name="n2",
                             exit_code=0, wallclock=20.0, cpu=19.0, maxrss=2 * 1024**3)
    body = client.get(f"/api/viz/task/{task_id}").get_json()
    assert body["task_id"] == task_id
    assert body["workflow_id"] == wf.workflow_id
    assert body["name"] == "align"
    assert body["command"] == "echo 0"
    assert body["status"] == "D"
    assert (body["num_attempts"], body["max_attempts"]) == (1, 3)
    assert {k: body["resources"][k] for k in ("queue", "num_cores", "memory_mb", "runtime_s")} == {
        "queue": "long.q", "num_cores": 4, "memory_mb": 2048, "runtime_s": 7200}
    i1, i2 = body["instances"]
    assert i1["task_instance_id"] == first
    assert (i1["status"], i1["executor_id"], i1["node_name"], i1["exit_code"]) == ("Z", "101", "n1", 137)
    assert (i1["wallclock"], i1["cpu"], i1["maxrss"]) == (12.5, 10.0, 3 * 1024**3)
    assert [e["description"] for e in i1["errors"]] == ["killed: out of memory", "second note"]
    assert all(e["error_time"] for e in i1["errors"])
    assert i1["status_date"]
    assert i2["task_instance_id"] == second
    assert i2["errors"] == []


def test_task_detail_without_resources_or_instances(client, seeder):
    wf = seeder.workflow(task_statuses=["G"])
    body = client.get(f"/api/viz/task/{wf.task_ids[0]}").get_json()
    assert body["resources"] is None
    assert body["instances"] == []


def test_viz_alone_needs_no_write_credentials(server_config, seeder):
    """Built as production builds it: only the Visualization server, only read-only credentials."""
    viz_app = create_app(server_config, services=["viz"])
    assert viz_app.extensions["jobmon"].read_write is None
    wf = seeder.workflow()
    c = viz_app.test_client()
    assert c.get("/api/viz/workflows").status_code == 200
    assert c.get(f"/api/viz/workflow/{wf.workflow_id}/tasks").status_code == 200
    assert c.get(f"/api/viz/task/{wf.task_ids[0]}").status_code == 200
    assert c.get("/viz/").status_code == 200
    assert c.get("/api/viz/health").get_json()["status"] == "ok"
    assert c.get("/api/query/version").status_code == 404


WEIRD = ["", "0", "-1", "1e3", "99999999999999999999999", "%00", "\x00", "é", "' OR 1=1 --", "D,,F", ",",
         "null"]


@pytest.mark.parametrize("value", WEIRD)
def test_read_routes_never_answer_500(client, seeder, value):
    wf = seeder.workflow()
    routes = [
        "/api/viz/workflows?user={v}&workflow_id={v}&limit={v}",
        f"/api/viz/workflow/{wf.workflow_id}/tasks?status={{v}}&limit={{v}}&after={{v}}",
        f"/api/query/workflow/{wf.workflow_id}/task_statuses?since={{v}}",
        "/viz/?user={v}&limit={v}",
        f"/viz/workflow/{wf.workflow_id}?status={{v}}&limit={{v}}&after={{v}}",
    ]
    for route in routes:
        resp = client.get(route.format(v=value))
        assert resp.status_code in (200, 400), (route, value, resp.get_data(as_text=True))
