"""The OpenAPI documents are built from the URL map: the combined one lists every route, each service's
own lists only that service's routes, and every operation is summarized from its view's docstring."""

from __future__ import annotations

import re

import pytest

from jobmon.server.app import create_app

OWN_PREFIXES = {"state": ("/api/state/",), "query": ("/api/query/",), "viz": ("/api/viz/", "/viz/")}


def _doc_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        routes.setdefault(_doc_path(rule.rule), set()).update(
            m.lower() for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})
    return routes


def test_combined_document_lists_every_route(app, client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.1")
    expected = _routes(app)
    assert set(doc["paths"]) == set(expected)
    for path, methods in expected.items():
        assert set(doc["paths"][path]) == methods, path


def test_every_operation_has_a_summary_and_path_parameters(client):
    doc = client.get("/api/openapi.json").get_json()
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"{([a-z_]+)}", path))
        for method, op in ops.items():
            summary = op["summary"]
            # A real docstring, not the endpoint name the generator falls back to.
            assert " " in summary, (path, method)
            assert not summary.startswith(("viz.", "query.", "state.")), (path, method)
            assert {p["name"] for p in op.get("parameters", [])} == names, (path, method)


@pytest.mark.parametrize("service", ["state", "query", "viz"])
def test_service_document_lists_only_its_own_routes(app, client, service):
    resp = client.get(f"/api/{service}/openapi.json")
    assert resp.status_code == 200
    paths = set(resp.get_json()["paths"])
    own = {p for p in _routes(app) if p.startswith(OWN_PREFIXES[service])}
    assert paths == own
    assert f"/api/{service}/health" in paths


def test_read_routes_are_documented(client):
    paths = set(client.get("/api/openapi.json").get_json()["paths"])
    assert {
        "/api/query/time", "/api/query/version", "/api/query/workflow/{workflow_id}",
        "/api/query/workflow_run/{workflow_run_id}", "/api/query/workflow/{workflow_id}/task_statuses",
        "/api/query/workflow/{workflow_id}/concurrency", "/api/query/task_instance/{task_instance_id}",
        "/api/query/workflow_run/{workflow_run_id}/overdue_instances",
        "/api/viz/workflows", "/api/viz/workflow/{workflow_id}/tasks", "/api/viz/task/{task_id}",
        "/viz/", "/viz/workflow/{workflow_id}", "/viz/task/{task_id}",
    } <= paths


def test_single_service_app_documents_only_itself(server_config):
    query_app = create_app(server_config, services=["query"])
    doc = query_app.test_client().get("/api/openapi.json").get_json()
    assert all(p.startswith("/api/query/") or p == "/api/openapi.json" for p in doc["paths"])
    assert "/api/query/workflow/{workflow_id}" in doc["paths"]
