"""Tools, tool versions, task templates and their versions: get-or-create, safe to repeat."""

from __future__ import annotations

import json

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from jobmon.core.hashing import template_hash
from jobmon.server.context import rw_sessions
from jobmon.server.db import transaction
from jobmon.server.errors import InvalidInput
from jobmon.server.models import TaskTemplate, TaskTemplateVersion, Tool, ToolVersion
from jobmon.server.openapi import request_schema
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import (
    insert_ignore,
    latest,
    load,
    table,
    write_route,
)
from jobmon.server.state_manager.inputs import TEXT_BYTES, fits_text, id_field, text_field
from jobmon.server.validation import field, json_body, list_field

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_NAMES = {"type": "array", "items": _NAME}


@blueprint.post("/tool")
@request_schema({"type": "object", "required": ["name"], "properties": {"name": _NAME}})
@write_route
def bind_tool() -> ResponseReturnValue:
    """Get or create a tool by name, with its latest version (created if it has none)."""
    name = text_field(json_body(), "name", nonempty=True)
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
    return jsonify({"tool_id": tool_id, "tool_version_id": version_id})


@blueprint.post("/tool/<int:tool_id>/version")
@request_schema({"type": "object", "properties": {}})
@write_route
def new_tool_version(tool_id: int) -> ResponseReturnValue:
    """Create a new version of a tool."""
    json_body()  # an empty body is fine; malformed JSON still gets its 400
    with transaction(rw_sessions()) as session:
        load(session, Tool, tool_id, "tool")
        version = ToolVersion(tool_id=tool_id)
        session.add(version)
        session.flush()
        version_id = version.id
    return jsonify({"tool_version_id": version_id})


@blueprint.post("/task_template")
@request_schema({
    "type": "object",
    "required": ["tool_version_id", "name"],
    "properties": {"tool_version_id": {"type": "integer", "minimum": 1}, "name": _NAME},
})
@write_route
def bind_task_template() -> ResponseReturnValue:
    """Get or create a task template of a tool version by name."""
    body = json_body()
    tool_version_id = id_field(body, "tool_version_id")
    name = text_field(body, "name", nonempty=True)
    with transaction(rw_sessions()) as session:
        load(session, ToolVersion, tool_version_id, "tool version")
        insert_ignore(session, table(TaskTemplate), [{"tool_version_id": tool_version_id, "name": name}])
        template_id = session.execute(
            latest(select(TaskTemplate.id).where(
                TaskTemplate.tool_version_id == tool_version_id, TaskTemplate.name == name
            ))
        ).scalar_one()
    return jsonify({"task_template_id": template_id})


@blueprint.post("/task_template_version")
@request_schema({
    "type": "object",
    "required": ["task_template_id", "command_template"],
    "properties": {
        "task_template_id": {"type": "integer", "minimum": 1},
        "command_template": {"type": "string"},
        "node_args": _NAMES,
        "task_args": _NAMES,
        "op_args": _NAMES,
    },
})
@write_route
def bind_task_template_version() -> ResponseReturnValue:
    """Get or create a task template version, identified by its command template and arg names."""
    body = json_body()
    template_id = id_field(body, "task_template_id")
    command = field(body, "command_template", str)
    if not fits_text(command):
        raise InvalidInput(f"field 'command_template' is longer than {TEXT_BYTES} bytes")
    names: dict[str, list[str]] = {}
    for kind in ("node_args", "task_args", "op_args"):
        values = list_field(body, kind, str, max_items=1000, default=[])
        for value in values:
            if not 0 < len(value) <= 255:
                raise InvalidInput(f"field '{kind}' holds a name that is empty or longer than 255")
        names[kind] = sorted(set(values))
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
    return jsonify({"task_template_version_id": version_id})
