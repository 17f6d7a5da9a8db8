"""An OpenAPI 3.1 document built from the app's own URL map, so no route can be left out.

Each view's docstring gives its summary; the request body and answer it declares with
``jobmon.server.validation.accepts`` (the Structs that also decode and encode them) give their schemas.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from flask import Flask

import jobmon
from jobmon.server.validation import declared

_REF = "#/components/schemas/{name}"
_ERROR = {
    "description": "a JSON error naming the problem",
    "content": {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}},
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
    "additionalProperties": {"description": "details of some errors, e.g. the current status on a 409"},
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def build_document(app: Flask, prefixes: tuple[str, ...] | None = None) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    structs: list[type[msgspec.Struct]] = []
    operations: list[tuple[dict[str, Any], type[msgspec.Struct], type[msgspec.Struct]]] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or (prefixes and not rule.rule.startswith(prefixes)):
            continue
        view = app.view_functions[rule.endpoint]
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        params = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer" if conv == "int" else "string"}}
            for conv, name in re.findall(r"<(?:([a-z]+):)?([a-z_]+)>", rule.rule)
        ]
        doc = (view.__doc__ or rule.endpoint).strip()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": doc.splitlines()[0],
                "description": doc,
                "responses": {"200": {"description": "success, JSON"}, "4XX": _ERROR},
            }
            if params:
                op["parameters"] = params
            io = declared(view)
            if io is not None:
                operations.append((op, io.body, io.answer))
                structs += [io.body, io.answer]
            paths.setdefault(path, {})[method.lower()] = op
    unique = list(dict.fromkeys(structs))
    refs, components = msgspec.json.schema_components(unique, ref_template=_REF)
    schema_of = dict(zip(unique, refs, strict=True))
    for op, body, answer in operations:
        op["requestBody"] = {"required": True, "content": _json(schema_of[body])}
        op["responses"]["200"] = {"description": "success", "content": _json(schema_of[answer])}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Jobmon service", "version": jobmon.__version__},
        "paths": paths,
        "components": {"schemas": {**components, "Error": _ERROR_SCHEMA}},
    }
