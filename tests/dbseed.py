"""Rows for read-side tests (Query Service, Visualization, CLI), inserted with SQLAlchemy Core on the
app's read-write session factory so each test can set exactly the states, dates and usage it reads back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobmon.server.models import (
    Dag,
    Node,
    Task,
    TaskInstance,
    TaskInstanceErrorLog,
    TaskResources,
    TaskTemplate,
    TaskTemplateVersion,
    Tool,
    ToolVersion,
    Workflow,
    WorkflowRun,
)


def _hash() -> str:
    return uuid.uuid4().hex


@dataclass
class SeededWorkflow:
    workflow_id: int
    workflow_run_id: int | None
    dag_id: int
    tool_version_id: int
    task_ids: list[int] = field(default_factory=list)


class Seeder:
    """Builds workflows, tasks and instances in one database."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._ttv: tuple[int, int] | None = None

    def _template(self, session: Session) -> tuple[int, int]:
        if self._ttv is None:
            tool_id = session.execute(insert(Tool).values(name=f"tool-{_hash()}")).inserted_primary_key[0]
            tv_id = session.execute(insert(ToolVersion).values(tool_id=tool_id)).inserted_primary_key[0]
            tt_id = session.execute(
                insert(TaskTemplate).values(tool_version_id=tv_id, name="tmpl")
            ).inserted_primary_key[0]
            ttv_id = session.execute(
                insert(TaskTemplateVersion).values(
                    task_template_id=tt_id, template_hash=_hash(), command_template="echo {x}",
                    node_args='["x"]', task_args="[]", op_args="[]",
                )
            ).inserted_primary_key[0]
            self._ttv = (tv_id, ttv_id)
        return self._ttv

    def workflow(
        self,
        name: str = "wf",
        status: str = "R",
        task_statuses: list[str] | None = None,
        user: str | None = "alice",
        run_status: str = "R",
        max_concurrently_running: int = 100,
        task_names: list[str] | None = None,
        status_dates: list[datetime] | None = None,
    ) -> SeededWorkflow:
        """A workflow with one run (unless user is None) and one task per status letter given."""
        statuses = task_statuses if task_statuses is not None else ["G", "Q", "R", "D", "D"]
        with self.factory() as session, session.begin():
            tv_id, ttv_id = self._template(session)
            dag_id = session.execute(insert(Dag).values(hash=_hash())).inserted_primary_key[0]
            wf_id = session.execute(
                insert(Workflow).values(
                    tool_version_id=tv_id, dag_id=dag_id, workflow_args_hash=_hash(), task_hash=_hash(),
                    name=name, description="", status=status,
                    max_concurrently_running=max_concurrently_running,
                )
            ).inserted_primary_key[0]
            run_id = None
            if user is not None:
                run_id = session.execute(
                    insert(WorkflowRun).values(
                        workflow_id=wf_id, user=user, executor_class="SequentialExecutor",
                        jobmon_version="0.1.0", status=run_status,
                    )
                ).inserted_primary_key[0]
            task_ids: list[int] = []
            if statuses:
                hashes = [_hash() for _ in statuses]
                session.execute(
                    insert(Node),
                    [{"task_template_version_id": ttv_id, "node_args_hash": h} for h in hashes],
                )
                node_ids = {
                    h: node_id
                    for h, node_id in session.execute(
                        select(Node.node_args_hash, Node.id).where(Node.node_args_hash.in_(hashes))
                    )
                }
                rows: list[dict[str, Any]] = []
                for i, (h, st) in enumerate(zip(hashes, statuses, strict=True)):
                    row: dict[str, Any] = {
                        "workflow_id": wf_id, "node_id": node_ids[h], "task_args_hash": _hash(),
                        "name": task_names[i] if task_names else f"task-{i}",
                        "command": f"echo {i}", "status": st, "max_attempts": 3,
                        "num_attempts": 0 if st in "GQ" else 1,
                    }
                    if status_dates is not None:
                        row["status_date"] = status_dates[i]
                    rows.append(row)
                session.execute(insert(Task), rows)
                task_ids = list(
                    session.execute(
                        select(Task.id).where(Task.workflow_id == wf_id).order_by(Task.id)
                    ).scalars()
                )
        return SeededWorkflow(wf_id, run_id, dag_id, tv_id, task_ids)

    def resources(self, task_id: int, queue: str = "all.q", num_cores: int = 1, memory_mb: int = 1024,
                  runtime_s: int = 3600) -> int:
        """A validated resources row, made the task's current request."""
        with self.factory() as session, session.begin():
            res_id = session.execute(
                insert(TaskResources).values(task_id=task_id, resource_type="V", queue=queue,
                                             num_cores=num_cores, memory_mb=memory_mb, runtime_s=runtime_s)
            ).inserted_primary_key[0]
            session.execute(update(Task).where(Task.id == task_id).values(task_resources_id=res_id))
        return int(res_id)

    def instance(self, task_id: int, workflow_run_id: int, status: str = "D", **values: Any) -> int:
        with self.factory() as session, session.begin():
            ti_id = session.execute(
                insert(TaskInstance).values(
                    task_id=task_id, workflow_run_id=workflow_run_id, status=status,
                    executor_type="SequentialExecutor", **values,
                )
            ).inserted_primary_key[0]
        return int(ti_id)

    def error(self, task_instance_id: int, description: str) -> None:
        with self.factory() as session, session.begin():
            session.execute(insert(TaskInstanceErrorLog).values(task_instance_id=task_instance_id,
                                                                description=description))
