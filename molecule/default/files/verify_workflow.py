"""A small workflow run to DONE by the jobmon client against the deployed service (molecule verify).

Prints one JSON line: the workflow id, run id, final status and task counts.
"""

from __future__ import annotations

import json
import sys
import uuid

from jobmon.client import Tool, Workflow


def main(service_url: str) -> int:
    tool = Tool("molecule-verify", service_url=service_url)
    step = tool.get_task_template(
        template_name="step",
        command_template="echo {layer} {i}",
        node_args=["layer", "i"],
        default_compute_resources={"queue": "all.q", "num_cores": 1, "memory_mb": 256, "runtime_s": 300},
    )
    first = [step.create_task(layer="first", i=i) for i in range(3)]
    second = [step.create_task(layer="second", i=i, upstream_tasks=first) for i in range(6)]
    last = step.create_task(layer="last", i=0, upstream_tasks=second)
    # A fresh workflow each verify run: workflow args identify a workflow.
    workflow = Workflow(tool, name="molecule verify", workflow_args={"verify": uuid.uuid4().hex})
    workflow.add_tasks([*first, *second, last])
    result = workflow.run(executor="multiprocess", seconds_until_timeout=300)
    print(json.dumps({"workflow_id": result.workflow_id, "workflow_run_id": result.workflow_run_id,
                      "status": str(result.status), "task_counts": result.task_counts}))
    return 0 if result.done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
