"""State Manager: a workflow's whole life through the routes, and the get-or-create routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from state_calls import StateApi

from jobmon.server.db import db_now
from jobmon.server.models import (
    TaskArg,
    TaskAttribute,
    TaskInstanceErrorLog,
    TaskResources,
    TaskTemplateVersion,
    WorkflowArg,
    WorkflowAttribute,
)


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def test_full_lifecycle(api: StateApi) -> None:
    tool = api.post("/tool", {"name": "lifecycle"})
    assert set(tool) == {"tool_id", "tool_version_id"}
    tt = api.post("/task_template", {"tool_version_id": tool["tool_version_id"], "name": "echo"})
    ttv = api.post("/task_template_version", {
        "task_template_id": tt["task_template_id"], "command_template": "echo {word}",
        "node_args": ["word"], "task_args": [], "op_args": [],
    })["task_template_version_id"]
    node_ids = api.post("/nodes", {"nodes": [
        {"task_template_version_id": ttv, "node_args_hash": f"{i:064x}", "node_args": {"word": f"w{i}"}}
        for i in range(3)
    ]})["node_ids"]
    assert len(set(node_ids)) == 3
    dag = api.post("/dag", {"dag_hash": "d" * 64})
    assert dag["created"] is True
    edges = api.post(f"/dag/{dag['dag_id']}/edges",
                     {"edges": [[node_ids[0], node_ids[1]], [node_ids[0], node_ids[2]]]})
    assert edges == {"inserted": 2}
    wf = api.post("/workflow", {
        "tool_version_id": tool["tool_version_id"], "dag_id": dag["dag_id"], "workflow_args_hash": "a1",
        "task_hash": "b2", "name": "lifecycle", "description": "", "workflow_args": {"n": 3},
        "workflow_attributes": {"team": "x"}, "max_concurrently_running": 5,
    })
    assert wf["newly_created"] is True
    assert wf["status"] == "G"
    wf_id = wf["workflow_id"]
    run = api.post(f"/workflow/{wf_id}/run", {"user": "me", "executor_class": "Sequential",
                                              "jobmon_version": "1.0", "resume": False})
    assert run["status"] == "G"
    run_id = run["workflow_run_id"]
    tasks = api.post(f"/workflow/{wf_id}/tasks", {"workflow_run_id": run_id, "tasks": [
        api.task_spec(nid) for nid in node_ids
    ]})["tasks"]
    assert [t["node_id"] for t in tasks] == node_ids
    assert {t["status"] for t in tasks} == {"G"}
    task_ids = [t["task_id"] for t in tasks]

    assert api.run_status(run_id, "B") == {"workflow_run_id": run_id, "status": "B"}
    assert api.workflow_status(wf_id) == "B"
    api.run_status(run_id, "R")
    assert api.workflow_status(wf_id) == "R"
    assert api.post(f"/workflow_run/{run_id}/heartbeat", {"next_report_increment": 90}) == {
        "workflow_run_id": run_id, "status": "R"}

    queued = api.post(f"/workflow_run/{run_id}/queue", {"task_ids": task_ids})["queued"]
    assert queued == task_ids
    instances = api.post(f"/workflow_run/{run_id}/instantiate",
                         {"task_ids": task_ids, "executor_type": "sequential"})["task_instances"]
    assert [i["task_id"] for i in instances] == task_ids
    first = instances[0]
    assert first["command"] == f"run {node_ids[0]}"
    assert first["name"] == f"task{node_ids[0]}"
    assert (first["queue"], first["num_cores"], first["memory_mb"], first["runtime_s"]) == (
        "all.q", 1, 1024, 600)
    assert set(api.task_statuses(wf_id).values()) == {"I"}

    for inst in instances:
        ti = inst["task_instance_id"]
        assert api.post(f"/task_instance/{ti}/submitted",
                        {"executor_id": 1000 + ti, "next_report_increment": 120}) == {"status": "B"}
        assert api.post(f"/task_instance/{ti}/running",
                        {"node_name": "n1", "process_group_id": 7, "next_report_increment": 60}) == {
            "status": "R", "kill_self": False, "command": inst["command"]}
        assert api.post(f"/task_instance/{ti}/heartbeat", {"next_report_increment": 60}) == {
            "status": "R", "kill_self": False}
        assert api.post(f"/task_instance/{ti}/done", {
            "exit_code": 0, "wallclock": 1.5, "cpu": 0.25, "maxrss": 10_485_760, "maxpss": 9_000_000,
        }) == {"status": "D"}

    ti = api.instance(first["task_instance_id"])
    assert (ti.status, ti.executor_id, ti.node_name, ti.process_group_id) == ("D", str(1000 + ti.id), "n1", 7)
    assert (ti.exit_code, ti.wallclock, ti.cpu, ti.maxrss, ti.maxpss) == (0, 1.5, 0.25, 10_485_760, 9_000_000)
    assert set(api.task_statuses(wf_id).values()) == {"D"}
    assert api.task(task_ids[0]).num_attempts == 1

    assert api.run_status(run_id, "D")["status"] == "D"
    assert api.workflow_status(wf_id) == "D"
    # Done is final: neither the run nor the workflow can start again.
    api.run_status(run_id, "R", 409)
    api.new_run(wf_id, 409)

    with api.session() as s:
        assert s.execute(select(func.count()).select_from(WorkflowArg)).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(WorkflowAttribute)).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(TaskArg)).scalar_one() == 3
        assert s.execute(select(func.count()).select_from(TaskAttribute)).scalar_one() == 3


def test_deadlines_come_from_the_database_clock(api: StateApi) -> None:
    b = api.bind(1)
    api.start(b)
    api.post(f"/workflow_run/{b.workflow_run_id}/heartbeat", {"next_report_increment": 600})
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    ti_id = inst["task_instance_id"]
    api.post(f"/task_instance/{ti_id}/submitted", {"executor_id": "x", "next_report_increment": 3600})
    with api.session() as s:
        now = db_now(s)
    run = api.run_row(b.workflow_run_id)
    ti = api.instance(ti_id)
    assert abs(run.heartbeat_date - (now + timedelta(seconds=600))) < timedelta(seconds=30)
    assert ti.report_by_date is not None
    assert abs(ti.report_by_date - (now + timedelta(seconds=3600))) < timedelta(seconds=30)
    assert ti.submitted_date is not None
    assert abs(ti.submitted_date - now) < timedelta(seconds=30)


def test_run_done_refused_until_every_task_is_done(api: StateApi) -> None:
    b = api.bind(2)
    api.start(b)
    out = api.run_status(b.workflow_run_id, "D", 409)
    assert "2 task(s) are not done" in out["reason"]
    assert api.run_row(b.workflow_run_id).status == "R"


@pytest.mark.parametrize(("status", "workflow_status"), [("E", "F"), ("S", "S"), ("A", "A")])
def test_workflow_follows_its_run(api: StateApi, status: str, workflow_status: str) -> None:
    b = api.bind(1)
    api.start(b)
    api.run_status(b.workflow_run_id, status)
    assert api.workflow_status(b.workflow_id) == workflow_status


def test_run_status_repeat_is_a_no_op_and_invalid_moves_are_409(api: StateApi) -> None:
    b = api.bind(1)
    api.run_status(b.workflow_run_id, "B")
    assert api.run_status(b.workflow_run_id, "B")["status"] == "B"
    out = api.run_status(b.workflow_run_id, "G", 409)
    assert out["error"] == "conflict"
    assert "cannot move from B to G" in out["reason"]
    api.run_status(b.workflow_run_id, "X", 400)
    api.run_status(999_999, "B", 404)


def test_heartbeat_of_an_inactive_run_answers_its_status_without_extending(api: StateApi) -> None:
    b = api.bind(1)
    api.start(b)
    api.run_status(b.workflow_run_id, "E")
    before = api.run_row(b.workflow_run_id).heartbeat_date
    out = api.post(f"/workflow_run/{b.workflow_run_id}/heartbeat", {"next_report_increment": 600})
    assert out["status"] == "E"
    assert api.run_row(b.workflow_run_id).heartbeat_date == before


def test_tool_and_templates_are_get_or_create(api: StateApi) -> None:
    first = api.post("/tool", {"name": "same"})
    assert api.post("/tool", {"name": "same"}) == first
    newer = api.post(f"/tool/{first['tool_id']}/version", {})["tool_version_id"]
    assert newer > first["tool_version_id"]
    # The tool's latest version is answered from now on.
    assert api.post("/tool", {"name": "same"})["tool_version_id"] == newer
    tt = api.post("/task_template", {"tool_version_id": newer, "name": "t"})
    assert api.post("/task_template", {"tool_version_id": newer, "name": "t"}) == tt
    body = {"task_template_id": tt["task_template_id"], "command_template": "x {a} {b}",
            "node_args": ["a", "b"], "task_args": ["c"], "op_args": []}
    v1 = api.post("/task_template_version", body)
    # Arg order does not matter; the command does.
    assert api.post("/task_template_version", {**body, "node_args": ["b", "a"]}) == v1
    v2 = api.post("/task_template_version", {**body, "command_template": "y {a} {b}"})
    assert v2 != v1
    with api.session() as s:
        row = s.get(TaskTemplateVersion, v1["task_template_version_id"])
        assert row is not None
        assert row.node_args == '["a", "b"]'
        assert len(row.template_hash) == 64


def test_tool_routes_reject_bad_input(api: StateApi) -> None:
    api.post("/tool", {"name": ""}, 400)
    api.post("/tool", {"name": 5}, 400)
    api.post("/tool", {}, 400)
    api.post("/tool/999999/version", {}, 404)
    api.post("/task_template", {"tool_version_id": 999_999, "name": "t"}, 404)
    api.post("/task_template", {"tool_version_id": "1", "name": "t"}, 400)
    api.post("/task_template_version", {"task_template_id": 999_999, "command_template": "x"}, 404)
    tv = api.post("/tool", {"name": "bad"})["tool_version_id"]
    tt = api.post("/task_template", {"tool_version_id": tv, "name": "t"})["task_template_id"]
    api.post("/task_template_version", {"task_template_id": tt, "command_template": "x",
                                        "node_args": [1]}, 400)
    api.post("/task_template_version", {"task_template_id": tt, "command_template": "x",
                                        "node_args": ""}, 400)


def test_workflow_is_get_or_create(api: StateApi) -> None:
    b = api.bind(1)
    body = {"tool_version_id": b.tool_version_id, "dag_id": b.dag_id, "workflow_args_hash": "abc",
            "task_hash": "def", "name": "other name"}
    again = api.post("/workflow", body)
    assert again["workflow_id"] == b.workflow_id
    assert again["newly_created"] is False
    other = api.post("/workflow", {**body, "task_hash": "0def"})
    assert other["newly_created"] is True
    assert other["workflow_id"] != b.workflow_id
    api.post("/workflow", {**body, "dag_id": 999_999}, 404)
    api.post("/workflow", {**body, "tool_version_id": 999_999}, 404)
    api.post("/workflow", {**body, "task_hash": "not hex"}, 400)
    api.post("/workflow", {**body, "max_concurrently_running": -1}, 400)


def test_error_log_and_usage_are_stored(api: StateApi) -> None:
    b = api.bind(1)
    api.start(b)
    (inst,) = api.launch(b.workflow_run_id, b.task_ids)
    ti = inst["task_instance_id"]
    api.run_instance(ti)
    out = api.post(f"/task_instance/{ti}/error", {
        "status": "E", "description": "Traceback: boom", "exit_code": 3, "wallclock": 2.0, "maxrss": 1234,
    })
    assert out == {"status": "E", "task_status": "E"}
    row = api.instance(ti)
    assert (row.status, row.exit_code, row.wallclock, row.maxrss) == ("E", 3, 2.0, 1234)
    with api.session() as s:
        logs = s.execute(select(TaskInstanceErrorLog.description)
                         .where(TaskInstanceErrorLog.task_instance_id == ti)).scalars().all()
    assert logs == ["Traceback: boom"]


def test_openapi_documents_every_state_route(client) -> None:
    doc = client.get("/api/state/openapi.json").get_json()
    paths = doc["paths"]
    expected = {
        ("/api/state/tool", "post"), ("/api/state/tool/{tool_id}/version", "post"),
        ("/api/state/task_template", "post"), ("/api/state/task_template_version", "post"),
        ("/api/state/nodes", "post"), ("/api/state/dag", "post"), ("/api/state/dag/{dag_id}/edges", "post"),
        ("/api/state/workflow", "post"), ("/api/state/workflow/{workflow_id}/run", "post"),
        ("/api/state/workflow/{workflow_id}/tasks", "post"),
        ("/api/state/workflow_run/{workflow_run_id}/status", "put"),
        ("/api/state/workflow_run/{workflow_run_id}/heartbeat", "post"),
        ("/api/state/workflow_run/{workflow_run_id}/queue", "post"),
        ("/api/state/workflow_run/{workflow_run_id}/instantiate", "post"),
        ("/api/state/workflow/{workflow_id}/max_concurrently_running", "put"),
        ("/api/state/workflow/{workflow_id}/reset", "post"),
        ("/api/state/workflow/{workflow_id}/task_statuses", "put"),
    } | {(f"/api/state/task_instance/{{task_instance_id}}/{r}", "post")
         for r in ("submitted", "no_executor_id", "running", "heartbeat", "done", "error")}
    found = {(p, m) for p, ops in paths.items() for m in ops if p.startswith("/api/state/")}
    assert expected <= found
    for path, method in expected:
        op = paths[path][method]
        assert "requestBody" in op, path
        assert op["summary"], path
        assert not op["summary"].startswith("state."), path


def test_resources_rows_are_original_and_validated(api: StateApi) -> None:
    b = api.bind(1)
    with api.session() as s:
        rows = s.execute(select(TaskResources.resource_type, TaskResources.memory_mb)
                         .where(TaskResources.task_id == b.task_ids[0])
                         .order_by(TaskResources.id)).all()
    assert [tuple(r) for r in rows] == [("O", 1024), ("V", 1024)]


def test_a_command_template_too_long_for_the_column_is_400(api: StateApi) -> None:
    tv = api.post("/tool", {"name": "long"})["tool_version_id"]
    tt = api.post("/task_template", {"tool_version_id": tv, "name": "t"})["task_template_id"]
    out = api.post("/task_template_version",
                   {"task_template_id": tt, "command_template": "é" * 40_000}, 400)
    assert "longer than" in out["reason"]
