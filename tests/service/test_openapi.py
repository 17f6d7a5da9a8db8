"""The OpenAPI documents are built from the URL map: the combined one lists every route, each service's
own lists only that service's routes, and every operation is summarized from its view's docstring."""

from __future__ import annotations

import re

import pytest

from jobmon.server.app import create_app
from jobmon.server.validation import declared

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


# -- the declared bodies are the ones enforced -------------------------------------------------------

_WRONG_TYPE = {"integer": "1", "number": "1", "string": 1, "boolean": 1, "array": {}, "object": []}
_OTHER = [1, "x", True, [], {}]


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def _accepts_type(schema: dict, value: object) -> bool:
    kinds = {b.get("type") for b in schema.get("anyOf", [schema])}
    kind = _json_type(value)
    return kind in kinds or (kind == "integer" and "number" in kinds) or None in kinds


def _violations(schema: dict, components: dict, depth: int = 0):
    """Values that the JSON Schema ``schema`` refuses, each for one reason."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        yield from (v for v in _OTHER if not _accepts_type(schema, v))
        for branch in schema["anyOf"]:
            for value in _violations(branch, components, depth):
                if [b for b in schema["anyOf"] if _accepts_type(b, value)] == [branch]:
                    yield value  # of this branch's type only, and refused by it
        return
    if "enum" in schema:
        yield "no such value"
    kind = schema.get("type")
    if kind in (None, "null"):
        return
    yield _WRONG_TYPE[kind]
    step = 1 if kind == "integer" else 0.5
    if "minimum" in schema:
        yield schema["minimum"] - step
    if "maximum" in schema:
        yield schema["maximum"] + step
    if "exclusiveMinimum" in schema:
        yield schema["exclusiveMinimum"]
    if schema.get("minLength") == 1:
        yield ""
    if "maxLength" in schema:
        yield "x" * (schema["maxLength"] + 1)
    if "pattern" in schema:
        assert re.fullmatch(schema["pattern"], "!") is None
        yield "!"
    if depth > 2:
        return
    if kind == "array":
        if "minItems" in schema:
            yield []
        if "maxItems" in schema:
            yield [1] * (schema["maxItems"] + 1)
        if schema.get("items"):
            yield from ([value] for value in _violations(schema["items"], components, depth + 1))
        for value in _violations(schema.get("prefixItems", [{}])[0], components, depth + 1):
            yield [value] * schema.get("minItems", 1)  # a tuple of the right length, each item refused
    if kind == "object":
        names = schema.get("propertyNames", {})
        if names.get("minLength") == 1:
            yield {"": "x"}
        if "maxLength" in names:
            yield {"x" * (names["maxLength"] + 1): "x"}
        for value in _violations(schema.get("additionalProperties") or {}, components, depth + 1):
            yield {"name": value}
        for prop, sub in schema.get("properties", {}).items():
            for value in _violations(sub, components, depth + 1):
                yield {prop: value}


def _state_writes(app, doc: dict):
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & {"POST", "PUT", "PATCH"}
        if rule.rule.startswith("/api/state/") and methods:
            path = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "1", rule.rule)
            (method,) = methods
            yield path, method, app.view_functions[rule.endpoint], \
                doc["paths"][_doc_path(rule.rule)][method.lower()]


def test_every_state_write_declares_the_body_and_answer_it_is_documented_with(app, client):
    doc = client.get("/api/openapi.json").get_json()
    writes = list(_state_writes(app, doc))
    assert len(writes) >= 27
    for path, _method, view, op in writes:
        io = declared(view)
        assert io is not None, path
        body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert (body, answer) == (f"#/components/schemas/{io.body.__name__}",
                                  f"#/components/schemas/{io.answer.__name__}"), path


def test_a_body_the_document_refuses_is_refused_with_400_naming_the_field(app, client):
    doc = client.get("/api/openapi.json").get_json()
    components = doc["components"]["schemas"]
    checked = 0
    for path, method, _view, op in _state_writes(app, doc):
        schema = components[op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                            .rsplit("/", 1)[1]]
        resp = client.open(path, method=method, json=[])
        assert resp.status_code == 400, path
        assert resp.get_json()["reason"] == "request body must be a JSON object"
        resp = client.open(path, method=method, json={})
        if schema["required"]:
            assert resp.get_json()["reason"] == f"field '{schema['required'][0]}' is required", path
        else:  # nothing required: {} gets past validation (to the unknown id 1)
            assert resp.status_code != 400, (path, resp.get_json())
        for prop, sub in schema["properties"].items():
            for value in _violations(sub, components):
                resp = client.open(path, method=method, json={prop: value})
                out = resp.get_json()
                assert resp.status_code == 400, (path, prop, value, out)
                assert out["error"] == "invalid_input"
                assert re.search(rf"field '{prop}\b|^{prop}\[", out["reason"]), (path, prop, value, out)
                checked += 1
    assert checked > 250, checked
