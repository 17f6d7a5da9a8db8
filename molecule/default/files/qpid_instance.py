"""A finished task instance of a Grid Engine job, made through the service the way the client, the
Grid Engine executor and the worker report one (molecule verify, before the Grid Engine tier exists): a
one-task workflow bound by the client, its instance submitted as job <job number>, run and done with no
usage, so its max RSS can only come from qpid. Prints one JSON line: workflow, run, instance, job."""

from __future__ import annotations

import json
import random
import sys
import uuid

from jobmon.client import Tool, Workflow
from jobmon.core.config import ClientConfig


def main(service_url: str) -> int:
    config = ClientConfig(service_url=service_url, request_retries=3)
    tool = Tool("molecule-qpid", config=config)
    step = tool.get_task_template("step", "true {i}", node_args=["i"],
                                  default_compute_resources={"queue": "all.q", "memory_mb": 128})
    workflow = Workflow(tool, "molecule qpid", {"verify": uuid.uuid4().hex}, config=config)
    task = step.create_task(i=0)
    workflow.add_tasks([task])
    run_id = workflow.bind(executor_class="sge")
    req = workflow.requester
    req.put(f"/api/state/workflow_run/{run_id}/status", {"status": "R"})
    req.post(f"/api/state/workflow_run/{run_id}/queue", {"task_ids": [task.task_id]})
    (inst,) = req.post(f"/api/state/workflow_run/{run_id}/instantiate",
                       {"task_ids": [task.task_id], "executor_type": "sge"})["task_instances"]
    ti = inst["task_instance_id"]
    job = random.randint(900_000_000, 999_999_999)
    req.post(f"/api/state/task_instance/{ti}/submitted", {"executor_id": str(job), "next_report_increment": 60})
    req.post(f"/api/state/task_instance/{ti}/running", {"next_report_increment": 60})
    req.post(f"/api/state/task_instance/{ti}/done", {})
    req.put(f"/api/state/workflow_run/{run_id}/status", {"status": "D"})
    print(json.dumps({"workflow_id": workflow.workflow_id, "workflow_run_id": run_id,
                      "task_instance_id": ti, "job_number": job}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
