"""State Manager: a second run of a workflow, cold and hot resume."""

from __future__ import annotations

import pytest
from state_calls import Bound, StateApi


@pytest.fixture
def api(client, app) -> StateApi:
    return StateApi(client, app)


def _mixed(api: StateApi) -> tuple[Bound, dict[str, int], dict[str, int]]:
    """A running workflow with one task in each of D, R, I, E, Q; answers its task and instance ids."""
    b = api.bind(5, chain=False)
    api.start(b)
    run = b.workflow_run_id
    names = ["done", "running", "instantiated", "error", "queued"]
    tasks = dict(zip(names, b.task_ids, strict=True))
    instances = {i["task_id"]: i["task_instance_id"] for i in api.launch(run, b.task_ids[:4])}
    tis = {name: instances[tasks[name]] for name in names[:4]}
    api.run_instance(tis["done"])
    api.post(f"/task_instance/{tis['done']}/done", {"exit_code": 0})
    api.run_instance(tis["running"])
    api.run_instance(tis["error"])
    api.post(f"/task_instance/{tis['error']}/error", {"status": "E", "description": "failed"})
    api.post(f"/workflow_run/{run}/queue", {"task_ids": [tasks["queued"]]})
    assert api.task_statuses(b.workflow_id) == {
        tasks["done"]: "D", tasks["running"]: "R", tasks["instantiated"]: "I", tasks["error"]: "E",
        tasks["queued"]: "Q",
    }
    return b, tasks, tis


def test_a_second_active_run_needs_resume(api: StateApi) -> None:
    b = api.bind(2)
    api.start(b)
    out = api.post(f"/workflow/{b.workflow_id}/run",
                   {"user": "u", "executor_class": "x", "jobmon_version": "1"}, 409)
    assert out["reason"] == (
        f"workflow {b.workflow_id} has an active run {b.workflow_run_id}; pass resume")
    assert api.run_row(b.workflow_run_id).status == "R"
    assert api.workflow_status(b.workflow_id) == "R"


def test_cold_resume_kills_live_instances_and_resets_all_but_done(api: StateApi) -> None:
    b, tasks, tis = _mixed(api)
    new_run = api.new_run(b.workflow_id, resume=True, reset_running=True)
    assert new_run != b.workflow_run_id
    assert api.run_row(b.workflow_run_id).status == "C"
    assert api.run_row(new_run).status == "G"
    assert api.workflow_status(b.workflow_id) == "G"
    statuses = api.task_statuses(b.workflow_id)
    assert statuses[tasks["done"]] == "D"
    assert {statuses[tasks[n]] for n in ("running", "instantiated", "error", "queued")} == {"G"}
    assert api.task(tasks["error"]).num_attempts == 0
    assert api.task(tasks["done"]).num_attempts == 1
    assert api.instance(tis["running"]).status == "K"
    assert api.instance(tis["instantiated"]).status == "K"
    assert api.instance(tis["done"]).status == "D"

    # The old instances are told to die; their late reports change nothing.
    assert api.post(f"/task_instance/{tis['running']}/heartbeat", {"next_report_increment": 30}) == {
        "status": "K", "kill_self": True}
    assert api.post(f"/task_instance/{tis['instantiated']}/running",
                    {"node_name": "n", "next_report_increment": 30}) == {"status": "K", "kill_self": True}
    out = api.post(f"/task_instance/{tis['running']}/done", {"exit_code": 0})
    assert out == {"status": "K", "ignored": True}
    assert api.task_statuses(b.workflow_id)[tasks["running"]] == "G"
    # The old client learns from its heartbeat that it must stop, and can launch nothing more.
    old = b.workflow_run_id
    assert api.post(f"/workflow_run/{old}/heartbeat", {"next_report_increment": 30})["status"] == "C"
    api.post(f"/workflow_run/{old}/queue", {"task_ids": [tasks["queued"]]}, 409)
    api.post(f"/workflow_run/{old}/instantiate", {"task_ids": [tasks["queued"]], "executor_type": "x"}, 409)
    # The old run's moves no longer touch the workflow.
    api.run_status(old, "T")
    assert api.workflow_status(b.workflow_id) == "G"

    # The new run takes the workflow to the end; done tasks are not run again.
    b.workflow_run_id = new_run
    specs = [api.task_spec(n) for n in b.node_ids]
    rebound = api.bind_tasks(b, specs)
    assert [t["task_id"] for t in rebound] == b.task_ids
    api.start(b)
    todo = [t["task_id"] for t in rebound if t["status"] != "D"]
    assert api.post(f"/workflow_run/{new_run}/queue", {"task_ids": b.task_ids})["queued"] == todo
    for inst in api.post(f"/workflow_run/{new_run}/instantiate",
                         {"task_ids": todo, "executor_type": "x"})["task_instances"]:
        api.run_instance(inst["task_instance_id"])
        api.post(f"/task_instance/{inst['task_instance_id']}/done", {})
    api.run_status(new_run, "D")
    assert api.workflow_status(b.workflow_id) == "D"


