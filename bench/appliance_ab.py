#!/usr/bin/env python3
"""Heartbeats through nginx on the deployed appliance, with two jobmon-server images in turn.

    .venv-deploy/bin/python bench/appliance_ab.py --base jobmon-server:OLDTAG [--rounds 3]

Measures what users run (`make deploy`: nginx, uWSGI, the MariaDB container with durable commits) for a
change's cost: the running jobmon-server container is stopped and a container of the same configuration
(its mounts, command, host network, user) is started from the base image, then from the deployed image,
in ABBA order, each measured with appliance_converge's bounded heartbeat load after its health route
answers. The deployed container is started again at the end, whatever happened. Both images must read
the same configuration and database schema. Not a test: it prints figures and the ratio new/base.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from appliance_converge import docker, heartbeat_load

CONTAINER = "jobmon-server"
TRIAL = "jobmon-server-ab"


def start_trial(image: str, spec: dict, url: str) -> None:
    docker("rm", "-f", TRIAL)
    mounts = [f"{m['Source']}:{m['Destination']}:{'rw' if m['RW'] else 'ro'}" for m in spec["Mounts"]]
    cmd = ["docker", "run", "-d", "--name", TRIAL, "--network", "host"]
    for mount in mounts:
        cmd += ["-v", mount]
    if spec["Config"]["User"]:
        cmd += ["--user", spec["Config"]["User"]]
    subprocess.run([*cmd, image, *spec["Config"]["Cmd"]], check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/state/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{image}: health route did not answer in 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True,
                        help="the image to compare against, e.g. jobmon-server:OLDTAG")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="http://127.0.0.1:8070")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    spec = json.loads(docker("inspect", CONTAINER).stdout)[0]
    new = spec["Config"]["Image"]
    rps: dict[str, list[float]] = {args.base: [], new: []}
    p99: dict[str, list[float]] = {args.base: [], new: []}
    docker("stop", CONTAINER)
    try:
        for rnd in range(args.rounds):
            order = (args.base, new) if rnd % 2 == 0 else (new, args.base)
            for image in order:
                start_trial(image, spec, args.url)
                with open("/proc/loadavg") as f:
                    load = f.read().split()[0]
                result = heartbeat_load(args.url, args.threads, args.seconds, 50_000)
                rps[image].append(result["rps"])
                p99[image].append(result["p99_ms"])
                print(f"round {rnd + 1} {image:32s} {result['rps']:6.0f} req/s"
                      f"  p50 {result['p50_ms']:5.1f} ms  p99 {result['p99_ms']:5.1f} ms"
                      f"  errors {result['errors']}  load {load}", flush=True)
    finally:
        docker("rm", "-f", TRIAL)
        docker("start", CONTAINER)
    base_rps, new_rps = statistics.median(rps[args.base]), statistics.median(rps[new])
    print(f"median req/s: base {base_rps:.0f}, new {new_rps:.0f}, new/base {new_rps / base_rps:.3f}")
    base_p99, new_p99 = statistics.median(p99[args.base]), statistics.median(p99[new])
    print(f"median p99 ms: base {base_p99:.1f}, new {new_p99:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
