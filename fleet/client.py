"""``upgrade`` / ``rollback`` of the client and worker venv, and ``drain`` / ``undrain`` in Grid Engine."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyinfra.api import Host, State
from pyinfra.api.operation import add_op
from pyinfra.operations import files, server

from fleet import session
from fleet.inventory import Node

UPGRADE_DIR = "/opt/jobmon/wheels/fleet"


def wheel_version(wheel: Path) -> str:
    # name-version-pyX-abi-platform.whl (PEP 427)
    return wheel.name.split("-")[1]


def upgrade_script(venv: str, remote_wheel: str, version: str) -> str:
    previous = f"{venv}.previous"
    q = shlex.quote
    # The current venv is copied aside first (a venv is not relocatable, so it comes back by rename to the
    # same path). --no-deps: the client's dependencies are already in the venv; pip check proves the new
    # wheel is content with them. Any failure puts the copy back, so a node is never left half-upgraded.
    # The marker names the fleet wheel, so the role's next converge reinstalls its own wheel set.
    return f"""set -u
V={q(venv)}; P={q(previous)}
test -x "$V/bin/python" || {{ echo "no venv at $V" >&2; exit 1; }}
rm -rf "$P" && cp -a "$V" "$P" || exit 1
restore() {{ echo "$1; restoring the previous venv" >&2; rm -rf "$V"; mv "$P" "$V"; exit 1; }}
"$V/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-index \\
    --force-reinstall --no-deps {q(remote_wheel)} || restore "pip install failed"
"$V/bin/python" -m pip check --disable-pip-version-check >&2 || restore "pip check failed"
got=$("$V/bin/python" -c "import importlib.metadata as m; print(m.version('jobmon'))") \
    || restore "import failed"
[ "$got" = {q(version)} ] || restore "installed $got, not {version}"
"$V/bin/jobmon-worker" --help >/dev/null || restore "jobmon-worker does not start"
echo "fleet:{Path(remote_wheel).name}" >"$V/.jobmon-wheelset"
echo "$got"
"""


def rollback_script(venv: str) -> str:
    q = shlex.quote
    # A swap: the upgraded venv becomes the previous one, so a second rollback re-applies the upgrade.
    return f"""set -eu
V={q(venv)}; P={q(venv + ".previous")}
test -x "$P/bin/python" || {{ echo "no previous venv at $P: nothing to roll back to" >&2; exit 1; }}
mv "$V" "$V.swap" && mv "$P" "$V" && mv "$V.swap" "$P"
"$V/bin/python" -c "import importlib.metadata as m; print(m.version('jobmon'))"
"""


def qmod_script(enable: bool, queue: str, hosts: list[str] | None = None) -> str:
    """qmod -d/-e of the queue's instances on ``hosts`` (default: the host it runs on), then their qstat."""
    # Grid Engine names queue instances by the execution host's own name, hence $(hostname) on the node.
    # A login profile puts Grid Engine on PATH at sites that use settings.sh.
    flag = "-e" if enable else "-d"
    names = " ".join(shlex.quote(host) for host in hosts) if hosts else '"$(hostname)"'
    return f"""set -eu
. /etc/profile >/dev/null 2>&1 || true
for h in {names}; do
    qmod {flag} {shlex.quote(queue)}@"$h"
    qstat -f -q {shlex.quote(queue)}@"$h" | awk 'NR>2 && NF'
done
"""


def drain(nodes: list[Node], admin: Node | None, enable: bool, queue: str, parallel: int,
          report: Callable[[str], None]) -> bool:
    """Drain (enable=False) or undrain the nodes: qmod on each node, or for all of them on ``admin``."""
    action = "undrain" if enable else "drain"
    if admin is None:
        return in_batches(nodes, len(nodes), shell_adder(lambda _n: qmod_script(enable, queue),
                                                         f"{action} the node's queue instances"),
                          parallel, report)
    # Execution hosts are often not admin hosts: ask each node its name, then qmod them from the admin host.
    names = session.run(nodes, shell_adder(lambda _n: "hostname", "Read the host name"), parallel=parallel)
    failed = [node.name for node in nodes if not names[node.name].ok]
    for name in failed:
        report(f"{name:<20} FAILED  {names[name].stderr.strip()}")
    if failed:
        return False
    hosts = [names[node.name].stdout.strip().splitlines()[-1] for node in nodes]
    outcome = session.run([admin], shell_adder(lambda _n: qmod_script(enable, queue, hosts),
                                               f"{action} the nodes' queue instances"))[admin.name]
    report(f"{admin.name} (admin host): {'ok' if outcome.ok else 'FAILED'}")
    report((outcome.stdout if outcome.ok else outcome.stderr or outcome.stdout).strip())
    return outcome.ok


def shell_adder(make: Callable[[Node], str], name: str) -> session.OpAdder:
    def add(state: State, host: Host, node: Node) -> Any:
        return add_op(state, server.shell, make(node), name=name, host=host)
    return add


def upgrade_adder(wheel: Path) -> session.OpAdder:
    remote = f"{UPGRADE_DIR}/{wheel.name}"

    def add(state: State, host: Host, node: Node) -> Any:
        add_op(state, files.put, src=str(wheel), dest=remote, mode="0644", name="Copy the wheel", host=host)
        return add_op(state, server.shell,
                      upgrade_script(node.setting("grid_engine_client_venv"), remote, wheel_version(wheel)),
                      name="Install the wheel", host=host)
    return add


def batches(nodes: list[Node], size: int) -> list[list[Node]]:
    return [nodes[i:i + size] for i in range(0, len(nodes), size)]


def in_batches(nodes: list[Node], size: int, adder: session.OpAdder, parallel: int,
               report: Callable[[str], None]) -> bool:
    """Run ``adder`` batch after batch; stop after the first batch where any node failed."""
    groups = batches(nodes, size)
    for number, batch in enumerate(groups, 1):
        outcomes = session.run(batch, adder, parallel=parallel)
        for node in batch:
            outcome = outcomes[node.name]
            text = (outcome.stdout if outcome.ok else outcome.stderr or outcome.stdout).strip()
            report(f"batch {number}/{len(groups)}  {node.name:<20} {'ok' if outcome.ok else 'FAILED'}  "
                   f"{text.splitlines()[-1] if text else ''}")
        failed = [node.name for node in batch if not outcomes[node.name].ok]
        if failed:
            left = sum(len(group) for group in groups[number:])
            report(f"stopped: batch {number} failed on {', '.join(failed)}; {left} node(s) not touched")
            return False
    return True
