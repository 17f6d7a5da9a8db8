#!/usr/bin/env python3
"""Bind and heartbeat figures of a base revision and of this checkout, measured in one run, interleaved.

Makes a git worktree of ``--base`` (a temporary, detached checkout, removed at the end), then starts two
stacks side by side (``_stack.py``: a private MariaDB and uWSGI each), one serving the base revision's
``app/`` and one serving this checkout's. The load comes from this checkout's benchmark code and client
library for both, so only the server differs. Each round measures both, in ABBA order (base, new, new,
base, ...), so that drifting load from other work on the machine falls on both alike:

  bind       ``bind_benchmark.run_case``: ``workflow.bind()`` of ``--bind-tasks`` independent tasks
  heartbeat  ``heartbeat_load.run_load``: a closed loop of task-instance heartbeats for ``--hb-duration`` s

Printed per measurement: the figure, uWSGI's CPU and the CPU other processes took meanwhile, and the load
average; at the end the median of each figure per revision and the ratio new/base. Costs (seconds, CPU
per request) should stay <= 1.05 x base; throughput (req/s) >= base / 1.05.

    .venv/bin/python bench/compare_revisions.py                    # base 9c8295f, 6 rounds
    .venv/bin/python bench/compare_revisions.py --base main --rounds 4 --bind-tasks 20000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bind_benchmark
import heartbeat_load
from _stack import ROOT, Stack, code_version, stack

LIMIT = 1.05
# name, how to read it from a row, whether more is better
FIGURES: list[tuple[str, str, Callable[[dict[str, Any]], float], bool]] = [
    ("bind", "bind s", lambda r: r["seconds"], False),
    ("bind", "bind uWSGI CPU s", lambda r: r["cpu_server"], False),
    ("heartbeat", "heartbeat req/s", lambda r: r["rps"], True),
    ("heartbeat", "heartbeat uWSGI CPU ms/req", lambda r: 1000 * r["cpu_server"] / max(1, r["requests"]),
     False),
    ("heartbeat", "heartbeat p99 ms", lambda r: r["p99"], False),
]


@dataclass
class Side:
    label: str
    commit: str
    stack: Stack
    run_id: int = 0
    instances: list[int] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"bind": [], "heartbeat": []})


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="jobmon-base-"))
    path = parent / "checkout"
    git("worktree", "add", "--detach", str(path), rev)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))
        parent.rmdir()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def quietly(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The benchmark functions print a report per case; here only the figures below are wanted."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def measure_bind(side: Side, tasks: int) -> dict[str, Any]:
    label = f"{side.label}-{uuid.uuid4().hex[:6]}"
    row = quietly(bind_benchmark.run_case, side.stack, label,
                  lambda tool: bind_benchmark.independent(tool, tasks), 2000, False)
    print(f"  {side.label:<4} bind {tasks} tasks: {row['seconds']:6.2f} s  uWSGI {row['cpu_server']:5.2f} "
          f"CPU-s  mariadbd {row['cpu_mariadb']:5.2f}  other processes {row['cpu_others']:5.1f} CPU-s  "
          f"load {row['loadavg']:.2f}", flush=True)
    return row


def measure_heartbeat(side: Side, duration: float, warmup: float, procs: int) -> dict[str, Any]:
    row = quietly(heartbeat_load.run_load, side.stack, side.run_id, side.instances, procs, 1, duration,
                  warmup, 10**9, None, 0.01)
    per_req = 1000 * row["cpu_server"] / max(1, row["requests"])
    print(f"  {side.label:<4} heartbeat: {row['rps']:7.0f} req/s  p50 {row['p50']:5.1f} ms  p99 "
          f"{row['p99']:6.1f} ms  errors {row['errors']}  uWSGI {per_req:.2f} CPU-ms/req  other processes "
          f"{row['cpu_others']:5.1f} of {row['cpu_window'] * (os.cpu_count() or 1):.0f} CPU-s  "
          f"load {row['loadavg']:.2f}", flush=True)
    if row["errors"]:
        raise SystemExit(f"{side.label}: heartbeat errors: {row['samples']}")
    return row


def summarize(base: Side, new: Side) -> list[dict[str, Any]]:
    """Medians per side, and the median of each round's ratio: a round's two measurements are adjacent in
    time, so their ratio is the figure least moved by other work (the verdict uses it)."""
    print(f"\n| figure (median of {len(base.rows['bind']) or len(base.rows['heartbeat'])} rounds) "
          f"| base {base.commit} | new {new.commit} | new/base of medians | median of round ratios "
          f"| within {LIMIT:.2f} |")
    print("|---|---:|---:|---:|---:|---|")
    out = []
    for kind, name, read, more_is_better in FIGURES:
        if not base.rows[kind]:
            continue
        b = statistics.median(read(r) for r in base.rows[kind])
        n = statistics.median(read(r) for r in new.rows[kind])
        paired = statistics.median(read(rn) / read(rb) for rb, rn in zip(base.rows[kind], new.rows[kind],
                                                                          strict=True))
        cost = 1 / paired if more_is_better else paired
        verdict = "yes" if cost <= LIMIT else "NO"
        if name.endswith("p99 ms"):
            verdict = "(latency tail, informative)"
        print(f"| {name} | {b:.2f} | {n:.2f} | {n / b:.3f} | {paired:.3f} | {verdict} |")
        out.append({"figure": name, "base": b, "new": n, "ratio_of_medians": n / b, "ratio": paired,
                    "cost_ratio": cost})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="9c8295f", help="git revision to compare with (default 9c8295f)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds; each measures both sides (default 6)")
    ap.add_argument("--bind-tasks", type=int, default=10_000, help="tasks per bind (default 10000; 0: skip)")
    ap.add_argument("--hb-duration", type=float, default=10.0, help="heartbeat seconds measured (default 10)")
    ap.add_argument("--hb-warmup", type=float, default=3.0, help="heartbeat warm-up seconds (default 3)")
    ap.add_argument("--hb-instances", type=int, default=1000,
                    help="task instances heartbeating (default 1000)")
    ap.add_argument("--hb-procs", type=int, default=8, help="heartbeat load processes (default 8)")
    ap.add_argument("--json", metavar="FILE", help="also write every row and the summary as JSON to FILE")
    args = ap.parse_args(argv)
    if args.rounds < 1 or not 0 < args.hb_duration <= 600:
        ap.error("--rounds must be >= 1 and --hb-duration in (0, 600]")

    base_commit = git("rev-parse", "--short", args.base)
    print(f"base {args.base} = {base_commit}; new = this checkout, {code_version()}", flush=True)
    print(f"machine: {os.cpu_count()} CPUs; {uptime()}", flush=True)
    with contextlib.ExitStack() as es:
        checkout = es.enter_context(worktree(args.base))
        base = Side("base", base_commit, es.enter_context(stack(app_dir=checkout / "app")))
        new = Side("new", "HEAD" + ("+changes" if git("status", "--porcelain", "--", "app") else ""),
                   es.enter_context(stack(app_dir=ROOT / "app")))
        if args.hb_duration and args.hb_instances:
            for side in (base, new):
                t0 = time.perf_counter()
                side.run_id, side.instances = heartbeat_load.make_instances(side.stack, args.hb_instances)
                print(f"{side.label}: {len(side.instances)} instances running "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for r in range(args.rounds):
            order = (base, new) if r % 2 == 0 else (new, base)
            print(f"round {r + 1}/{args.rounds} ({' then '.join(s.label for s in order)}); {uptime()}",
                  flush=True)
            if args.bind_tasks:
                for side in order:
                    side.rows["bind"].append(measure_bind(side, args.bind_tasks))
            if args.hb_duration and args.hb_instances:
                for side in order:
                    side.rows["heartbeat"].append(
                        measure_heartbeat(side, args.hb_duration, args.hb_warmup, args.hb_procs))
        summary = summarize(base, new)
    print(f"machine after: {uptime()}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"base": base.rows, "new": new.rows, "summary": summary},
                                              indent=2, default=str))
    return 0 if all(s["cost_ratio"] <= LIMIT for s in summary if not s["figure"].endswith("p99 ms")) else 1


if __name__ == "__main__":
    sys.exit(main())
