"""Registers every State Manager route on the blueprint; each module holds one concern."""

from jobmon.server.state_manager import (  # noqa: F401  (imported for their route registrations)
    binding,
    launching,
    operator,
    reaping,
    task_instances,
    tools,
    workflows,
)
