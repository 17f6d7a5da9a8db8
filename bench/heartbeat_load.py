#!/usr/bin/env python3
"""Heartbeat load: requests/s and latency of ``POST /api/state/task_instance/<id>/heartbeat``.

Starts a private MariaDB and uWSGI serving the three services on it (the test harness's launchers, as
``bind_benchmark.py`` does), creates a workflow run and ``--instances`` task instances through the API
(bind with the client library, run -> R, queue, instantiate, ``submitted`` and ``running`` for each), then
hammers the heartbeat route from ``--procs`` load processes, each holding ``--conns`` keep-alive
``http.client`` connections (one thread per connection, one request in flight per connection).

Bounded: a warm-up of ``--warmup`` seconds (not counted), then ``--duration`` seconds or
``--max-requests`` requests in all, whichever comes first; 127.0.0.1 only.

Closed loop by default (each connection sends its next request when the answer came: the server's
throughput at that concurrency). ``--rate R`` paces the whole load at R requests/s instead (open loop;
latency is counted from each request's scheduled time, so a stalled server is not hidden).

A fraction ``--run-fraction`` of the requests are ``POST /api/state/workflow_run/<id>/heartbeat`` of the
one run (a client's heartbeat; they all hit one row).

The load generator shares the machine's CPUs with uWSGI and MariaDB; its CPU seconds are printed beside
theirs so the split is visible.

    .venv/bin/python bench/heartbeat_load.py                       # 8 procs x 1 conn, 15 s
    .venv/bin/python bench/heartbeat_load.py --procs 4 --conns 4   # 16 sessions
    .venv/bin/python bench/heartbeat_load.py --rate 1000           # latency at a fixed 1,000 req/s
    .venv/bin/python bench/heartbeat_load.py --quick               # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
import uuid
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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

TARGET_RPS = 1_000
TARGET_P99_MS = 50.0
TARGET_RSS_MIB = 400


# -- setup through the API ----------------------------------------------------------------------------

def make_instances(st: Stack, count: int) -> tuple[int, list[int]]:
    """A workflow run in R with ``count`` task instances in R (each reported submitted and running)."""
    from jobmon.client import Tool, Workflow

    tool = Tool(f"bench-heartbeat-{uuid.uuid4().hex[:8]}", config=st.client_config())
    template = tool.get_task_template("sleep", "sleep {i}", node_args=["i"],
                                      default_compute_resources={"queue": "all.q"})
    workflow = Workflow(tool, "heartbeat bench", workflow_args={"nonce": uuid.uuid4().hex})
    workflow.add_tasks(template.create_task(i=i) for i in range(count))
    run_id = workflow.bind()
    req = tool.requester
    req.put(f"/api/state/workflow_run/{run_id}/status", {"status": "R"})
    task_ids = [t.task_id for t in workflow.tasks.values()]
    ti_ids: list[int] = []
    for start in range(0, len(task_ids), 5000):
        chunk = task_ids[start:start + 5000]
        req.post(f"/api/state/workflow_run/{run_id}/queue", {"task_ids": chunk})
        answer = req.post(f"/api/state/workflow_run/{run_id}/instantiate",
                          {"task_ids": chunk, "executor_type": "bench"})
        ti_ids += [int(ti["task_instance_id"]) for ti in answer["task_instances"]]
    for ti in ti_ids:
        req.post(f"/api/state/task_instance/{ti}/submitted",
                 {"executor_id": f"bench-{ti}", "next_report_increment": 600})
        answer = req.post(f"/api/state/task_instance/{ti}/running",
                          {"node_name": "bench", "next_report_increment": 600})
        if answer["status"] != "R" or answer["kill_self"]:
            raise RuntimeError(f"task instance {ti} did not start running: {answer}")
    return run_id, ti_ids


# -- the load generator ---------------------------------------------------------------------------------

def _connection_loop(host: str, port: int, paths: list[str], body: bytes, run_path: str,
                     run_every: int, warm_until: float, stop_at: float, budget: list[int],
                     lock: threading.Lock, interval: float | None, phase: float,
                     out: dict[str, Any]) -> None:
    """One keep-alive connection: POST heartbeats round-robin over ``paths`` until ``stop_at`` or the
    shared ``budget`` is spent."""
    lat = array("f")
    done_at = array("f")  # seconds after the window opened, per measured request
    errors = 0
    samples: list[str] = []
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Content-Length": str(len(body))}
    i = 0
    counted = 0
    next_at = warm_until + phase if interval else 0.0
    while True:
        now = time.perf_counter()
        if now >= stop_at:
            break
        measuring = now >= warm_until
        if measuring:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
        if interval and measuring:
            if next_at > now:
                time.sleep(next_at - now)
            sched = next_at
            next_at += interval
        else:
            sched = time.perf_counter()
        path = run_path if run_every and i % run_every == run_every - 1 else paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        ok = False
        try:
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            ok = resp.status == 200
            if not ok and len(samples) < 5:
                samples.append(f"{resp.status} {path}: {data[:200]!r}")
        except (OSError, http.client.HTTPException) as exc:
            if len(samples) < 5:
                samples.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
        t1 = time.perf_counter()
        if measuring:
            counted += 1
            lat.append((t1 - (sched if interval else t0)) * 1000.0)
            done_at.append(t1 - warm_until)
        if not ok and (measuring or t1 >= warm_until):
            errors += 1  # a failure that ends inside the measured window counts, whenever it began
    conn.close()
    out["lat"] = lat
    out["done_at"] = done_at
    out["errors"] = errors
    out["samples"] = samples
    out["count"] = counted


def _load_process(url: str, conns: int, ti_ids: list[int], run_id: int, run_every: int,
                  warm_until_wall: float, duration: float, budget: int, rate_per_conn: float | None,
                  proc_index: int, nprocs: int, result_q: Any) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps({"next_report_increment": 90}).encode()
    # Each process walks its own slice of the instances (different rows, as real workers are).
    mine = ti_ids[proc_index::nprocs] or ti_ids
    # Wall clock -> this process's perf_counter.
    warm_until = time.perf_counter() + (warm_until_wall - time.time())
    stop_at = warm_until + duration
    lock = threading.Lock()
    shared_budget = [budget]
    outs: list[dict[str, Any]] = [{} for _ in range(conns)]
    interval = 1.0 / rate_per_conn if rate_per_conn else None
    threads = []
    for c in range(conns):
        paths = [f"/api/state/task_instance/{ti}/heartbeat" for ti in mine[c::conns] or mine]
        phase = (interval or 0.0) * (proc_index * conns + c) / (nprocs * conns)
        t = threading.Thread(target=_connection_loop, args=(
            host, port, paths, body, f"/api/state/workflow_run/{run_id}/heartbeat", run_every,
            warm_until, stop_at, shared_budget, lock, interval, phase, outs[c]), daemon=True)
        threads.append(t)
    cpu0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 120)
    lat = array("f")
    done_at = array("f")
    for o in outs:
        lat.extend(o.get("lat", array("f")))
        done_at.extend(o.get("done_at", array("f")))
    result_q.put({
        "lat": lat.tobytes(), "done_at": done_at.tobytes(), "errors": sum(o.get("errors", 0) for o in outs),
        "idle_conns": sum(1 for o in outs if not o.get("count")),
        "count": sum(o.get("count", 0) for o in outs),
        "samples": [s for o in outs for s in o.get("samples", [])][:5],
        "cpu": time.process_time() - cpu0,
    })


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def run_load(st: Stack, run_id: int, ti_ids: list[int], procs: int, conns: int, duration: float,
             warmup: float, max_requests: int, rate: float | None, run_fraction: float,
             profile: Path | None = None, profile_cpu: bool = False) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    result_q = ctx.Queue()
    warm_until_wall = time.time() + 1.0 + warmup  # 1 s for the processes to start and connect
    run_every = round(1 / run_fraction) if run_fraction > 0 else 0
    per_proc_budget = max(1, max_requests // procs)
    rate_per_conn = rate / (procs * conns) if rate else None
    workers = [ctx.Process(target=_load_process, args=(
        st.url, conns, ti_ids, run_id, run_every, warm_until_wall, duration, per_proc_budget,
        rate_per_conn, i, procs, result_q), daemon=True) for i in range(procs)]
    with contextlib.ExitStack() as es:
        if profile is not None:
            es.enter_context(py_spy(st.master_pid, profile, idle=not profile_cpu))
        for w in workers:
            w.start()
        # Measure the server over the measured window only.
        time.sleep(max(0.0, warm_until_wall - time.time()))
        mon = es.enter_context(st.monitor())
        t_start = time.perf_counter()
        results = [result_q.get(timeout=duration + warmup + 180) for _ in workers]
        elapsed = time.perf_counter() - t_start
    for w in workers:
        w.join(timeout=30)
    lat: list[float] = []
    per_second: dict[int, list[float]] = {}
    for r in results:
        a, d = array("f"), array("f")
        a.frombytes(r["lat"])
        d.frombytes(r["done_at"])
        lat.extend(a)
        for ms, at in zip(a, d, strict=True):
            per_second.setdefault(int(at), []).append(ms)
    lat.sort()
    # The worst second of the window: a stall shows here even when the overall p99 hides it.
    worst = max(per_second.items(), key=lambda kv: max(kv[1]), default=(0, [0.0]))
    count = sum(r["count"] for r in results)
    # The measured window ends when the last request finished (duration, or earlier if the budget ran out).
    window = min(duration, elapsed)
    out = {
        "procs": procs, "conns": conns, "sessions": procs * conns, "rate": rate,
        "requests": count, "errors": sum(r["errors"] for r in results),
        "idle_conns": sum(r["idle_conns"] for r in results),
        "seconds": window, "rps": count / window if window else 0.0,
        "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
        "max": lat[-1] if lat else float("nan"),
        "mean": statistics.fmean(lat) if lat else float("nan"),
        "timeline": {sec: (len(v), max(v)) for sec, v in sorted(per_second.items())},
        "worst_second": worst[0], "worst_second_max": max(worst[1]),
        "samples": [s for r in results for s in r["samples"]][:5],
        "cpu_server": mon.server.cpu, "cpu_mariadb": mon.mariadb.cpu,
        "cpu_load": sum(r["cpu"] for r in results), "cpu_nginx": mon.nginx.cpu,
        "cpu_others": mon.others(sum(r["cpu"] for r in results)), "cpu_window": mon.wall,
        "loadavg": os.getloadavg()[0],
        "rss_sum_mib": mon.server.hwm_sum / MIB, "rss_max_mib": mon.server.hwm_max / MIB,
        "rss_seen_mib": mon.server.peak_rss_total / MIB, "server_procs": len(mon.server.hwm),
        "pss_end_mib": mon.server_pss_now() / MIB,
        "uwsgi": st.shape(),
    }
    return out


def _print(r: dict[str, Any]) -> None:
    ok = r["rps"] >= TARGET_RPS and r["p99"] < TARGET_P99_MS and r["errors"] == 0 \
        and r["rss_sum_mib"] < TARGET_RSS_MIB
    mode = f"paced at {r['rate']:.0f} req/s" if r["rate"] else "closed loop"
    print(f"[{'ok ' if ok else 'MISS'}] {r['sessions']} sessions ({r['procs']} procs x {r['conns']} conns, "
          f"{mode}): {r['requests']} requests in {r['seconds']:.1f} s = {r['rps']:.0f} req/s; latency ms "
          f"p50 {r['p50']:.1f}  p95 {r['p95']:.1f}  p99 {r['p99']:.1f}  max {r['max']:.1f}; "
          f"errors {r['errors']}", flush=True)
    if r["idle_conns"]:
        print(f"       WARNING: {r['idle_conns']} of {r['sessions']} sessions completed no request in "
              "the window (starved)", flush=True)
    print(f"       server RSS sum {r['rss_sum_mib']:.0f} MiB (max proc {r['rss_max_mib']:.0f}, seen "
          f"{r['rss_seen_mib']:.0f}, {r['server_procs']} procs; PSS after {r['pss_end_mib']:.0f}); "
          "CPU s in window: uWSGI "
          f"{r['cpu_server']:.1f}  mariadbd {r['cpu_mariadb']:.1f}  nginx {r['cpu_nginx']:.1f}  "
          f"load generator {r['cpu_load']:.1f}  other processes {r['cpu_others']:.1f} "
          f"(of {r['cpu_window'] * (os.cpu_count() or 1):.0f} CPU-s; load average {r['loadavg']:.1f})",
          flush=True)
    tl = r["timeline"]
    if tl:
        print("       per second (requests/max ms): " + "  ".join(
            f"{sec}:{n}/{mx:.0f}" for sec, (n, mx) in tl.items()), flush=True)
    if r["requests"]:
        per = {k: 1000 * r[f"cpu_{k}"] / r["requests"] for k in ("server", "mariadb", "nginx", "load")}
        ceiling = (os.cpu_count() or 1) * 1000 / sum(per.values())
        print(f"       CPU ms per request: uWSGI {per['server']:.2f}  mariadbd {per['mariadb']:.2f}  "
              f"nginx {per['nginx']:.2f}  load generator {per['load']:.2f}  -> at most {ceiling:.0f} req/s "
              f"if all {os.cpu_count()} CPUs did nothing else", flush=True)
    for s in r["samples"]:
        print(f"       error: {s}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=2000, help="task instances to heartbeat (default 2000)")
    ap.add_argument("--procs", type=int, default=8, help="load processes (default 8)")
    ap.add_argument("--conns", type=int, default=1,
                    help="keep-alive connections (threads) per load process (default 1)")
    ap.add_argument("--duration", type=float, default=15.0, help="measured seconds (default 15)")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="unmeasured warm-up seconds (default 5: the first seconds after uWSGI starts "
                         "show one-off stalls of up to a second)")
    ap.add_argument("--max-requests", type=int, default=200_000,
                    help="at most this many measured requests in all (default 200000)")
    ap.add_argument("--rate", type=float, default=None, help="pace the load at this many req/s in all")
    ap.add_argument("--run-fraction", type=float, default=0.01,
                    help="share of requests that are workflow-run heartbeats (default 0.01)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 instances, 4 procs, 3 s")
    add_stack_arguments(ap)
    ap.add_argument("--sweep", default="",
                    help="uWSGI shapes to compare on one database, e.g. '2x4,4x2,4x1,2x1' "
                         "(processes x threads); each gets a fresh uWSGI and the same load")
    ap.add_argument("--profile", metavar="FILE",
                    help="sample the uWSGI workers with py-spy during the load (collapsed stacks to FILE)")
    ap.add_argument("--profile-cpu", action="store_true",
                    help="with --profile: on-CPU samples only (default: wall time, including threads "
                         "blocked on MariaDB or on the GIL)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = ap.parse_args(argv)
    if args.quick:
        args.instances, args.procs, args.duration, args.warmup = 200, 4, 3.0, 1.0
    for name in ("instances", "procs", "conns"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    if args.duration <= 0 or args.duration > 600:
        ap.error("--duration must be in (0, 600] seconds")

    shapes: list[tuple[int | None, int | None]] = [(args.processes, args.threads)]
    if args.sweep:
        shapes = [(int(p), int(t)) for p, t in (s.lower().split("x") for s in args.sweep.split(","))]

    print(f"heartbeat load on {os.cpu_count()} CPUs; jobmon {code_version()}", flush=True)
    rows = []
    args.processes, args.threads = shapes[0]
    with stack_from_args(args) as st:
        t0 = time.perf_counter()
        run_id, ti_ids = make_instances(st, args.instances)
        print(f"setup: workflow run {run_id} in R with {len(ti_ids)} task instances in R "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        for k, (processes, threads) in enumerate(shapes):
            if k > 0:
                from _stack import uwsgi_options

                st.uwsgi_opts = uwsgi_options(processes, threads, args.request_logging,
                                              args.uwsgi_extra.split())
                st.restart_server()
            print(st.describe(), flush=True)
            slots = (processes or 2) * (threads or 4)
            if args.front == "direct" and args.procs * args.conns > slots:
                print(f"  note: {args.procs * args.conns} keep-alive sessions > {slots} uWSGI threads: with "
                      "--http11-socket a thread serves one kept-alive connection until it closes, so the "
                      "extra sessions wait; use --front nginx (production's shape) for this", flush=True)
            r = run_load(st, run_id, ti_ids, args.procs, args.conns, args.duration, args.warmup,
                         args.max_requests, args.rate, args.run_fraction,
                         Path(args.profile) if args.profile and k == 0 else None, args.profile_cpu)
            _print(r)
            rows.append(r)
        # The heartbeats really landed: the instance's deadline is DB now + 90 s.
        from jobmon.client import Requester

        with Requester(st.url) as req:
            ti = req.get(f"/api/query/task_instance/{ti_ids[0]}")
            now = req.get("/api/query/time")["time"]
        print(f"check: instance {ti_ids[0]} status {ti['status']}, report_by_date {ti['report_by_date']} "
              f"(DB now {now})", flush=True)

    if args.profile:
        print(summarize_profile(Path(args.profile)), flush=True)
    print("\n| uWSGI shape | sessions | mode | req/s | p50 ms | p95 ms | p99 ms | errors | server RSS MiB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        mode = f"{r['rate']:.0f}/s" if r["rate"] else "closed"
        print(f"| {r['uwsgi']} | {r['sessions']} | {mode} | {r['rps']:.0f} | "
              f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['errors']} | "
              f"{r['rss_sum_mib']:.0f} / {r['rss_max_mib']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
