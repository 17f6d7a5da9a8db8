#!/usr/bin/env python3
"""Grid Engine throughput: trivial tasks through the testbed's qsub, per submit mode of the executor.

Three figures for each of the executor's submit modes (``array``, ``parallel``, ``serial``):

1. executor submit rate: ``--submit-tasks`` task instances handed to ``SGEExecutor.prepare_submit`` and
   ``submit`` at once, as the client's launch step does, in tasks/s (the jobs are submitted on hold and
   deleted right after, so nothing runs and no server is involved);
2. wall time of a workflow of ``--tasks`` independent trivial tasks (``date``), from ``Workflow.run`` to
   its result, through the appliance's service;
3. delay from qsub to the task running, per task (the command prints the time it starts; the executor's
   submit time is recorded just before its qsub): median, p90 and max.

Runs in the testbed container as its unprivileged user (needs qsub and the node's jobmon). From the
docker host it copies itself there and runs itself with docker exec:

    .venv/bin/python bench/sge_throughput.py                       # container jobmon-sge, user jobmon
    .venv/bin/python bench/sge_throughput.py --modes array --tasks 50 --submit-tasks 50    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SELF = Path(__file__).resolve()


def on_host(args: argparse.Namespace, argv: list[str]) -> int:
    """Copy this script into the container and run it there as the user."""
    target = f"/home/{args.user}/sge_throughput.py"
    subprocess.run(["docker", "cp", str(SELF), f"{args.container}:{target}"], check=True)
    subprocess.run(["docker", "exec", args.container, "chown", args.user, target], check=True)
    return subprocess.run(["docker", "exec", "-u", args.user, "-w", f"/home/{args.user}", args.container,
                           args.python, target, "--inside", *argv]).returncode


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def submit_rate(mode: str, n: int, log_dir: Path) -> dict[str, Any]:
    from jobmon.client.executors import TaskInstanceSpec
    from jobmon.client.executors.sge import SGEExecutor

    executor = SGEExecutor(submit_mode=mode, log_dir=str(log_dir), extra_qsub_args=("-h",))
    executor.configure("http://127.0.0.1:8070")
    executor.start()
    specs = [TaskInstanceSpec(task_instance_id=900_000 + i, task_id=900_000 + i, name=f"rate_{i}",
                              command="true", queue="all.q", num_cores=1, memory_mb=100, runtime_s=60)
             for i in range(n)]
    start = time.perf_counter()
    executor.prepare_submit(specs)
    ids = [executor.submit(spec) for spec in specs]
    elapsed = time.perf_counter() - start
    qsubs = len({i.split(".")[0] for i in ids if i})
    executor.terminate([i for i in ids if i])
    return {"mode": mode, "tasks": n, "seconds": round(elapsed, 3), "tasks_per_s": round(n / elapsed, 1),
            "qsub_calls": qsubs, "failed": sum(1 for i in ids if i is None)}


def workflow_wall(mode: str, n: int, log_dir: Path, concurrency: int, slots: int) -> dict[str, Any]:
    from jobmon.client import Tool, Workflow
    from jobmon.client.executors.sge import SGEExecutor
    from jobmon.core.config import JobmonConfig

    submitted: dict[int, float] = {}   # task instance -> time just before its qsub
    by_job: dict[str, float] = {}      # executor id -> that time

    class Timed(SGEExecutor):
        def prepare_submit(self, instances):  # type: ignore[no-untyped-def]
            now = time.time()
            for spec in instances:
                submitted.setdefault(spec.task_instance_id, now)
            super().prepare_submit(instances)

        def submit(self, instance):  # type: ignore[no-untyped-def]
            submitted.setdefault(instance.task_instance_id, time.time())
            executor_id = super().submit(instance)
            if executor_id:
                by_job[executor_id] = submitted[instance.task_instance_id]
            return executor_id

    config = JobmonConfig.load().client
    tool = Tool("sge-throughput", config=config)
    template = tool.get_task_template(
        "trivial", 'echo "jobmon-start=$(date +%s.%N) $JOB_ID.$SGE_TASK_ID"',
        node_args=["i"], task_args=["run"],
        default_compute_resources={"queue": "all.q", "num_cores": 1, "memory_mb": 100, "runtime_s": 300})
    stamp = f"{mode}-{time.time():.0f}"
    workflow = Workflow(tool, f"throughput {stamp}", {"run": stamp}, max_concurrently_running=concurrency,
                        config=config)
    workflow.add_tasks([template.create_task(i=i, run=stamp) for i in range(n)])
    run_logs = log_dir / stamp
    executor = Timed(submit_mode=mode, log_dir=str(run_logs), reconcile_interval=5)
    start = time.perf_counter()
    result = workflow.run(executor, seconds_until_timeout=1800)
    wall = time.perf_counter() - start

    # Each job's stdout: the command printed "jobmon-start=<epoch> <job>.<array task or undefined>".
    delays: list[tuple[float, float]] = []   # (start, delay)
    starts: list[float] = []
    for path in run_logs.rglob("*.o*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("jobmon-start="):
                when, _, job = line.split("=", 1)[1].partition(" ")
                job = job.removesuffix(".undefined")
                starts.append(float(when))
                if job in by_job:
                    delays.append((float(when), float(when) - by_job[job]))
    first = min(submitted.values()) if submitted else 0.0
    # The first wave (as many tasks as the queue has slots) found a free slot: its delay is Grid
    # Engine's dispatch latency; later tasks also waited for a slot.
    wave = [d for _, d in sorted(delays)[:slots]]
    all_delays = [d for _, d in delays]
    return {
        "mode": mode, "tasks": n, "status": result.status, "task_counts": result.task_counts,
        "wall_s": round(wall, 1), "tasks_per_s": round(n / wall, 2),
        "first_submit_to_last_start_s": round(max(starts) - first, 1) if starts else None,
        "first_wave_qsub_to_start_median_s": round(statistics.median(wave), 2) if wave else None,
        "first_wave_qsub_to_start_max_s": round(max(wave), 2) if wave else None,
        "qsub_to_start_median_s": round(statistics.median(all_delays), 2) if all_delays else None,
        "qsub_to_start_p90_s": round(pct(all_delays, 0.9), 2) if all_delays else None,
        "qsub_to_start_max_s": round(max(all_delays), 2) if all_delays else None,
    }


def inside(args: argparse.Namespace) -> int:
    log_dir = Path(os.path.expanduser("~/.jobmon/sge-bench"))
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    results: dict[str, Any] = {"submit_rate": [], "workflow": []}
    for mode in args.modes:
        for _ in range(args.repeat):
            row = submit_rate(mode, args.submit_tasks, log_dir / "rate")
            results["submit_rate"].append(row)
            print(json.dumps({"submit_rate": row}), flush=True)
            time.sleep(2)  # let qdel settle
    for mode in args.modes:
        row = workflow_wall(mode, args.tasks, log_dir, args.concurrency, args.slots)
        results["workflow"].append(row)
        print(json.dumps({"workflow": row}), flush=True)
    print("\nsubmit rate (tasks/s):")
    for row in results["submit_rate"]:
        print(f"  {row['mode']:<9} {row['tasks']} tasks in {row['seconds']:7.3f} s = "
              f"{row['tasks_per_s']:7.1f}/s ({row['qsub_calls']} qsub calls, {row['failed']} failed)")
    print(f"\nworkflow of {args.tasks} trivial tasks:")
    for row in results["workflow"]:
        print(f"  {row['mode']:<9} {row['status']} {row['task_counts']} wall {row['wall_s']} s "
              f"({row['tasks_per_s']} tasks/s); qsub->start: first wave median "
              f"{row['first_wave_qsub_to_start_median_s']} s "
              f"(max {row['first_wave_qsub_to_start_max_s']} s), "
              f"all tasks median {row['qsub_to_start_median_s']} s, p90 {row['qsub_to_start_p90_s']} s, "
              f"max {row['qsub_to_start_max_s']} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", default="jobmon-sge")
    parser.add_argument("--user", default="jobmon")
    parser.add_argument("--python", default="/opt/jobmon/venv/bin/python")
    parser.add_argument("--modes", nargs="+", default=["array", "parallel", "serial"],
                        choices=["array", "parallel", "serial"])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--submit-tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2, help="submit-rate repetitions per mode")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=8, help="the queue's slots (the first wave's size)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        return inside(args)
    return on_host(args, [a for a in argv if a != "--inside"])


if __name__ == "__main__":
    sys.exit(main())
