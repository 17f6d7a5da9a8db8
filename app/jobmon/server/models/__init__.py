"""The jobmon schema as SQLAlchemy 2 typed ORM classes. Alembic migrations create it."""

from jobmon.server.models.base import Base
from jobmon.server.models.dag import Dag, Edge, Node, NodeArg
from jobmon.server.models.task import (
    Queue,
    Task,
    TaskArg,
    TaskAttribute,
    TaskInstance,
    TaskInstanceErrorLog,
    TaskResources,
)
from jobmon.server.models.tool import TaskTemplate, TaskTemplateVersion, Tool, ToolVersion
from jobmon.server.models.workflow import Workflow, WorkflowArg, WorkflowAttribute, WorkflowRun

__all__ = [
    "Base",
    "Dag",
    "Edge",
    "Node",
    "NodeArg",
    "Queue",
    "Task",
    "TaskArg",
    "TaskAttribute",
    "TaskInstance",
    "TaskInstanceErrorLog",
    "TaskResources",
    "TaskTemplate",
    "TaskTemplateVersion",
    "Tool",
    "ToolVersion",
    "Workflow",
    "WorkflowArg",
    "WorkflowAttribute",
    "WorkflowRun",
]
