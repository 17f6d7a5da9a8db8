"""Tools and their task templates: the reusable, versioned description of commands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from jobmon.server.models.base import Base


class Tool(Base):
    __tablename__ = "tool"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_date: Mapped[datetime] = mapped_column(server_default=func.now())


class ToolVersion(Base):
    __tablename__ = "tool_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tool.id"), index=True)
    created_date: Mapped[datetime] = mapped_column(server_default=func.now())


class TaskTemplate(Base):
    __tablename__ = "task_template"
    __table_args__ = (UniqueConstraint("tool_version_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tool_version_id: Mapped[int] = mapped_column(ForeignKey("tool_version.id"))
    name: Mapped[str] = mapped_column(String(255))


class TaskTemplateVersion(Base):
    """A command template and the names of its node args (identify a node), task args (vary between
    workflows without changing the DAG) and op args (operational, e.g. interpreter path)."""

    __tablename__ = "task_template_version"
    __table_args__ = (UniqueConstraint("task_template_id", "template_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_template_id: Mapped[int] = mapped_column(ForeignKey("task_template.id"))
    # sha256 of command template and the three arg-name lists: the identity of a version.
    template_hash: Mapped[str] = mapped_column(String(64))
    command_template: Mapped[str] = mapped_column(Text)
    node_args: Mapped[str] = mapped_column(Text, doc="JSON list of names")
    task_args: Mapped[str] = mapped_column(Text, doc="JSON list of names")
    op_args: Mapped[str] = mapped_column(Text, doc="JSON list of names")
