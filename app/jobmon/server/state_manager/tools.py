"""Tools, tool versions, task templates and their versions: get-or-create, safe to repeat."""

from __future__ import annotations

import json
from typing import Annotated

from msgspec import Meta, Struct
from sqlalchemy import func, select

from jobmon.core.hashing import template_hash
from jobmon.server.context import rw_sessions
from jobmon.server.db import transaction
from jobmon.server.models import TaskTemplate, TaskTemplateVersion, Tool, ToolVersion
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import (
    insert_ignore,
    latest,
    load,
    table,
    write_route,
)
from jobmon.server.state_manager.inputs import Empty, Id, NonEmptyName, Text, check_text
from jobmon.server.validation import accepts


class ToolBody(Struct):
    name: NonEmptyName


class ToolAnswer(Struct):
    tool_id: int
    tool_version_id: int


class ToolVersionAnswer(Struct):
    tool_version_id: int


@blueprint.post("/tool")
@accepts(ToolBody, answers=ToolAnswer)
@write_route
def bind_tool(body: ToolBody) -> ToolAnswer:
    """Get or create a tool by name, with its latest version (created if it has none)."""
    name = body.name
    with transaction(rw_sessions()) as session:
        insert_ignore(session, table(Tool), [{"name": name}])
        tool_id = session.execute(latest(select(Tool.id).where(Tool.name == name))).scalar_one()
        version_id = session.execute(
            latest(select(func.max(ToolVersion.id)).where(ToolVersion.tool_id == tool_id))
        ).scalar_one_or_none()
        if version_id is None:
            version = ToolVersion(tool_id=tool_id)
            session.add(version)
            session.flush()
            version_id = version.id
    return ToolAnswer(tool_id, version_id)


@blueprint.post("/tool/<int:tool_id>/version")
@accepts(Empty, answers=ToolVersionAnswer)
@write_route
def new_tool_version(_: Empty, tool_id: int) -> ToolVersionAnswer:
    """Create a new version of a tool."""
    with transaction(rw_sessions()) as session:
        load(session, Tool, tool_id, "tool")
        version = ToolVersion(tool_id=tool_id)
        session.add(version)
        session.flush()
        version_id = version.id
    return ToolVersionAnswer(version_id)


class TaskTemplateBody(Struct):
    tool_version_id: Id
    name: NonEmptyName


class TaskTemplateAnswer(Struct):
    task_template_id: int


@blueprint.post("/task_template")
@accepts(TaskTemplateBody, answers=TaskTemplateAnswer)
@write_route
def bind_task_template(body: TaskTemplateBody) -> TaskTemplateAnswer:
    """Get or create a task template of a tool version by name."""
    tool_version_id, name = body.tool_version_id, body.name
    with transaction(rw_sessions()) as session:
        load(session, ToolVersion, tool_version_id, "tool version")
        insert_ignore(session, table(TaskTemplate), [{"tool_version_id": tool_version_id, "name": name}])
        template_id = session.execute(
            latest(select(TaskTemplate.id).where(
                TaskTemplate.tool_version_id == tool_version_id, TaskTemplate.name == name
            ))
        ).scalar_one()
    return TaskTemplateAnswer(template_id)


ArgNames = Annotated[list[NonEmptyName], Meta(max_length=1000)]


class TaskTemplateVersionBody(Struct):
    task_template_id: Id
    command_template: Text
    node_args: ArgNames = []
    task_args: ArgNames = []
    op_args: ArgNames = []

    def __post_init__(self) -> None:
        check_text(self.command_template, "command_template")


class TaskTemplateVersionAnswer(Struct):
    task_template_version_id: int


@blueprint.post("/task_template_version")
@accepts(TaskTemplateVersionBody, answers=TaskTemplateVersionAnswer)
@write_route
def bind_task_template_version(body: TaskTemplateVersionBody) -> TaskTemplateVersionAnswer:
    """Get or create a task template version, identified by its command template and arg names."""
    template_id, command = body.task_template_id, body.command_template
    names = {kind: sorted(set(getattr(body, kind))) for kind in ("node_args", "task_args", "op_args")}
    digest = template_hash(command, names["node_args"], names["task_args"], names["op_args"])
    with transaction(rw_sessions()) as session:
        load(session, TaskTemplate, template_id, "task template")
        insert_ignore(
            session,
            table(TaskTemplateVersion),
            [{
                "task_template_id": template_id,
                "template_hash": digest,
                "command_template": command,
                "node_args": json.dumps(names["node_args"]),
                "task_args": json.dumps(names["task_args"]),
                "op_args": json.dumps(names["op_args"]),
            }],
        )
        version_id = session.execute(
            latest(select(TaskTemplateVersion.id).where(
                TaskTemplateVersion.task_template_id == template_id,
                TaskTemplateVersion.template_hash == digest,
            ))
        ).scalar_one()
    return TaskTemplateVersionAnswer(version_id)
