"""A workflow whose tasks sleep, run by the jobmon client with 2-second heartbeats (molecule verify kills
this client with SIGKILL and watches the reaper). Prints one JSON line with the workflow and run ids once
the run is bound, then runs until killed.

The sleep outlasts the drill (about 20 s) but not by much: the workers run in sessions of their own and
outlive the killed client, as they would on a cluster node, so they must end by themselves soon after."""

from __future__ import annotations

import json
import sys
import uuid

from jobmon.client import Tool, Workflow
from jobmon.client.executors import MultiprocessExecutor
from jobmon.core.config import ClientConfig


def main(service_url: str) -> int:
    config = ClientConfig(service_url=service_url, heartbeat_interval=2.0, poll_interval=0.5,
                          request_retries=3)
    tool = Tool("molecule-reaper", config=config)
    sleeper = tool.get_task_template(
        "sleeper", "sleep {seconds}", node_args=["i"], task_args=["seconds"],
        default_compute_resources={"queue": "all.q", "num_cores": 1, "memory_mb": 128, "runtime_s": 900},
    )
    workflow = Workflow(tool, "molecule reaper", {"verify": uuid.uuid4().hex}, config=config)
    workflow.add_tasks(sleeper.create_task(i=i, seconds=60) for i in range(2))
    run_id = workflow.bind(executor_class="multiprocess")
    print(json.dumps({"workflow_id": workflow.workflow_id, "workflow_run_id": run_id}), flush=True)
    result = workflow.run(MultiprocessExecutor(2, worker_heartbeat_interval=2.0))
    return 0 if result.done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
