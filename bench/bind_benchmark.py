#!/usr/bin/env python3
"""Bind benchmark: how fast the real client binds large workflows through uWSGI onto MariaDB.

Starts a private MariaDB (tests/harness/mariadb.py) and uWSGI serving the three services on it
(tests/harness/uwsgi.py, production's shape), then for each case builds a workflow with the client library
(``Tool`` / ``TaskTemplate`` / ``Workflow``) and times ``workflow.bind()`` alone (nothing is run):

  indep-N   N independent tasks (``--sizes``, default 10,000 and 100,000)
  dag3-n    a 3-tier DAG: n tier-1 tasks; 3n tier-2 tasks, each depending on one tier-1 task; n tier-3
            tasks, each depending on three tier-2 tasks (5n tasks, 6n edges; ``--dag-n``, default 10,000)

Each case gets a new tool (so every node and task is new to the database) and, unless ``--reuse-server``,
a freshly started uWSGI so its peak RSS is that case's. The database is shared by all cases (it grows as a
production one does).

Printed per case: tasks, edges, bind seconds, tasks/s; the client-side time per route; CPU seconds used
by the uWSGI workers, mariadbd and this client during the bind; and the server's memory:
  rss_sum   sum of VmHWM (each process's own peak) over the uWSGI master and workers: an upper bound
  rss_max   the largest single process's VmHWM
  rss_seen  the largest simultaneous sum of VmRSS sampled every 0.2 s

    .venv/bin/python bench/bind_benchmark.py                 # 10k, 100k, dag3 n=10k
    .venv/bin/python bench/bind_benchmark.py --quick         # smoke run: 1k, 5k, dag3 n=500
    .venv/bin/python bench/bind_benchmark.py --sizes 100000 --dag-n 0 --processes 4 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import (
    MIB,
    Stack,
    add_stack_arguments,
    code_version,
    py_spy,
    stack_from_args,
    summarize_profile,
)
from jobmon.client import Task, Tool, Workflow

TARGET_TASKS_PER_S = 5_000
TARGET_RSS_MIB = 400

_ROUTE_PATTERNS = [
    (re.compile(r"/api/state/dag/\d+/edges$"), "edges"),
    (re.compile(r"/api/state/workflow/\d+/tasks$"), "tasks"),
    (re.compile(r"/api/state/workflow/\d+/run$"), "run"),
    (re.compile(r"/api/state/workflow_run/\d+/status$"), "run_status"),
    (re.compile(r"/api/state/nodes$"), "nodes"),
    (re.compile(r"/api/state/dag$"), "dag"),
    (re.compile(r"/api/state/workflow$"), "workflow"),
]


def _route(path: str) -> str:
    for pattern, name in _ROUTE_PATTERNS:
        if pattern.search(path):
            return name
    return path


class RouteTimer:
    """Wraps a Requester's ``request`` to add up wall time and calls per route."""

    def __init__(self, requester: Any) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        inner: Callable[..., Any] = requester.request

        def timed(method: str, path: str, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(method, path, **kwargs)
            finally:
                name = _route(path)
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        requester.request = timed

    def summary(self) -> str:
        order = ["nodes", "dag", "edges", "workflow", "run", "tasks", "run_status"]
        names = [n for n in order if n in self.calls] + [n for n in self.calls if n not in order]
        return "  ".join(f"{n} {self.seconds[n]:.2f}s/{self.calls[n]}" for n in names)


# -- workflows ------------------------------------------------------------------------------------------

RESOURCES = {"queue": "all.q", "num_cores": 1, "memory_mb": 2048, "runtime_s": 3600}


def independent(tool: Tool, n: int) -> list[Task]:
    template = tool.get_task_template(
        "model", "{python} model.py --location {location} --release {release}",
        node_args=["location"], task_args=["release"], op_args=["python"],
        default_compute_resources=RESOURCES,
    )
    return [template.create_task(location=i, release=7, python="/opt/py/bin/python") for i in range(n)]


def three_tier(tool: Tool, n: int) -> list[Task]:
    """n -> 3n -> n: each tier-2 task depends on one tier-1 task (each tier-1 task fans out to three),
    each tier-3 task on three tier-2 tasks (fan-in of three)."""
    prep = tool.get_task_template(
        "prep", "{python} prep.py --location {location} --release {release}",
        node_args=["location"], task_args=["release"], op_args=["python"],
        default_compute_resources=RESOURCES,
    )
    model = tool.get_task_template(
        "model", "{python} model.py --location {location} --sex {sex} --release {release}",
        node_args=["location", "sex"], task_args=["release"], op_args=["python"],
        default_compute_resources=RESOURCES,
    )
    summary = tool.get_task_template(
        "summary", "{python} summarize.py --location {location} --release {release}",
        node_args=["location"], task_args=["release"], op_args=["python"],
        default_compute_resources={**RESOURCES, "memory_mb": 8192},
    )
    py = "/opt/py/bin/python"
    tier1 = [prep.create_task(location=i, release=7, python=py) for i in range(n)]
    tier2 = [model.create_task(location=j // 3, sex=j % 3, release=7, python=py,
                               upstream_tasks=[tier1[j // 3]]) for j in range(3 * n)]
    tier3 = [summary.create_task(location=k, release=7, python=py,
                                 upstream_tasks=tier2[3 * k:3 * k + 3]) for k in range(n)]
    return tier1 + tier2 + tier3


# -- one case -------------------------------------------------------------------------------------------

def run_case(st: Stack, label: str, build: Callable[[Tool], list[Task]], chunk_size: int,
             fresh_server: bool, profile_dir: Path | None = None,
             profile_cpu: bool = False) -> dict[str, Any]:
    if fresh_server:
        st.restart_server()
    config = st.client_config(bind_chunk_size=chunk_size, request_timeout=600.0)
    tool = Tool(f"bench-{label}-{uuid.uuid4().hex[:8]}", config=config)
    t0 = time.perf_counter()
    tasks = build(tool)
    build_s = time.perf_counter() - t0
    workflow = Workflow(tool, f"bench {label}", workflow_args={"case": label, "nonce": uuid.uuid4().hex})
    workflow.add_tasks(tasks)
    edges = sum(len(t.upstream_tasks) for t in tasks)
    timer = RouteTimer(tool.requester)
    with contextlib.ExitStack() as stack_:
        if profile_dir is not None:
            prof = stack_.enter_context(py_spy(st.master_pid, profile_dir / f"{label}.txt",
                                                  idle=not profile_cpu))
        mon = stack_.enter_context(st.monitor())
        cpu0 = time.process_time()
        start = time.perf_counter()
        run_id = workflow.bind()
        seconds = time.perf_counter() - start
        client_cpu = time.process_time() - cpu0
    assert all(t.task_id is not None for t in tasks), "bind left a task without an id"
    assert len({t.task_id for t in tasks}) == len(tasks)
    row = {
        "case": label, "tasks": len(tasks), "edges": edges, "seconds": seconds,
        "tasks_per_s": len(tasks) / seconds, "build_s": build_s,
        "workflow_id": workflow.workflow_id, "workflow_run_id": run_id,
        "routes": timer.summary(),
        "cpu_server": mon.server.cpu, "cpu_mariadb": mon.mariadb.cpu, "cpu_client": client_cpu,
        "cpu_nginx": mon.nginx.cpu, "shape": st.shape(),
        "cpu_others": mon.others(client_cpu), "loadavg": os.getloadavg()[0],
        "rss_sum_mib": mon.server.hwm_sum / MIB, "rss_max_mib": mon.server.hwm_max / MIB,
        "rss_seen_mib": mon.server.peak_rss_total / MIB, "pss_end_mib": mon.server_pss_now() / MIB,
        "server_procs": len(mon.server.hwm),
        "mariadb_hwm_mib": mon.mariadb.hwm_max / MIB,
    }
    _print_row(row)
    if profile_dir is not None:
        print(summarize_profile(prof), flush=True)
    return row


def _print_row(r: dict[str, Any]) -> None:
    ok = "ok " if r["tasks_per_s"] >= TARGET_TASKS_PER_S and r["rss_sum_mib"] < TARGET_RSS_MIB else "MISS"
    print(f"[{ok}] {r['case']:<12} tasks {r['tasks']:>7}  edges {r['edges']:>7}  bind {r['seconds']:7.2f} s  "
          f"{r['tasks_per_s']:8.0f} tasks/s  server RSS sum {r['rss_sum_mib']:.0f} MiB "
          f"(max proc {r['rss_max_mib']:.0f}, seen {r['rss_seen_mib']:.0f}, {r['server_procs']} procs; "
          f"PSS after {r['pss_end_mib']:.0f})",
          flush=True)
    print(f"       routes (client wall s/calls): {r['routes']}", flush=True)
    print(f"       CPU s during bind: uWSGI {r['cpu_server']:.1f}  mariadbd {r['cpu_mariadb']:.1f}  "
          f"nginx {r['cpu_nginx']:.1f}  client {r['cpu_client']:.1f}   "
          f"other processes {r['cpu_others']:.1f} (load average {r['loadavg']:.1f}); per 1,000 tasks: "
          f"uWSGI {1000 * r['cpu_server'] / r['tasks']:.2f} s, "
          f"mariadbd {1000 * r['cpu_mariadb'] / r['tasks']:.2f} s\n"
          f"       (task objects built in {r['build_s']:.1f} s, not timed; "
          f"mariadbd VmHWM {r['mariadb_hwm_mib']:.0f} MiB)", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000",
                    help="comma list of independent-task workflow sizes (default 10000,100000; '' for none)")
    ap.add_argument("--dag-n", type=int, default=10_000,
                    help="n of the 3-tier DAG n, 3n, n (default 10000; 0 skips it)")
    ap.add_argument("--chunk-size", type=int, default=None,
                    help="client bind_chunk_size (default: the client's, "
                         "ClientConfig.bind_chunk_size)")
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 1000,5000 and dag n=500")
    add_stack_arguments(ap)
    ap.add_argument("--reuse-server", action="store_true",
                    help="one uWSGI for every case (RSS then accumulates over the cases)")
    ap.add_argument("--profile", metavar="DIR",
                    help="sample the uWSGI workers with py-spy during each bind; collapsed stacks and a "
                         "summary go to DIR/<case>.txt (needs: .venv/bin/pip install py-spy)")
    ap.add_argument("--profile-cpu", action="store_true",
                    help="with --profile: on-CPU samples only (default: wall time, including threads "
                         "blocked on MariaDB or on the GIL)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    args = ap.parse_args(argv)

    from jobmon.core.config import ClientConfig

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    dag_n = args.dag_n
    if args.quick:
        sizes, dag_n = [1000, 5000], 500
    chunk = args.chunk_size or ClientConfig().bind_chunk_size
    cases: list[tuple[str, Callable[[Tool], list[Task]]]] = [
        (f"indep-{n}", functools.partial(independent, n=n)) for n in sizes
    ]
    if dag_n > 0:
        cases.append((f"dag3-{dag_n}", functools.partial(three_tier, n=dag_n)))

    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    print(f"bind benchmark on {os.cpu_count()} CPUs, client bind_chunk_size {chunk}; jobmon {code_version()}",
          flush=True)
    rows = []
    with stack_from_args(args) as st:
        print(st.describe(), flush=True)
        for i, (label, build) in enumerate(cases):
            rows.append(run_case(st, label, build, chunk, fresh_server=not args.reuse_server and i > 0,
                                 profile_dir=profile_dir, profile_cpu=args.profile_cpu))

    print("\n| case | tasks | edges | bind s | tasks/s | server RSS MiB (sum VmHWM / max proc) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['case']} | {r['tasks']} | {r['edges']} | {r['seconds']:.2f} | {r['tasks_per_s']:.0f} | "
              f"{r['rss_sum_mib']:.0f} / {r['rss_max_mib']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    missed = [r["case"] for r in rows
              if r["tasks_per_s"] < TARGET_TASKS_PER_S or r["rss_sum_mib"] >= TARGET_RSS_MIB]
    print(f"targets: >= {TARGET_TASKS_PER_S} tasks/s and server RSS < {TARGET_RSS_MIB} MiB: "
          + (f"missed by {', '.join(missed)}" if missed else "met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
