"""Wall time of fleet/run check and upgrade over one testbed node, beside the grid_engine_client role.

    .venv/bin/python bench/fleet_walltime.py --node fleet-sge --wheel /tmp/jobmon-0.1.0+x-py3-none-any.whl

NODE is a running container converged by the role (the Grid Engine testbed or a copy of it). Measured, each
--repeat times, median and range:
- fleet check; the role's converge with nothing to change (what Ansible does to verify a node);
- fleet upgrade to WHEEL (then rollback, timed too); the role's converge that reinstalls the client (its
  venv marker is clobbered first, as a new wheel set would do).
The role's wheel set goes to its own cache (--wheel-dir), never the appliance's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], expect_ok: bool = True) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    elapsed = time.monotonic() - started
    if expect_ok and proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f} - {max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node", required=True)
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wheel-dir", default="/var/tmp/fleet-bench-wheels")
    args = parser.parse_args()

    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as inv:
        inv.write(f"grid_engine_nodes:\n  hosts:\n    {args.node}:\n"
                  f"      ansible_connection: community.docker.docker\n      ansible_host: {args.node}\n"
                  f"      ansible_user: root\n")
    fleet = [str(ROOT / "fleet" / "run")]
    playbook = [str(ROOT / ".venv-deploy" / "bin" / "ansible-playbook"),
                "-i", str(ROOT / "inventories" / "local"), "-i", inv.name, "--limit", args.node,
                "-e", f"grid_engine_client_wheel_dir={args.wheel_dir}",
                str(ROOT / "playbooks" / "grid_engine.yml")]
    clobber = ["docker", "exec", args.node, "sh", "-c", "echo bench >/opt/jobmon/venv/.jobmon-wheelset"]

    timed(playbook)  # the node as the role leaves it, and the role's wheel set built once
    rows: dict[str, list[float]] = {k: [] for k in
                                    ("fleet check", "role converge, no change", "fleet upgrade",
                                     "fleet rollback", "role converge, reinstall")}
    for _ in range(args.repeat):
        rows["fleet check"].append(timed([*fleet, "check", "-i", inv.name]))
        rows["role converge, no change"].append(timed(playbook))
        rows["fleet upgrade"].append(timed([*fleet, "upgrade", "-i", inv.name, "--wheel", str(args.wheel)]))
        rows["fleet rollback"].append(timed([*fleet, "rollback", "-i", inv.name]))
        subprocess.run(clobber, check=True)
        rows["role converge, reinstall"].append(timed(playbook))
    subprocess.run(["docker", "exec", args.node, "rm", "-rf", "/opt/jobmon/venv.previous",
                    "/opt/jobmon/wheels/fleet"], check=True)
    Path(inv.name).unlink()
    print(f"| {args.node}, {args.repeat} runs | wall time, median (range) |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {summary(values)} |")


if __name__ == "__main__":
    main()
