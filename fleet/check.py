"""``check``: probe every node at once (fleet/probe.py), judge each probe (fleet/verdict.py)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pyinfra.api import Host, State
from pyinfra.api.operation import add_op
from pyinfra.operations import server

from fleet import session
from fleet.inventory import Node
from fleet.verdict import Verdict, judge

PROBE = (Path(__file__).parent / "probe.py").read_text()


def add_probe(state: State, host: Host, node: Node) -> Any:
    argv = ["python3", "-c", PROBE, node.setting("grid_engine_client_venv"),
            node.setting("grid_engine_client_config_path"),
            node.setting("grid_engine_client_sge_config_path")]
    return add_op(state, server.shell, shlex.join(argv), name="Probe the Jobmon client", host=host)


def check(nodes: list[Node], parallel: int) -> list[Verdict]:
    outcomes = session.run(nodes, add_probe, parallel=parallel)
    return [judge(node, outcomes[node.name].ok, outcomes[node.name].stdout, outcomes[node.name].stderr)
            for node in nodes]
