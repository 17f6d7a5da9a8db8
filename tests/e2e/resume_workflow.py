"""A workflow of sleeping tasks for the resume test: run as a script it binds, prints the workflow and
run ids, and runs; the test kills it mid-run and resumes the same workflow in-process via ``build``.

Each task appends one line to ``<out_dir>/<i>.txt`` when it finishes its sleep, so the test can count how
often each task ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jobmon.client import Tool, Workflow
from jobmon.client.executors import MultiprocessExecutor
from jobmon.core.config import ClientConfig

NUM_TASKS = 100
SLEEP = 0.4


def config(service_url: str) -> ClientConfig:
    return ClientConfig(service_url=service_url, heartbeat_interval=2.0, poll_interval=0.3,
                        request_retries=3)


def build(service_url: str, out_dir: Path) -> Workflow:
    cfg = config(service_url)
    tool = Tool("e2e-resume", config=cfg)
    template = tool.get_task_template(
        "sleep_and_record", "sleep {seconds} && echo ran >> {out_dir}/{i}.txt",
        node_args=["i"], task_args=["seconds"], op_args=["out_dir"],
        default_compute_resources={"memory_mb": 512, "runtime_s": 600},
    )
    workflow = Workflow(tool, "resume", {"out_dir": str(out_dir)}, config=cfg)
    workflow.add_tasks(template.create_task(i=i, seconds=SLEEP, out_dir=out_dir) for i in range(NUM_TASKS))
    return workflow


def executor() -> MultiprocessExecutor:
    return MultiprocessExecutor(4, worker_heartbeat_interval=1.0)


def main() -> int:
    service_url, out_dir = sys.argv[1], Path(sys.argv[2])
    workflow = build(service_url, out_dir)
    run_id = workflow.bind(executor_class="multiprocess")
    print(workflow.workflow_id, run_id, flush=True)
    result = workflow.run(executor())
    return 0 if result.done else 1


if __name__ == "__main__":
    sys.exit(main())
