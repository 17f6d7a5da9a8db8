"""Nodes and DAGs: the shape of a workflow, shared by every workflow with the same structure."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from jobmon.server.models.base import Base, BigId


class Node(Base):
    __tablename__ = "node"
    __table_args__ = (UniqueConstraint("task_template_version_id", "node_args_hash"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_template_version_id: Mapped[int] = mapped_column(ForeignKey("task_template_version.id"))
    node_args_hash: Mapped[str] = mapped_column(String(64))


class NodeArg(Base):
    __tablename__ = "node_arg"
    node_id: Mapped[int] = mapped_column(BigId, ForeignKey("node.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Dag(Base):
    __tablename__ = "dag"
    id: Mapped[int] = mapped_column(primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_date: Mapped[datetime] = mapped_column(server_default=func.now())


class Edge(Base):
    """One upstream -> downstream dependency inside a DAG."""

    __tablename__ = "edge"
    dag_id: Mapped[int] = mapped_column(ForeignKey("dag.id"), primary_key=True)
    downstream_node_id: Mapped[int] = mapped_column(BigId, ForeignKey("node.id"), primary_key=True)
    upstream_node_id: Mapped[int] = mapped_column(BigId, ForeignKey("node.id"), primary_key=True)
