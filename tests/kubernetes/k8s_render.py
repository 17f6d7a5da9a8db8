"""Render the Kubernetes manifests with the real playbook (playbooks/kubernetes.yml) into a temporary
directory, from a throwaway inventory whose secrets are random per run, and load what it wrote."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
REGISTRY = "registry.example.org/hpc/"
TAG = "0123456789ab"
MARIADB_TAG = "fedcba987654"

# Every secret the inventory holds: none may appear outside a Secret.
SECRET_VARS = (
    "jobmon_db_migrator_password",
    "jobmon_db_state_password",
    "jobmon_db_readonly_password",
    "jobmon_db_qpid_password",
    "jobmon_reaper_slack_token",
    "qpid_integration_reader_password",
    "kubernetes_manifests_tls_key",
)


def ansible_playbook() -> str | None:
    """The deploy venv's ansible-playbook (JOBMON_DEPLOY_BIN, or .venv-deploy), else PATH's."""
    bin_dir = Path(os.environ.get("JOBMON_DEPLOY_BIN", REPO / ".venv-deploy" / "bin"))
    candidate = bin_dir / "ansible-playbook"
    if candidate.is_file():
        return str(candidate)
    return shutil.which("ansible-playbook")


def make_secrets() -> dict[str, str]:
    # Quote, backslash and slash in one of them: the SQL and URL escaping must keep it intact.
    values = {name: f"S3cr{secrets.token_hex(12)}" for name in SECRET_VARS}
    values["jobmon_db_migrator_password"] = f"m'i\\g/{secrets.token_hex(8)}"
    values["kubernetes_manifests_tls_key"] = (
        f"-----BEGIN PRIVATE KEY-----\n{secrets.token_hex(24)}\n-----END PRIVATE KEY-----\n"
    )
    return values


def write_inventory(directory: Path, secret_values: dict[str, str], overlay: dict[str, Any]) -> Path:
    inventory = directory / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local"}}}}))
    settings: dict[str, Any] = {
        "kubernetes_manifests_registry": REGISTRY,
        "kubernetes_manifests_server_image_tag": TAG,
        "kubernetes_manifests_mariadb_image_tag": MARIADB_TAG,
        "kubernetes_manifests_ingress_host": "jobmon.example.org",
        "kubernetes_manifests_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        **overlay,
    }
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(settings))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(yaml.safe_dump(secret_values))
    return inventory


@dataclass
class Run:
    returncode: int
    output: str

    @property
    def changed(self) -> int:
        match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", self.output)
        assert match, self.output[-3000:]
        return int(match.group(1))


def run_playbook(playbook: str, inventory: Path, dest: Path, *extra: str) -> Run:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0"}
    proc = subprocess.run(
        [playbook, "-i", str(inventory), str(REPO / "playbooks" / "kubernetes.yml"),
         "-e", f"kubernetes_manifests_dest={dest}", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


@dataclass
class Rendered:
    dest: Path
    secrets: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    def files(self) -> list[Path]:
        return sorted(self.dest.glob("*.yaml"))

    def documents(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        for path in self.files():
            docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
        return docs

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents() if doc["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(kind/name, pod spec, pod labels) of every workload."""
    out = []
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob"}:
            template = doc["spec"]["template"]
            out.append((f"{doc['kind']}/{doc['metadata']['name']}", template["spec"],
                        template["metadata"].get("labels", {})))
    return out


def secret_data(doc: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    data.update(doc.get("stringData") or {})
    return data
