"""Bulk rows for the reaper and qpid benchmarks, written straight into a migrated Jobmon database with
executemany (the shapes the routes would have written, at a fraction of the time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, text

from jobmon.server.models import (
    Dag,
    Node,
    Task,
    TaskInstance,
    TaskTemplate,
    TaskTemplateVersion,
    Tool,
    ToolVersion,
    Workflow,
    WorkflowRun,
)

BATCH = 5000


def _now(engine: Engine) -> datetime:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT UTC_TIMESTAMP(6)")).scalar_one()
    return value  # type: ignore[no-any-return]


def _many(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(model), rows[start:start + BATCH])


def seed(engine: Engine, *, workflows: int, lost: int = 0, tasks: int = 0, instance_status: str = "R",
         executor_type: str = "sge", first_job: int = 1, finished: bool = False) -> dict[str, Any]:
    """``workflows`` workflows each with one run in R whose heartbeat deadline is 10 minutes ahead, except
    the first ``lost`` (deadline an hour ago); ``tasks`` tasks spread over them, each with one instance
    (status ``instance_status``, executor id = job number, report-by an hour ahead)."""
    now = _now(engine)
    with engine.begin() as conn:
        tool = conn.execute(insert(Tool).values(name=f"bench-{now.timestamp()}")).inserted_primary_key[0]
        tv = conn.execute(insert(ToolVersion).values(tool_id=tool)).inserted_primary_key[0]
        tt = conn.execute(insert(TaskTemplate).values(tool_version_id=tv, name="t")).inserted_primary_key[0]
        ttv = conn.execute(insert(TaskTemplateVersion).values(
            task_template_id=tt, template_hash=f"{tool:x}", command_template="true", node_args="[]",
            task_args="[]", op_args="[]")).inserted_primary_key[0]
        dag = conn.execute(insert(Dag).values(hash=f"bench{now.timestamp()}")).inserted_primary_key[0]
    _many(engine, Workflow, [
        {"tool_version_id": tv, "dag_id": dag, "workflow_args_hash": f"{i:x}", "task_hash": "0",
         "name": f"bench {i}", "description": "", "max_concurrently_running": 10_000, "status": "R",
         "status_date": now, "created_date": now} for i in range(workflows)])
    with engine.connect() as conn:
        wf_ids = list(conn.execute(select(Workflow.id).where(Workflow.dag_id == dag).order_by(Workflow.id))
                      .scalars())
    _many(engine, WorkflowRun, [
        {"workflow_id": wf, "user": "bench", "executor_class": "sge", "jobmon_version": "bench",
         "status": "R", "status_date": now, "created_date": now,
         "heartbeat_date": now - timedelta(hours=1) if i < lost else now + timedelta(minutes=10)}
        for i, wf in enumerate(wf_ids)])
    with engine.connect() as conn:
        run_ids = list(conn.execute(select(WorkflowRun.id).where(WorkflowRun.workflow_id.in_(
            select(Workflow.id).where(Workflow.dag_id == dag))).order_by(WorkflowRun.id)).scalars())
    if tasks:
        _many(engine, Node, [{"task_template_version_id": ttv, "node_args_hash": f"{i:x}"}
                             for i in range(tasks)])
        with engine.connect() as conn:
            node_ids = list(conn.execute(select(Node.id).where(Node.task_template_version_id == ttv)
                                         .order_by(Node.id)).scalars())
        _many(engine, Task, [
            {"workflow_id": wf_ids[i % len(wf_ids)], "node_id": node, "task_args_hash": "0", "name": f"t{i}",
             "command": "true", "max_attempts": 3, "num_attempts": 1, "resource_scales": "{}",
             "status": "D" if finished else "R", "status_date": now} for i, node in enumerate(node_ids)])
        with engine.connect() as conn:
            task_rows = conn.execute(select(Task.id, Task.workflow_id).where(Task.node_id.in_(
                select(Node.id).where(Node.task_template_version_id == ttv))).order_by(Task.id)).all()
        run_of = dict(zip(wf_ids, run_ids, strict=True))
        _many(engine, TaskInstance, [
            {"workflow_run_id": run_of[wf], "task_id": task_id, "executor_type": executor_type,
             "executor_id": str(first_job + i), "status": instance_status, "status_date": now,
             "report_by_date": now + timedelta(hours=1)} for i, (task_id, wf) in enumerate(task_rows)])
    return {"workflow_ids": wf_ids, "run_ids": run_ids}
