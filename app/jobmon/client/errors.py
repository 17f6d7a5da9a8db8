"""Errors the client library raises for workflow authors (besides JobmonRequestError for HTTP)."""

from __future__ import annotations


class WorkflowError(Exception):
    """A workflow cannot be bound or run as asked."""


class DagCycleError(WorkflowError, ValueError):
    """The tasks' dependencies form a cycle; ``cycle`` lists task names along it."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("the workflow's dependencies form a cycle: " + " -> ".join(cycle))


class WorkflowAlreadyRunning(WorkflowError):
    """Another run of this workflow is active; pass ``resume=True`` to take it over."""


class WorkflowAlreadyDone(WorkflowError):
    """Every task of this workflow is done already; change ``workflow_args`` to run it again."""
