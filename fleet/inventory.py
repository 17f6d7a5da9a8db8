"""The cluster nodes of an Ansible inventory, as pyinfra host specs.

Ansible stays the one source of hosts: ``ansible-inventory --list`` is read, never a list of our own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GROUP = "grid_engine_nodes"
DOCKER_CONNECTIONS = {"community.docker.docker", "docker", "community.docker.docker_api"}

# The grid_engine_client role's defaults: used unless the inventory sets a literal value (a Jinja
# expression in host vars is not evaluated by ansible-inventory, so it cannot be used here).
DEFAULTS = {
    "grid_engine_client_venv": "/opt/jobmon/venv",
    "grid_engine_client_config_path": "/etc/jobmon/jobmon.toml",
    "grid_engine_client_sge_config_path": "/etc/jobmon/sge.toml",
}


@dataclass(frozen=True)
class Node:
    """One cluster node: its Ansible name, the pyinfra host name that selects the connector, its data."""

    name: str
    pyinfra_name: str
    data: dict[str, Any] = field(default_factory=dict)

    def setting(self, key: str) -> str:
        value = self.data.get("ansible", {}).get(key)
        if isinstance(value, str) and "{{" not in value and value:
            return value
        return DEFAULTS[key]


def ansible_inventory_command() -> str:
    # The deploy venv's ansible-inventory when fleet runs from it, else the one on PATH.
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-inventory")
    if not found:
        raise SystemExit("fleet: ansible-inventory not found (run from .venv-deploy: fleet/run)")
    return found


def read_inventory(sources: list[str], vault_password_file: str | None = None) -> dict[str, Any]:
    argv = [ansible_inventory_command()]
    for source in sources:
        argv += ["-i", source]
    # A file, never the password itself, on the command line (ANSIBLE_VAULT_PASSWORD_FILE works too).
    if vault_password_file:
        argv += ["--vault-password-file", vault_password_file]
    argv.append("--list")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"fleet: ansible-inventory failed: {proc.stderr.strip()}")
    listing: dict[str, Any] = json.loads(proc.stdout)
    return listing


def group_hosts(listing: dict[str, Any], group: str) -> list[str]:
    """Hosts of a group and of its child groups, in inventory order, each once."""
    seen: list[str] = []
    entry = listing.get(group, {})
    for host in entry.get("hosts", []):
        if host not in seen:
            seen.append(host)
    for child in entry.get("children", []):
        for host in group_hosts(listing, child):
            if host not in seen:
                seen.append(host)
    return seen


def to_node(name: str, hostvars: dict[str, Any]) -> Node:
    connection = hostvars.get("ansible_connection", "ssh")
    data: dict[str, Any] = {"fleet_name": name, "ansible": hostvars}
    if connection in DOCKER_CONNECTIONS:
        # An existing container: pyinfra's docker connector execs into it and leaves it running.
        return Node(name, f"@docker/{hostvars.get('ansible_host') or name}", data)
    if connection == "local":
        return Node(name, "@local", data)
    data["ssh_hostname"] = hostvars.get("ansible_host", name)
    if "ansible_user" in hostvars:
        data["ssh_user"] = hostvars["ansible_user"]
    if "ansible_port" in hostvars:
        data["ssh_port"] = int(hostvars["ansible_port"])
    if "ansible_ssh_private_key_file" in hostvars:
        data["ssh_key"] = hostvars["ansible_ssh_private_key_file"]
    if hostvars.get("ansible_become"):
        data["_sudo"] = True
    return Node(name, name, data)


def load_nodes(sources: list[str], group: str = GROUP, limit: list[str] | None = None,
               vault_password_file: str | None = None) -> list[Node]:
    listing = read_inventory(sources, vault_password_file)
    hostvars: dict[str, dict[str, Any]] = listing.get("_meta", {}).get("hostvars", {})
    names = group_hosts(listing, group)
    if limit:
        unknown = sorted(set(limit) - set(names))
        if unknown:
            raise SystemExit(f"fleet: not in group {group}: {', '.join(unknown)}")
        names = [name for name in names if name in limit]
    nodes = [to_node(name, hostvars.get(name, {})) for name in names]
    # pyinfra keys hosts by this name: two inventory names for one container or host would merge.
    targets: dict[str, str] = {}
    for node in nodes:
        if node.pyinfra_name in targets:
            raise SystemExit(f"fleet: {targets[node.pyinfra_name]} and {node.name} are the same target "
                             f"({node.pyinfra_name}); use --limit")
        targets[node.pyinfra_name] = node.name
    return nodes
