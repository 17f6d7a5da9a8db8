"""A workflow for a real Grid Engine: 3 layers, one task over its h_vmem, one task that always fails.

Run on a submit host (the testbed container) as an unprivileged user, with the node's jobmon:

    /opt/jobmon/venv/bin/python sge_workflow.py [--width 20] [--queue all.q] [--name NAME] [--json]

Layer 1: ``width`` "prepare" tasks. Layer 2: ``width`` "model" tasks, each after two prepare tasks; one
of them ("model 3", the hog) grows to ``--hog-mb`` MiB in one process, more than its first memory request
(``--hog-request-mb`` plus the executor's worker allowance) and less than its second (the request is
doubled after a resource error), so Grid Engine kills it over h_vmem, the executor reports it Z from
qacct, and it succeeds on its second attempt. Layer 3: ``width // 4`` "summary" tasks after a slice of
the models, plus one "broken" summary that exits 3 on each of its 2 attempts, so the workflow ends F
with every other task D. Prints the result (and, with --json, one JSON line for scripts).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from jobmon.client import Tool, Workflow
from jobmon.client.executors.sge import SGEExecutor
from jobmon.core.config import JobmonConfig

# Two processes, each growing by 16 MiB every 50 ms to half the target (touching every page), then holding
# it for a few seconds. Two, because h_vmem is also each process's address-space limit (RLIMIT_AS): one
# process would get MemoryError at the limit; the job's total is what execd kills for.
HOG = (
    "python3 -c 'import os, sys, time\n"
    "def grow(mb):\n"
    "    blocks = []\n"
    "    for _ in range(mb // 16):\n"
    "        block = bytearray(16 << 20)\n"
    "        block[::4096] = bytes(len(block) // 4096 * [1])\n"
    "        blocks.append(block)\n"
    "        time.sleep(0.05)\n"
    "    time.sleep({hold})\n"
    "for _ in range(2):\n"
    "    if os.fork() == 0:\n"
    "        grow({mb} // 2)\n"
    "        os._exit(0)\n"
    "codes = [os.wait()[1] for _ in range(2)]\n"
    "print(\"held {mb} MiB in two processes:\", codes)\n"
    "sys.exit(1 if any(codes) else 0)'"
)


def build(args: argparse.Namespace) -> Workflow:
    config = JobmonConfig.load().client
    tool = Tool("sge-testbed", config=config)
    resources = {"queue": args.queue, "num_cores": 1, "memory_mb": args.memory_mb, "runtime_s": 600}
    prepare = tool.get_task_template("prepare", "echo prepare {i} on $(hostname)", node_args=["i"],
                                     default_compute_resources=resources)
    model = tool.get_task_template("model", "{command}", node_args=["i"], op_args=["command"],
                                   default_compute_resources=resources)
    summary = tool.get_task_template("summary", "{command}", node_args=["i"], op_args=["command"],
                                     default_compute_resources=resources, default_max_attempts=2)

    first = [prepare.create_task(i=i) for i in range(args.width)]
    middle = []
    for i in range(args.width):
        ups = [first[i], first[(i + 1) % args.width]]
        if i == 3:
            middle.append(model.create_task(
                name="model_hog", i=i, command=HOG.format(mb=args.hog_mb, hold=args.hold), upstream_tasks=ups,
                compute_resources={"memory_mb": args.hog_request_mb}, resource_scales={"memory": 1.0},
                max_attempts=3))
        else:
            middle.append(model.create_task(i=i, command=f"echo model {i}; sleep 0.2", upstream_tasks=ups))
    last = []
    per = max(1, args.width // max(1, args.width // 4))
    for i in range(max(1, args.width // 4)):
        last.append(summary.create_task(i=i, command=f"echo summary {i}",
                                        upstream_tasks=middle[i * per:(i + 1) * per]))
    broken = summary.create_task(name="summary_broken", i="broken",
                                 command="echo 'this step always fails' >&2; exit 3",
                                 upstream_tasks=middle[:2])
    workflow = Workflow(tool, args.name, {"run": args.name}, max_concurrently_running=args.concurrency,
                        config=config)
    workflow.add_tasks([*first, *middle, *last, broken])
    return workflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=24,
                        help="tasks in each of the first two layers (total: 2.25 x width + 1)")
    parser.add_argument("--queue", default="all.q")
    parser.add_argument("--name", default=f"sge-testbed {time.strftime('%Y-%m-%d %H:%M:%S')}")
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--hog-request-mb", type=int, default=400)
    parser.add_argument("--hog-mb", type=int, default=704)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--reconcile-interval", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")

    workflow = build(args)
    executor = SGEExecutor(reconcile_interval=args.reconcile_interval)
    result = workflow.run(executor, seconds_until_timeout=args.timeout)
    print(result)
    tasks = {task.name: task.task_id for task in workflow.tasks.values()}
    if args.json:
        print(json.dumps({
            "workflow_id": result.workflow_id, "workflow_run_id": result.workflow_run_id,
            "status": result.status, "task_counts": result.task_counts, "elapsed": result.elapsed,
            "num_tasks": len(workflow.tasks),
            "hog_task_id": tasks["model_hog"], "broken_task_id": tasks["summary_broken"],
        }))
    return 0 if result.num_failed == 1 and result.num_done == len(workflow.tasks) - 1 else 1


if __name__ == "__main__":
    sys.exit(main())
