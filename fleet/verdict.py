"""Judge each node's probe (fleet/probe.py) and print the check table (no pyinfra: unit-tested)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.inventory import Node

# What the grid_engine_client role writes: readable by every user (no secret in them), written by root.
EXPECTED_DIR_MODE = "0755"
EXPECTED_FILE_MODE = "0644"


@dataclass
class Verdict:
    node: str
    client: str = "-"
    server: str = "-"
    service: str = "-"
    modes: str = "-"
    worker: str = "-"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(node: Node, ok: bool, stdout: str, stderr: str) -> Verdict:
    """The verdict on one node from its probe's outcome (ok, and the JSON line on stdout)."""
    verdict = Verdict(node.name)
    if not ok:
        verdict.problems.append(f"probe failed: {(stderr or stdout).strip()[-300:]}")
        return verdict
    probe: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    client, served = probe.get("client_version"), probe.get("server_version")
    verdict.client = client or "missing"
    verdict.server = served or "-"
    if client is None:
        verdict.problems.append(f"no jobmon in the venv: {probe.get('client_error')}")
    if served is None:
        verdict.service = "down"
        url = probe.get("service_url") or "(no URL)"
        verdict.problems.append(f"service {url}: {probe.get('service_error')}")
    else:
        verdict.service = "ok"
        if client is not None and client != served:
            verdict.problems.append(
                f"client {client} differs from the service's {served}: workers refuse to run")
    bad_modes = []
    for path, found in probe["modes"].items():
        want = EXPECTED_DIR_MODE if path == str(Path(node.setting("grid_engine_client_config_path")).parent) \
            else EXPECTED_FILE_MODE
        if not isinstance(found, list):
            bad_modes.append(f"{path}: {found}")
        elif found != [want, 0, 0]:
            bad_modes.append(f"{path}: mode {found[0]} owner {found[1]}:{found[2]}, want {want} root:root")
    verdict.modes = "ok" if not bad_modes else "wrong"
    verdict.problems += bad_modes
    venv = node.setting("grid_engine_client_venv")
    if probe.get("worker_rc") == 0 and str(probe.get("worker_path")).startswith(venv + "/"):
        verdict.worker = "ok"
    elif probe.get("worker_rc") == 0:
        # Jobs run the jobmon-worker on PATH: one from elsewhere is not the client just checked.
        verdict.worker = "foreign"
        verdict.problems.append(f"jobmon-worker on PATH is {probe.get('worker_path')}, not from {venv}")
    else:
        verdict.worker = "fails"
        verdict.problems.append(f"{probe.get('worker_path')} --help: rc {probe.get('worker_rc')} "
                                f"{probe.get('worker_error')}")
    return verdict


def table(verdicts: list[Verdict]) -> str:
    header = ("node", "client", "server", "service", "modes", "worker", "munge", "result")
    rows = [header] + [(v.node, v.client, v.server, v.service, v.modes, v.worker, "n/a",
                        "OK" if v.ok else "FAIL") for v in verdicts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    for verdict in verdicts:
        lines += [f"{verdict.node}: {problem}" for problem in verdict.problems]
    return "\n".join(lines)
