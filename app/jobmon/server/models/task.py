"""Tasks, their resources, and the instances that run them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from jobmon.server.models.base import Base, BigId


class Queue(Base):
    """A cluster queue and its limits: adjusted resources are capped at these."""

    __tablename__ = "queue"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    max_cores: Mapped[int]
    max_memory_mb: Mapped[int]
    max_runtime_s: Mapped[int]


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("workflow_id", "node_id"),
        Index("ix_task_workflow_id_status", "workflow_id", "status"),
        # The running client polls for tasks changed since its last look.
        Index("ix_task_workflow_id_status_date", "workflow_id", "status_date"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"))
    node_id: Mapped[int] = mapped_column(BigId, ForeignKey("node.id"))
    task_args_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    command: Mapped[str] = mapped_column(Text)
    max_attempts: Mapped[int] = mapped_column(default=3)
    num_attempts: Mapped[int] = mapped_column(default=0)
    # JSON object: resource name -> fractional increase after a resource error, e.g. {"memory": 0.5}.
    resource_scales: Mapped[str] = mapped_column(Text, default="{}")
    # The resources the next instance will request. No foreign key: task_resources points back at task,
    # and a cycle of constraints would make bulk inserts order-dependent.
    task_resources_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    status: Mapped[str] = mapped_column(String(1), default="G")
    status_date: Mapped[datetime] = mapped_column(server_default=func.now())


class TaskArg(Base):
    __tablename__ = "task_arg"
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("task.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TaskAttribute(Base):
    __tablename__ = "task_attribute"
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("task.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TaskResources(Base):
    """Requested resources. O: as the user asked; V: validated against the queue; A: adjusted after a
    resource error."""

    __tablename__ = "task_resources"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("task.id"), index=True)
    resource_type: Mapped[str] = mapped_column(String(1))
    queue: Mapped[str] = mapped_column(String(255))
    num_cores: Mapped[int]
    memory_mb: Mapped[int]
    runtime_s: Mapped[int]


class TaskInstance(Base):
    __tablename__ = "task_instance"
    __table_args__ = (
        Index("ix_task_instance_workflow_run_id_status", "workflow_run_id", "status"),
        Index("ix_task_instance_task_id", "task_id"),
        # Instances whose report-by deadline passed are found by status and date.
        Index("ix_task_instance_status_report_by_date", "status", "report_by_date"),
        Index("ix_task_instance_executor_id", "executor_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_run_id: Mapped[int] = mapped_column(ForeignKey("workflow_run.id"))
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("task.id"))
    task_resources_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("task_resources.id"), nullable=True
    )
    executor_type: Mapped[str] = mapped_column(String(64))
    executor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    process_group_id: Mapped[int | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(1), default="I")
    status_date: Mapped[datetime] = mapped_column(server_default=func.now())
    submitted_date: Mapped[datetime | None] = mapped_column(nullable=True)
    report_by_date: Mapped[datetime | None] = mapped_column(nullable=True)
    # Usage: wallclock and CPU in seconds, memory in bytes.
    wallclock: Mapped[float | None] = mapped_column(nullable=True)
    cpu: Mapped[float | None] = mapped_column(nullable=True)
    maxrss: Mapped[int | None] = mapped_column(BigId, nullable=True)
    maxpss: Mapped[int | None] = mapped_column(BigId, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(nullable=True)
    stdout: Mapped[str | None] = mapped_column(Text, nullable=True)
    stderr: Mapped[str | None] = mapped_column(Text, nullable=True)


class TaskInstanceErrorLog(Base):
    __tablename__ = "task_instance_error_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("task_instance.id"), index=True)
    error_time: Mapped[datetime] = mapped_column(server_default=func.now())
    description: Mapped[str] = mapped_column(Text)
