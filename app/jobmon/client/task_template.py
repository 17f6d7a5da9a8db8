"""Task templates: a command with named placeholders, bound on the server as a versioned template."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from jobmon.client.task import Task
from jobmon.core import routes
from jobmon.core.resources import ComputeResources, resource_scales

if TYPE_CHECKING:
    from jobmon.client.tool import Tool

# Keyword names of create_task itself: an arg with one of these names could never be passed.
RESERVED_ARG_NAMES = frozenset(
    {"name", "upstream_tasks", "max_attempts", "compute_resources", "resource_scales",
     "task_attributes"}
)


def placeholders(command_template: str) -> set[str]:
    """Names used by ``{name}``, ``{name.attr}``, ``{name[0]}`` or ``{name:fmt}`` fields."""
    names: set[str] = set()
    try:
        for _, field, _, _ in string.Formatter().parse(command_template):
            if field is None:
                continue
            root = field.split(".", 1)[0].split("[", 1)[0]
            if not root or root.isdigit():
                raise ValueError(
                    f"command template {command_template!r} has a positional field {{{field}}}; "
                    "name every placeholder after a node, task or op arg"
                )
            names.add(root)
    except ValueError as exc:
        if "positional field" in str(exc):
            raise
        raise ValueError(f"command template {command_template!r} is malformed: {exc}") from None
    return names


def _names(kind: str, values: Iterable[str]) -> list[str]:
    out = list(values)
    if isinstance(values, str):
        raise TypeError(f"{kind} must be a list of names, not the string {values!r}")
    for value in out:
        if not isinstance(value, str) or not value.isidentifier():
            raise ValueError(f"{kind}: {value!r} is not a valid argument name")
        if value in RESERVED_ARG_NAMES:
            raise ValueError(f"{kind}: {value!r} is reserved by create_task; rename the argument")
    if len(set(out)) != len(out):
        raise ValueError(f"{kind} lists a name twice: {out}")
    return out


class TemplateDefinition(NamedTuple):
    """A task template as ``Tool.get_task_template`` was asked for it. Hashable: it is also the key of the
    tool's templates, so asking twice registers once."""

    template_name: str
    command_template: str
    node_args: Sequence[str]
    task_args: Sequence[str]
    op_args: Sequence[str]
    default_compute_resources: tuple[tuple[str, Any], ...]
    default_max_attempts: int
    default_resource_scales: tuple[tuple[str, Any], ...]


class TaskTemplate:
    """Create with ``Tool.get_task_template``; make tasks with ``create_task``.

    - node args identify a task within its template: the same node args in the same template are the
      same node of the DAG;
    - task args change the task but not the DAG's shape (e.g. an input release);
    - op args are operational (e.g. a Python path): they are in the command but in no identity hash.
    """

    def __init__(self, tool: Tool, definition: TemplateDefinition) -> None:
        template_name, command_template = definition.template_name, definition.command_template
        if not template_name:
            raise ValueError("a task template needs a non-empty name")
        if not command_template.strip():
            raise ValueError(f"task template {template_name!r}: the command template is empty")
        self.tool = tool
        self.template_name = template_name
        self.command_template = command_template
        self.node_args = _names("node_args", definition.node_args)
        self.task_args = _names("task_args", definition.task_args)
        self.op_args = _names("op_args", definition.op_args)
        all_args = self.node_args + self.task_args + self.op_args
        if len(set(all_args)) != len(all_args):
            raise ValueError(
                f"task template {template_name!r}: an argument is listed in more than one of "
                "node_args, task_args and op_args"
            )
        unknown = sorted(placeholders(command_template) - set(all_args))
        if unknown:
            raise ValueError(
                f"task template {template_name!r}: the command template uses {unknown} which are not "
                "node, task or op args"
            )
        self.default_compute_resources = ComputeResources.from_mapping(
            dict(definition.default_compute_resources))
        self.default_max_attempts = _positive_int(definition.default_max_attempts, "default_max_attempts")
        self.default_resource_scales = resource_scales(dict(definition.default_resource_scales))

        requester = tool.requester
        answer = requester.post(
            routes.TASK_TEMPLATE,
            {"tool_version_id": tool.tool_version_id, "name": template_name},
        )
        self.task_template_id = int(answer["task_template_id"])
        answer = requester.post(
            routes.TASK_TEMPLATE_VERSION,
            {"task_template_id": self.task_template_id, "command_template": command_template,
             "node_args": self.node_args, "task_args": self.task_args, "op_args": self.op_args},
        )
        self.task_template_version_id = int(answer["task_template_version_id"])

    def __repr__(self) -> str:
        return (f"TaskTemplate({self.template_name!r}, "
                f"task_template_version_id={self.task_template_version_id})")

    def create_task(
        self,
        name: str | None = None,
        upstream_tasks: Iterable[Task] = (),
        max_attempts: int | None = None,
        compute_resources: Mapping[str, Any] | None = None,
        resource_scales: Mapping[str, float] | None = None,
        task_attributes: Mapping[str, Any] | None = None,
        **arg_values: Any,
    ) -> Task:
        """A task of this template; every node, task and op arg must be given as a keyword."""
        declared = self.node_args + self.task_args + self.op_args
        missing = [arg for arg in declared if arg not in arg_values]
        if missing:
            raise ValueError(
                f"task template {self.template_name!r}: missing value for argument(s) {missing}"
            )
        extra = sorted(set(arg_values) - set(declared))
        if extra:
            raise ValueError(
                f"task template {self.template_name!r}: unexpected argument(s) {extra}; "
                f"declared are {declared}"
            )
        try:
            command = self.command_template.format(**arg_values)
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(
                f"task template {self.template_name!r}: cannot format the command: {exc!r}"
            ) from None
        scales = dict(self.default_resource_scales)
        if resource_scales:
            scales.update(_scales(resource_scales))
        return Task(
            template=self,
            command=command,
            node_args={k: arg_values[k] for k in self.node_args},
            task_args={k: arg_values[k] for k in self.task_args},
            op_args={k: arg_values[k] for k in self.op_args},
            name=name,
            upstream_tasks=upstream_tasks,
            max_attempts=_positive_int(
                self.default_max_attempts if max_attempts is None else max_attempts, "max_attempts"
            ),
            compute_resources=ComputeResources.from_mapping(
                compute_resources, self.default_compute_resources
            ),
            resource_scales=scales,
            task_attributes=dict(task_attributes or {}),
        )


def _scales(values: Mapping[str, float]) -> dict[str, float]:
    # Validate the override alone (defaults are already valid).
    checked = resource_scales(values)
    return {k: checked[k] for k in values}


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value
