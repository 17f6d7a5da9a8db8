"""The Jobmon client library: Tool -> TaskTemplate -> Task -> Workflow, bound and run on the service.

Imports only ``requests`` and the standard library, so a cluster node needs nothing else.
"""

from __future__ import annotations

from jobmon.client.errors import (
    DagCycleError,
    WorkflowAlreadyDone,
    WorkflowAlreadyRunning,
    WorkflowError,
)
from jobmon.client.swarm import WorkflowRunResult
from jobmon.client.task import Task
from jobmon.client.task_template import TaskTemplate
from jobmon.client.tool import Tool
from jobmon.client.workflow import Workflow
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.core.resources import ComputeResources

__all__ = [
    "ComputeResources",
    "DagCycleError",
    "JobmonRequestError",
    "Requester",
    "Task",
    "TaskTemplate",
    "Tool",
    "Workflow",
    "WorkflowAlreadyDone",
    "WorkflowAlreadyRunning",
    "WorkflowError",
    "WorkflowRunResult",
]
