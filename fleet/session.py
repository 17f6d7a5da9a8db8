"""Run pyinfra operations on a set of nodes in parallel and collect each node's outcome."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyinfra.api import Config, Host, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage

from fleet.inventory import Node

log = logging.getLogger("fleet")


@dataclass
class Outcome:
    ok: bool
    stdout: str
    stderr: str


# An op adder: given the state, the pyinfra host and its node, queues pyinfra operations for that host
# only (add_op(..., host=host)) and returns the add_op result whose output tells the outcome.
OpAdder = Callable[[State, Host, Node], Any]


def missing_containers(nodes: list[Node]) -> dict[str, str]:
    """Docker nodes whose container is not running.

    pyinfra's docker connector starts a stopped container, or runs (and commits) an image of that name
    when no container has it: neither is right for a fleet check, so such nodes are not handed to it.
    """
    missing: dict[str, str] = {}
    for node in nodes:
        if not node.pyinfra_name.startswith("@docker/"):
            continue
        container = node.pyinfra_name.split("/", 1)[1]
        proc = subprocess.run(["docker", "container", "inspect", "-f", "{{.State.Running}}", container],
                              capture_output=True, text=True, check=False)
        if proc.stdout.strip() != "true":
            missing[node.name] = f"container {container} is not running"
    return missing


def run(nodes: list[Node], add_ops: OpAdder, parallel: int = 20) -> dict[str, Outcome]:
    """Queue ``add_ops`` on every node, run them (nodes in parallel), return each node's outcome."""
    outcomes = {name: Outcome(False, "", why) for name, why in missing_containers(nodes).items()}
    nodes = [node for node in nodes if node.name not in outcomes]
    if not nodes:
        return outcomes
    inventory = Inventory(([(node.pyinfra_name, node.data) for node in nodes], {}))
    state = State(inventory, Config(PARALLEL=parallel))
    by_name = {node.pyinfra_name: node for node in nodes}
    metas: dict[str, Any] = {}
    try:
        try:
            # pyinfra gives up ("No hosts remaining!") when every host of the batch failed: each host's
            # outcome is still read below.
            state.set_stage(StateStage.Connect)
            connect_all(state)
            state.set_stage(StateStage.Prepare)
            for host in inventory.get_active_hosts():
                node = by_name[host.name]
                metas[node.name] = add_ops(state, host, node)
            state.set_stage(StateStage.Execute)
            run_ops(state)
        except PyinfraError as exc:
            log.debug("pyinfra stopped: %s", exc)
        for host in inventory:
            node = by_name[host.name]
            meta = metas.get(node.name)
            if meta is None:
                outcomes[node.name] = Outcome(False, "", "could not connect")
                continue
            op = meta[host]
            ok = op.is_complete() and op.did_succeed() and host not in state.failed_hosts
            outcomes[node.name] = Outcome(ok, op.stdout if op.is_complete() else "",
                                          op.stderr if op.is_complete() else "not run")
    finally:
        state.set_stage(StateStage.Disconnect)
        disconnect_all(state)
    return outcomes
