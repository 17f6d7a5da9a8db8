"""Workflows (a DAG bound with args) and their runs (one client process driving it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from jobmon.server.models.base import Base


class Workflow(Base):
    __tablename__ = "workflow"
    # The same workflow is the same tool version, DAG, workflow args and task set.
    __table_args__ = (
        UniqueConstraint(
            "tool_version_id", "dag_id", "workflow_args_hash", "task_hash", name="uq_workflow_identity"
        ),
        Index("ix_workflow_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    tool_version_id: Mapped[int] = mapped_column(ForeignKey("tool_version.id"))
    dag_id: Mapped[int] = mapped_column(ForeignKey("dag.id"))
    workflow_args_hash: Mapped[str] = mapped_column(String(64))
    task_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    max_concurrently_running: Mapped[int] = mapped_column(default=10_000)
    status: Mapped[str] = mapped_column(String(1), default="G")
    status_date: Mapped[datetime] = mapped_column(server_default=func.now())
    created_date: Mapped[datetime] = mapped_column(server_default=func.now())


class WorkflowArg(Base):
    __tablename__ = "workflow_arg"
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WorkflowAttribute(Base):
    __tablename__ = "workflow_attribute"
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WorkflowRun(Base):
    __tablename__ = "workflow_run"
    __table_args__ = (
        Index("ix_workflow_run_workflow_id_status", "workflow_id", "status"),
        # The reaper looks for running runs whose heartbeat deadline passed.
        Index("ix_workflow_run_status_heartbeat_date", "status", "heartbeat_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"))
    user: Mapped[str] = mapped_column(String(150))
    executor_class: Mapped[str] = mapped_column(String(64))
    jobmon_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(1), default="G")
    status_date: Mapped[datetime] = mapped_column(server_default=func.now())
    created_date: Mapped[datetime] = mapped_column(server_default=func.now())
    # Deadline by which the client must heartbeat again (database clock).
    heartbeat_date: Mapped[datetime] = mapped_column(server_default=func.now())