def test_hot_resume_lets_running_instances_finish(api: StateApi) -> None:
    b, tasks, tis = _mixed(api)
    new_run = api.new_run(b.workflow_id, resume=True, reset_running=False)
    assert api.run_row(b.workflow_run_id).status == "H"
    statuses = api.task_statuses(b.workflow_id)
    assert statuses == {
        tasks["done"]: "D", tasks["running"]: "R", tasks["instantiated"]: "I", tasks["error"]: "G",
        tasks["queued"]: "G",
    }
    assert api.instance(tis["running"]).status == "R"
    assert api.post(f"/task_instance/{tis['running']}/heartbeat", {"next_report_increment": 30}) == {
        "status": "R", "kill_self": False}
    assert api.post(f"/task_instance/{tis['running']}/done", {"exit_code": 0}) == {"status": "D"}
    assert api.task_statuses(b.workflow_id)[tasks["running"]] == "D"
    assert api.post(f"/workflow_run/{b.workflow_run_id}/heartbeat",
                    {"next_report_increment": 30})["status"] == "H"
    assert api.run_row(new_run).status == "G"


def test_resuming_a_run_that_never_bound_aborts_it(api: StateApi) -> None:
    b = api.bind(1)
    new_run = api.new_run(b.workflow_id, resume=True)
    assert api.run_row(b.workflow_run_id).status == "A"
    assert api.run_row(new_run).status == "G"


def test_a_new_run_after_a_failed_one_needs_no_resume(api: StateApi) -> None:
    b = api.bind(2)
    api.start(b)
    (inst, _) = api.launch(b.workflow_run_id, b.task_ids)
    api.run_instance(inst["task_instance_id"])
    api.run_status(b.workflow_run_id, "E")
    assert api.workflow_status(b.workflow_id) == "F"
    new_run = api.new_run(b.workflow_id)
    assert api.run_row(new_run).status == "G"
    assert api.workflow_status(b.workflow_id) == "G"
    # Cold by default: the instance left behind by the failed run is killed, its task reset.
    assert api.instance(inst["task_instance_id"]).status == "K"
    assert set(api.task_statuses(b.workflow_id).values()) == {"G"}


def test_run_creation_rejects_bad_input(api: StateApi) -> None:
    b = api.bind(1)
    base = {"user": "u", "executor_class": "x", "jobmon_version": "1"}
    api.post("/workflow/999999/run", base, 404)
    api.post(f"/workflow/{b.workflow_id}/run", {**base, "user": ""}, 400)
    api.post(f"/workflow/{b.workflow_id}/run", {**base, "resume": "yes"}, 400)
    api.post(f"/workflow/{b.workflow_id}/run", {"user": "u"}, 400)
