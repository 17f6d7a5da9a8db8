"""A Task: one command in a workflow, with the tasks it waits for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from jobmon.core import hashing
from jobmon.core.resources import ComputeResources

if TYPE_CHECKING:
    from jobmon.client.task_template import TaskTemplate

MAX_NAME_LENGTH = 255


def default_name(template_name: str, node_args: dict[str, str]) -> str:
    """Template name plus node args, e.g. ``summarize_location-12_year-2020``."""
    parts = [template_name] + [f"{k}-{v}" for k, v in sorted(node_args.items())]
    return "_".join(parts)


def _fit(name: str) -> str:
    # The database column holds 255 characters; keep long names distinct with a hash suffix.
    if len(name) <= MAX_NAME_LENGTH:
        return name
    suffix = hashing.sha256_hex("name", name)[:12]
    return f"{name[: MAX_NAME_LENGTH - 13]}~{suffix}"


class Task:
    """Made by ``TaskTemplate.create_task``. Identity (for the DAG and for resume) is the template
    version plus node args; two tasks with the same identity cannot be in one workflow."""

    def __init__(
        self,
        *,
        template: TaskTemplate,
        command: str,
        node_args: dict[str, Any],
        task_args: dict[str, Any],
        op_args: dict[str, Any],
        name: str | None,
        upstream_tasks: Iterable[Task],
        max_attempts: int,
        compute_resources: ComputeResources,
        resource_scales: dict[str, float],
        task_attributes: dict[str, Any],
    ) -> None:
        self.template = template
        self.command = command
        self.node_args = hashing.args_as_text(node_args)
        self.task_args = hashing.args_as_text(task_args)
        self.op_args = hashing.args_as_text(op_args)
        self.name = _fit(name or default_name(template.template_name, self.node_args))
        self.max_attempts = max_attempts
        self.compute_resources = compute_resources
        self.resource_scales = resource_scales
        self.task_attributes = hashing.args_as_text(task_attributes)
        self.node_args_hash = hashing.node_args_hash(self.node_args)
        self.task_args_hash = hashing.task_args_hash(self.task_args)
        self.node_hash = hashing.node_hash(template.task_template_version_id, self.node_args_hash)
        self.upstream_tasks: set[Task] = set()
        self.downstream_tasks: set[Task] = set()
        # Filled in by Workflow.bind.
        self.node_id: int | None = None
        self.task_id: int | None = None
        self.status: str | None = None
        for task in upstream_tasks:
            self.add_upstream(task)

    def __repr__(self) -> str:
        return f"Task({self.name!r}, task_id={self.task_id}, status={self.status})"

    def add_upstream(self, task: Task) -> None:
        """This task runs only after ``task`` is done."""
        if not isinstance(task, Task):
            raise TypeError(f"upstream of {self.name!r} must be a Task, got {type(task).__name__}")
        if task is self:
            raise ValueError(f"task {self.name!r} cannot depend on itself")
        self.upstream_tasks.add(task)
        task.downstream_tasks.add(self)

    def add_upstreams(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self.add_upstream(task)

    def add_downstream(self, task: Task) -> None:
        """``task`` runs only after this one is done."""
        task.add_upstream(self)
