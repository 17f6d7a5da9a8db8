"""The HTTP paths of the three services, for the processes that call them.

One place for every path a client, worker, reaper, executor or CLI asks, so a route moves in one edit and
a typo is a NameError rather than a 404. The server mounts its blueprints under the same prefixes.
"""

from __future__ import annotations

STATE = "/api/state"  # State Manager: every write
QUERY = "/api/query"  # Query Service: reads for client, worker and reaper
VIZ = "/api/viz"  # Visualization server: JSON summaries for the CLI
PREFIXES = {"state": STATE, "query": QUERY, "viz": VIZ}

# --- State Manager: binding --------------------------------------------------------------------------
TOOL = f"{STATE}/tool"
TASK_TEMPLATE = f"{STATE}/task_template"
TASK_TEMPLATE_VERSION = f"{STATE}/task_template_version"
NODES = f"{STATE}/nodes"
DAG = f"{STATE}/dag"
WORKFLOW = f"{STATE}/workflow"


def tool_version(tool_id: int) -> str:
    return f"{STATE}/tool/{tool_id}/version"


def dag_edges(dag_id: int) -> str:
    return f"{STATE}/dag/{dag_id}/edges"


def workflow_tasks(workflow_id: int) -> str:
    return f"{STATE}/workflow/{workflow_id}/tasks"


def new_workflow_run(workflow_id: int) -> str:
    return f"{STATE}/workflow/{workflow_id}/run"


# --- State Manager: running --------------------------------------------------------------------------
def workflow_run_status(run_id: int) -> str:
    return f"{STATE}/workflow_run/{run_id}/status"


def workflow_run_heartbeat(run_id: int) -> str:
    return f"{STATE}/workflow_run/{run_id}/heartbeat"


def queue_tasks(run_id: int) -> str:
    return f"{STATE}/workflow_run/{run_id}/queue"


def instantiate_tasks(run_id: int) -> str:
    return f"{STATE}/workflow_run/{run_id}/instantiate"


def task_instance_report(task_instance_id: int, event: str) -> str:
    """``event``: submitted, no_executor_id, running, heartbeat, done or error."""
    return f"{STATE}/task_instance/{task_instance_id}/{event}"


def reaper_move(kind: str) -> str:
    """``kind``: lost_runs, stuck_runs, resumed_runs or overdue_instances."""
    return f"{STATE}/reaper/{kind}"


# --- State Manager: operator commands -----------------------------------------------------------------
def workflow_reset(workflow_id: int) -> str:
    return f"{STATE}/workflow/{workflow_id}/reset"


def set_task_statuses(workflow_id: int) -> str:
    return f"{STATE}/workflow/{workflow_id}/task_statuses"


def max_concurrently_running(workflow_id: int) -> str:
    return f"{STATE}/workflow/{workflow_id}/max_concurrently_running"


# --- Query Service ------------------------------------------------------------------------------------
VERSION = f"{QUERY}/version"


def workflow_concurrency(workflow_id: int) -> str:
    return f"{QUERY}/workflow/{workflow_id}/concurrency"


def task_statuses(workflow_id: int) -> str:
    return f"{QUERY}/workflow/{workflow_id}/task_statuses"


def workflow_run(run_id: int) -> str:
    return f"{QUERY}/workflow_run/{run_id}"


def overdue_instances(run_id: int) -> str:
    return f"{QUERY}/workflow_run/{run_id}/overdue_instances"


def task_instance(task_instance_id: int) -> str:
    return f"{QUERY}/task_instance/{task_instance_id}"


def reaper_candidates(kind: str) -> str:
    """``kind``: lost_runs, stuck_runs, resumed_runs or overdue_instances."""
    return f"{QUERY}/reaper/{kind}"


# --- Visualization server -----------------------------------------------------------------------------
VIZ_WORKFLOWS = f"{VIZ}/workflows"


def viz_workflow_tasks(workflow_id: int) -> str:
    return f"{VIZ}/workflow/{workflow_id}/tasks"


def viz_task(task_id: int) -> str:
    return f"{VIZ}/task/{task_id}"
