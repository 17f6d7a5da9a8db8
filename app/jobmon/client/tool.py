"""A Tool: the project a workflow belongs to, and the owner of its versioned task templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jobmon.client.task_template import TaskTemplate, TemplateDefinition
from jobmon.core import routes
from jobmon.core.config import ClientConfig, JobmonConfig
from jobmon.core.requester import Requester


class Tool:
    """``Tool("my_pipeline")`` finds or creates the tool and its latest version on the server.

    The service comes from ``requester``, else ``service_url``, else the client configuration
    (``JOBMON_CLIENT_SERVICE_URL`` or the config file).
    """

    def __init__(
        self,
        name: str,
        *,
        requester: Requester | None = None,
        service_url: str | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a tool needs a non-empty name")
        self.name = name
        self.config = config or JobmonConfig.load().client
        self.requester = requester or Requester.from_config(self.config, service_url)
        answer = self.requester.post(routes.TOOL, {"name": name})
        self.tool_id = int(answer["tool_id"])
        self.tool_version_id = int(answer["tool_version_id"])
        self._templates: dict[TemplateDefinition, TaskTemplate] = {}

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, tool_version_id={self.tool_version_id})"

    def new_version(self) -> int:
        """Start a new tool version; templates fetched afterwards belong to it."""
        answer = self.requester.post(routes.tool_version(self.tool_id), {})
        self.tool_version_id = int(answer["tool_version_id"])
        self._templates.clear()
        return self.tool_version_id

    def get_task_template(
        self,
        template_name: str,
        command_template: str,
        node_args: Sequence[str] = (),
        task_args: Sequence[str] = (),
        op_args: Sequence[str] = (),
        default_compute_resources: Mapping[str, Any] | None = None,
        default_max_attempts: int = 3,
        default_resource_scales: Mapping[str, float] | None = None,
    ) -> TaskTemplate:
        """The task template ``template_name`` of this tool version with this command template and arg
        names (a new template version is registered when any of them changed)."""
        definition = TemplateDefinition(
            template_name, command_template, _frozen(node_args), _frozen(task_args), _frozen(op_args),
            tuple(sorted((default_compute_resources or {}).items())), default_max_attempts,
            tuple(sorted((default_resource_scales or {}).items())),
        )
        template = self._templates.get(definition)
        if template is None:
            template = self._templates[definition] = TaskTemplate(self, definition)
        return template


def _frozen(names: Sequence[str]) -> Sequence[str]:
    # Hashable; a string stays a string, for TaskTemplate to refuse (it is not a list of names).
    return names if isinstance(names, str) else tuple(names)
