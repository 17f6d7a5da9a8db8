#!/usr/bin/env python3
"""Figures for the appliance: converge times, image sizes, heartbeat requests/s through nginx.

    .venv-deploy/bin/python bench/appliance_converge.py            warm figures on a deployed host
    .venv-deploy/bin/python bench/appliance_converge.py --cold     first remove the appliance's containers,
                                                                   images and wheel cache, then converge
    ... --cold --wipe-data                                         also remove the database's data and
                                                                   the local secrets (a first install)

Steps: (cold only) remove containers jobmon-server and jobmon-db, images jobmon-server, jobmon-mariadb and
jobmon-base, the controller's wheel cache; converge playbooks/site.yml (timed, with per-task timings from
ansible.posix.profile_tasks); converge again (warm: timed, must report changed=0); list image sizes; run
a bounded heartbeat load against the deployed service through nginx (127.0.0.1 only).

Not a test: it prints figures. Exit status 1 when a converge fails or the warm converge changed something.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv-deploy" / "bin"
CONTAINERS = ["jobmon-server", "jobmon-server-migrate", "jobmon-db"]
IMAGE_REPOS = ["jobmon-server", "jobmon-mariadb", "jobmon-base"]
WHEEL_CACHE = Path("/var/tmp/jobmon-deploy")
DATA_DIRS = [Path("/var/lib/jobmon/db/data"), Path("/etc/jobmon/secrets")]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=False, text=True, **kwargs)


def docker(*args: str) -> subprocess.CompletedProcess:
    return run(["docker", *args], capture_output=True)


def make_cold(wipe_data: bool) -> None:
    print("cold: removing the appliance's containers, images and wheel cache", flush=True)
    for name in CONTAINERS:
        docker("rm", "--force", name)
    for repo in IMAGE_REPOS:
        ids = docker("image", "ls", "--quiet", repo).stdout.split()
        if ids:
            docker("image", "rm", "--force", *sorted(set(ids)))
    docker("image", "prune", "--force", "--filter", "label=org.jobmon.build-stage")
    shutil.rmtree(WHEEL_CACHE, ignore_errors=True)
    if wipe_data:
        for path in DATA_DIRS:
            print(f"cold: removing {path}", flush=True)
            shutil.rmtree(path, ignore_errors=True)


def converge(label: str, log_dir: Path, extra: list[str]) -> tuple[float, dict[str, int], list[str]]:
    """Run site.yml; return wall seconds, the recap counters and the slowest tasks."""
    local = VENV_BIN / "ansible-playbook"
    playbook = str(local) if local.exists() else "ansible-playbook"
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", ANSIBLE_FORCE_COLOR="0",
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="12")
    log = log_dir / f"converge-{label}.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = run([playbook, "playbooks/site.yml", *extra], cwd=ROOT, env=env, stdout=out,
                   stderr=subprocess.STDOUT)
    seconds = time.monotonic() - started
    text = log.read_text()
    recap = {}
    match = re.search(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text, re.M)
    if match:
        recap = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True))
    slow = [line.strip() for line in text.splitlines() if re.search(r" -{3,} \d+\.\d+s$", line)]
    if proc.returncode != 0:
        print(f"{label} converge FAILED (exit {proc.returncode}); log: {log}", flush=True)
        recap["failed"] = max(1, recap.get("failed", 0))
    return seconds, recap, slow


def image_sizes() -> list[tuple[str, str]]:
    out = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.Size}}").stdout
    return [tuple(line.split("\t", 1)) for line in out.splitlines()
            if line.split(":", 1)[0] in IMAGE_REPOS]  # type: ignore[misc]


# -- heartbeat load through nginx --------------------------------------------------------------------------

def _request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> dict:
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
    return json.loads(data) if data else {}


def running_workflow_run(host: str, port: int) -> int:
    """A workflow run in R made through the State Manager, to heartbeat."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    marker = f"bench-appliance-{uuid.uuid4().hex[:12]}"
    tool = _request(conn, "POST", "/api/state/tool", {"name": marker})
    dag = _request(conn, "POST", "/api/state/dag", {"dag_hash": uuid.uuid4().hex * 2})
    wf = _request(conn, "POST", "/api/state/workflow", {
        "tool_version_id": tool["tool_version_id"], "dag_id": dag["dag_id"],
        "workflow_args_hash": uuid.uuid4().hex * 2, "task_hash": uuid.uuid4().hex * 2,
        "name": marker, "description": "bench/appliance_converge.py heartbeat load",
        "workflow_args": {}, "workflow_attributes": {}, "max_concurrently_running": 1})
    run_ = _request(conn, "POST", f"/api/state/workflow/{wf['workflow_id']}/run",
                    {"user": "bench", "executor_class": "sequential", "jobmon_version": "bench"})
    run_id = run_["workflow_run_id"]
    for status in ("B", "R"):
        _request(conn, "PUT", f"/api/state/workflow_run/{run_id}/status", {"status": status})
    conn.close()
    return run_id


def heartbeat_load(url: str, threads: int, seconds: float, max_requests: int) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to load {host}: the heartbeat load only targets loopback addresses")
    run_id = running_workflow_run(host, port)
    path = f"/api/state/workflow_run/{run_id}/heartbeat"
    body = json.dumps({"next_report_increment": 90}).encode()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    budget = [max_requests]

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[float] = []
        bad = 0
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n, "errors": errors, "seconds": elapsed, "rps": n / elapsed if elapsed else 0.0,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true",
                        help="remove containers, images and wheel cache first")
    parser.add_argument("--wipe-data", action="store_true",
                        help="with --cold: also remove DB data and secrets")
    parser.add_argument("--url", default="http://127.0.0.1:8070", help="service URL through nginx (loopback)")
    parser.add_argument("--threads", type=int, default=8, help="heartbeat load: client threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="heartbeat load: at most this long")
    parser.add_argument("--max-requests", type=int, default=50_000, help="heartbeat load: at most this many")
    parser.add_argument("--no-load", action="store_true", help="skip the heartbeat load")
    parser.add_argument("--log-dir", default="/tmp/jobmon-bench", help="where the converge logs go")
    parser.add_argument("ansible_args", nargs="*", help="extra ansible-playbook arguments (after --)")
    args = parser.parse_args()

    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.cold:
        make_cold(args.wipe_data)

    first_label = "cold" if args.cold else "first"
    first_s, first_recap, first_slow = converge(first_label, log_dir, args.ansible_args)
    print(f"{first_label} converge: {first_s:.1f} s  {first_recap}", flush=True)
    for line in first_slow:
        print(f"    {line}")
    if first_recap.get("failed"):
        return 1
    warm_s, warm_recap, warm_slow = converge("warm", log_dir, args.ansible_args)
    print(f"warm converge: {warm_s:.1f} s  {warm_recap}", flush=True)
    for line in warm_slow[:5]:
        print(f"    {line}")

    print("images:")
    for name, size in image_sizes():
        print(f"    {name:40s} {size}")

    if not args.no_load:
        result = heartbeat_load(args.url, args.threads, args.seconds, args.max_requests)
        print(f"heartbeats through nginx ({args.threads} threads, keep-alive): "
              f"{result['requests']} requests in {result['seconds']:.1f} s = {result['rps']:.0f} req/s, "
              f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, errors {result['errors']}")

    ok = not warm_recap.get("failed") and warm_recap.get("changed", 1) == 0
    if not ok:
        print("warm converge was not a no-op (changed != 0) or failed", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
