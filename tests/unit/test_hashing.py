"""Identity hashes are sha256 of canonical JSON: the same in every process, run and host, and independent
of insertion order."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobmon.core import hashing


def test_node_args_hash_is_the_same_in_other_processes_with_other_hash_seeds():
    here = hashing.node_args_hash({"location": 12, "year": "2020", "sex": "both"})
    code = ("from jobmon.core import hashing; "
            "print(hashing.node_args_hash({'year': 2020, 'sex': 'both', 'location': '12'}))")
    for seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == here


def test_hashes_are_pinned():
    # A change to the canonical form would make every stored workflow look new (no resume): pin it.
    assert hashing.node_args_hash({"a": 1}) == (
        "ce642ee78d4442268c75a71dcfb135aa30540cb1f32e7fd618da97d7f834a3dd")
    assert hashing.task_args_hash({"x": "y"}) == (
        "a9e9469e4c05d246ffb55ac5d604a3b136a6a43ff40a1d652a34805b1760da67")
    assert hashing.workflow_args_hash({}) == (
        "bdc250174bd195c75a6a663d6ba9bf8dd862527cb7a2fb29e85d73c83d62deed")
    assert hashing.dag_hash(["n1", "n2"], [("n1", "n2")]) == (
        "a5833198248705a4e2f9567e677502961464b62c74dc9c969189b6d757d058ab")
    assert hashing.task_hash([("n1", "t1"), ("n2", "t2")]) == (
        "9267a1ae087be4418fca7615b13f764bc63c888a8e9eacf5e4c3fc503a746a9e")
    assert hashing.node_hash(7, "abc") == (
        "b6e709cf53289bfa2f52b68dcb932c9d0a7bc38c3e8e01f361f2d3f6b73f7e33")
    assert hashing.template_hash("echo {a}", ["a"], [], []) == (
        "48c53bc715cf8125dc6a4400c3b45d2b055164f03a4ae8afd59dc9403a4e2c81")


def test_values_compare_as_text_and_key_order_does_not_matter():
    assert hashing.node_args_hash({"a": 1, "b": 2.5}) == hashing.node_args_hash({"b": "2.5", "a": "1"})
    assert hashing.node_args_hash({"a": 1}) != hashing.node_args_hash({"a": 2})
    assert hashing.node_args_hash({"a": 1}) != hashing.node_args_hash({"b": 1})


def test_kinds_never_collide():
    args = {"a": "1"}
    assert len({hashing.node_args_hash(args), hashing.task_args_hash(args),
                hashing.workflow_args_hash(args)}) == 3


def test_dag_hash_ignores_order_and_duplicates_but_not_edge_direction():
    nodes = ["n1", "n2", "n3"]
    edges = [("n1", "n2"), ("n2", "n3")]
    base = hashing.dag_hash(nodes, edges)
    assert hashing.dag_hash(reversed(nodes), [*list(reversed(edges)), ("n1", "n2")]) == base
    assert hashing.dag_hash(nodes, [("n2", "n1"), ("n2", "n3")]) != base
    assert hashing.dag_hash(nodes, edges[:1]) != base
    assert hashing.dag_hash([*nodes, "n4"], edges) != base


def test_task_hash_depends_on_task_args():
    one = hashing.task_hash([("n1", hashing.task_args_hash({"release": 1}))])
    two = hashing.task_hash([("n1", hashing.task_args_hash({"release": 2}))])
    assert one != two
    assert hashing.task_hash([("a", "x"), ("b", "y")]) == hashing.task_hash([("b", "y"), ("a", "x")])


def test_template_hash_sorts_arg_names():
    assert hashing.template_hash("{a} {b}", ["b", "a"], [], ["c"]) == (
        hashing.template_hash("{a} {b}", ["a", "b"], [], ["c"]))
    assert hashing.template_hash("{a}", ["a"], [], []) != hashing.template_hash("{a}", [], ["a"], [])


def test_arg_names_must_be_strings():
    with pytest.raises(TypeError, match="argument names must be strings"):
        hashing.node_args_hash({1: "x"})  # type: ignore[dict-item]
