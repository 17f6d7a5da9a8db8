"""Stable identity hashes for nodes, tasks, DAGs and workflows.

Every hash is the sha256 hex digest of a canonical JSON text, so the same inputs give the same hash in
every process, on every host and in every Python version (Python's own ``hash()`` is salted per process
and would make a resumed workflow look new). Argument values are compared as text: ``1`` and ``"1"`` are
the same argument, as they are on the command line the task runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(kind: str, value: Any) -> str:
    """The hash of ``value`` tagged with ``kind``, so equal payloads of different kinds never collide."""
    return hashlib.sha256(_canonical([kind, value]).encode("utf-8")).hexdigest()


def args_as_text(args: Mapping[str, Any]) -> dict[str, str]:
    """Argument values as the text they become in a command; names must be strings."""
    out: dict[str, str] = {}
    for name, value in args.items():
        if not isinstance(name, str):
            raise TypeError(f"argument names must be strings, got {name!r}")
        out[name] = str(value)
    return out


def node_args_hash(node_args: Mapping[str, Any]) -> str:
    """Identity of a node inside its task template version: its node args."""
    return sha256_hex("node_args", args_as_text(node_args))


def task_args_hash(task_args: Mapping[str, Any]) -> str:
    return sha256_hex("task_args", args_as_text(task_args))


def workflow_args_hash(workflow_args: Mapping[str, Any]) -> str:
    return sha256_hex("workflow_args", args_as_text(workflow_args))


def template_hash(
    command_template: str, node_args: Iterable[str], task_args: Iterable[str], op_args: Iterable[str]
) -> str:
    """Identity of a task template version (the server computes the same from the same inputs)."""
    return sha256_hex(
        "task_template_version",
        [command_template, sorted(node_args), sorted(task_args), sorted(op_args)],
    )


def node_hash(task_template_version_id: int, node_args_hash_: str) -> str:
    """A node is a task template version plus node args; this names it without a database id."""
    return sha256_hex("node", [task_template_version_id, node_args_hash_])


def dag_hash(node_hashes: Iterable[str], edges: Iterable[tuple[str, str]]) -> str:
    """Identity of a DAG: its sorted node hashes and sorted (upstream, downstream) node-hash pairs.
    Insertion order never matters."""
    return sha256_hex(
        "dag", [sorted(set(node_hashes)), sorted({(up, down) for up, down in edges})]
    )


def task_hash(tasks: Iterable[tuple[str, str]]) -> str:
    """Identity of a workflow's task set: sorted (node hash, task args hash) pairs. Op args and
    resources are left out on purpose: changing them does not make a new workflow, so it can resume."""
    return sha256_hex("tasks", sorted(set(tasks)))
