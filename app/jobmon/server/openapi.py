"""An OpenAPI 3.1 document built from the app's own URL map, so no route can be left out.

Each view's docstring gives its summary; ``@request_schema`` attaches a JSON Schema for its body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

import jobmon

F = TypeVar("F", bound=Callable[..., Any])

_ERROR = {
    "description": "a JSON error naming the problem",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def request_schema(schema: dict[str, Any]) -> Callable[[F], F]:
    def attach(view: F) -> F:
        view.request_schema = schema  # type: ignore[attr-defined]
        return view

    return attach


def build_document(app: Flask, prefixes: tuple[str, ...] | None = None) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
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
            schema = getattr(view, "request_schema", None)
            if schema is not None and method in {"POST", "PUT", "PATCH"}:
                op["requestBody"] = {"required": True,
                                     "content": {"application/json": {"schema": schema}}}
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Jobmon service", "version": jobmon.__version__},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object",
            "required": ["error", "reason"],
            "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
        }}},
    }
