"""Helpers for the State Manager service tests: call routes through the Flask test client, bind a small
workflow, launch its tasks, and look at rows directly in the database."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobmon.core.hashing import node_args_hash, task_args_hash
from jobmon.server.models import Task, TaskInstance, Workflow, WorkflowRun

PREFIX = "/api/state"
RESOURCES = {"queue": "all.q", "num_cores": 1, "memory_mb": 1024, "runtime_s": 600}
_names = itertools.count()


@dataclass
class Bound:
    tool_version_id: int
    task_template_version_id: int
    dag_id: int
    workflow_id: int
    workflow_run_id: int
    node_ids: list[int]
    task_ids: list[int] = field(default_factory=list)


class StateApi:
    def __init__(self, client: Any, app: Any) -> None:
        self.client = client
        self.app = app

    # -- raw calls --------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        response = self.client.open(PREFIX + path, method=method, json=body)
        data = response.get_json(silent=True)
        assert response.status_code == status, (method, path, response.status_code, data)
        assert isinstance(data, dict), (method, path, response.get_data()[:200])
        if status >= 400:
            assert set(data) >= {"error", "reason"}, data
        return data

    def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        return self.call("POST", path, {} if body is None else body, status)

    def put(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        return self.call("PUT", path, {} if body is None else body, status)

    def session(self) -> Session:
        factory = self.app.extensions["jobmon"].read_write
        session: Session = factory()
        return session

    # -- building blocks --------------------------------------------------------------------------

    def template(self, tool: str | None = None) -> tuple[int, int]:
        """(tool_version_id, task_template_version_id) of a fresh tool."""
        tool = tool or f"tool{next(_names)}"
        tv = self.post("/tool", {"name": tool})["tool_version_id"]
        tt = self.post("/task_template", {"tool_version_id": tv, "name": "tmpl"})["task_template_id"]
        ttv = self.post("/task_template_version", {
            "task_template_id": tt, "command_template": "run {i}", "node_args": ["i"],
        })["task_template_version_id"]
        return tv, ttv

    def nodes(self, ttv: int, indices: range | list[int], chunk: int = 10_000) -> list[int]:
        items = [{"task_template_version_id": ttv, "node_args_hash": node_args_hash({"i": i}),
                  "node_args": {"i": i}} for i in indices]
        ids: list[int] = []
        for start in range(0, len(items), chunk):
            ids += self.post("/nodes", {"nodes": items[start:start + chunk]})["node_ids"]
        return ids

    def task_spec(self, node_id: int, **overrides: Any) -> dict[str, Any]:
        spec = {
            "node_id": node_id, "task_args_hash": task_args_hash({"a": node_id}), "name": f"task{node_id}",
            "command": f"run {node_id}", "max_attempts": 3, "task_args": {"a": node_id},
            "task_attributes": {"kind": "test"}, "resource_scales": {"memory": 0.5, "runtime": 0.5},
            "resources": dict(RESOURCES),
        }
        spec.update(overrides)
        return spec

    def bind_tasks(self, bound: Bound, specs: list[dict[str, Any]], chunk: int = 10_000,
                   run_id: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(specs), chunk):
            out += self.post(f"/workflow/{bound.workflow_id}/tasks", {
                "workflow_run_id": run_id or bound.workflow_run_id, "tasks": specs[start:start + chunk],
            })["tasks"]
        return out

    def bind(self, n: int = 3, chain: bool = True, max_attempts: int = 3,
             resources: dict[str, Any] | None = None, dag_hash: str | None = None) -> Bound:
        """A workflow of ``n`` tasks (a chain when asked), its first run in G, tasks bound."""
        tv, ttv = self.template()
        node_ids = self.nodes(ttv, range(n))
        dag_hash = dag_hash or f"{next(_names):x}ad"
        dag_id = self.post("/dag", {"dag_hash": dag_hash})["dag_id"]
        if chain and n > 1:
            self.post(f"/dag/{dag_id}/edges",
                      {"edges": [[node_ids[i], node_ids[i + 1]] for i in range(n - 1)]})
        wf = self.post("/workflow", {
            "tool_version_id": tv, "dag_id": dag_id, "workflow_args_hash": "abc", "task_hash": "def",
            "name": "wf", "description": "a test workflow", "workflow_args": {"x": 1},
            "workflow_attributes": {"owner": "me"}, "max_concurrently_running": 100,
        })
        run = self.new_run(wf["workflow_id"])
        bound = Bound(tv, ttv, dag_id, wf["workflow_id"], run, node_ids)
        specs = [self.task_spec(nid, max_attempts=max_attempts,
                                resources=dict(resources or RESOURCES)) for nid in node_ids]
        bound.task_ids = [t["task_id"] for t in self.bind_tasks(bound, specs)]
        return bound

    def new_run(self, workflow_id: int, status: int = 200, **options: Any) -> int:
        body = {"user": "tester", "executor_class": "SequentialExecutor", "jobmon_version": "test",
                **options}
        out = self.post(f"/workflow/{workflow_id}/run", body, status)
        return int(out.get("workflow_run_id", 0))

    def run_status(self, run_id: int, status: str, expect: int = 200) -> dict[str, Any]:
        return self.put(f"/workflow_run/{run_id}/status", {"status": status}, expect)

    def start(self, bound: Bound, run_id: int | None = None) -> None:
        run_id = run_id or bound.workflow_run_id
        self.run_status(run_id, "B")
        self.run_status(run_id, "R")

    def launch(self, run_id: int, task_ids: list[int]) -> list[dict[str, Any]]:
        """Queue and instantiate tasks; answers the instances."""
        self.post(f"/workflow_run/{run_id}/queue", {"task_ids": task_ids})
        return self.post(f"/workflow_run/{run_id}/instantiate",
                         {"task_ids": task_ids, "executor_type": "sequential"})["task_instances"]

    def run_instance(self, ti_id: int) -> dict[str, Any]:
        self.post(f"/task_instance/{ti_id}/submitted", {"executor_id": f"job{ti_id}",
                                                         "next_report_increment": 60})
        return self.post(f"/task_instance/{ti_id}/running", {"node_name": "node1", "process_group_id": 42,
                                                             "next_report_increment": 60})

    # -- looking at rows --------------------------------------------------------------------------

    def task_statuses(self, workflow_id: int) -> dict[int, str]:
        with self.session() as s:
            rows = s.execute(select(Task.id, Task.status).where(Task.workflow_id == workflow_id))
            return {tid: status for tid, status in rows}

    def task(self, task_id: int) -> Task:
        with self.session() as s:
            task = s.get(Task, task_id)
            assert task is not None
            return task

    def instance(self, ti_id: int) -> TaskInstance:
        with self.session() as s:
            ti = s.get(TaskInstance, ti_id)
            assert ti is not None
            return ti

    def workflow_status(self, workflow_id: int) -> str:
        with self.session() as s:
            return s.execute(select(Workflow.status).where(Workflow.id == workflow_id)).scalar_one()

    def run_row(self, run_id: int) -> WorkflowRun:
        with self.session() as s:
            run = s.get(WorkflowRun, run_id)
            assert run is not None
            return run
