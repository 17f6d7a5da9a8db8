"""fleet.verdict: what check makes of each node's probe, without a node."""

from __future__ import annotations

import json
from typing import Any

from fleet.inventory import Node
from fleet.verdict import judge, table

NODE = Node("n1", "n1", {})
VENV = "/opt/jobmon/venv"


def good_probe(**changes: Any) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "client_version": "0.1.0", "server_version": "0.1.0", "service_url": "http://127.0.0.1:8070",
        "modes": {"/etc/jobmon": ["0755", 0, 0], "/etc/jobmon/jobmon.toml": ["0644", 0, 0],
                  "/etc/jobmon/sge.toml": ["0644", 0, 0]},
        "worker_rc": 0, "worker_path": f"{VENV}/bin/jobmon-worker",
    }
    probe.update(changes)
    return probe


def verdict_of(probe: dict[str, Any]):
    return judge(NODE, True, "noise\n" + json.dumps(probe) + "\n", "")


def test_a_healthy_node_passes() -> None:
    verdict = verdict_of(good_probe())
    assert verdict.ok, verdict.problems
    assert "OK" in table([verdict])


def test_a_client_of_another_version_fails() -> None:
    verdict = verdict_of(good_probe(client_version="0.0.9"))
    assert not verdict.ok
    assert "client 0.0.9 differs from the service's 0.1.0" in verdict.problems[0]
    assert "FAIL" in table([verdict])


def test_an_unreachable_service_fails() -> None:
    probe = good_probe(service_error="URLError: refused")
    del probe["server_version"]
    verdict = verdict_of(probe)
    assert verdict.service == "down"
    assert not verdict.ok


def test_a_world_writable_config_fails() -> None:
    probe = good_probe()
    probe["modes"]["/etc/jobmon/jobmon.toml"] = ["0666", 0, 0]
    verdict = verdict_of(probe)
    assert verdict.modes == "wrong"
    assert any("mode 0666" in problem for problem in verdict.problems)


def test_a_worker_from_elsewhere_on_path_fails() -> None:
    verdict = verdict_of(good_probe(worker_path="/usr/bin/jobmon-worker"))
    assert verdict.worker == "foreign"
    assert not verdict.ok


def test_a_failed_probe_is_reported() -> None:
    verdict = judge(NODE, False, "", "could not connect")
    assert verdict.problems == ["probe failed: could not connect"]
