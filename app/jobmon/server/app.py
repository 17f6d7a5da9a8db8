"""Flask app factory.

Production runs one uWSGI app per service, each built with only its own blueprint and credentials
(``create_app(services=["state"])``); development and tests build all three in one app.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

import jobmon
from jobmon.core.cli_support import setup_logging
from jobmon.core.config import JobmonConfig
from jobmon.core.routes import PREFIXES
from jobmon.server.context import ServiceContext
from jobmon.server.db import make_engine, make_sessionmaker
from jobmon.server.errors import register_error_handlers
from jobmon.server.openapi import build_document

SERVICES = ("state", "query", "viz")


def create_app(config: JobmonConfig | None = None, services: Iterable[str] = SERVICES) -> Flask:
    config = config or JobmonConfig.load()
    wanted = tuple(services)
    unknown = set(wanted) - set(SERVICES)
    if unknown or not wanted:
        raise ValueError(f"services must be a non-empty subset of {SERVICES}, got {wanted}")

    setup_logging("jobmon-server", config.server.log_level)
    app = Flask("jobmon.server")
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    ctx = ServiceContext(config=config, services=wanted)
    pool = {"pool_size": config.server.db_pool_size, "pool_recycle": config.server.db_pool_recycle}
    if "state" in wanted:
        ctx.read_write = make_sessionmaker(make_engine(config.server.db_url, **pool))
    if {"query", "viz"} & set(wanted):
        ctx.read_only = make_sessionmaker(make_engine(config.server.read_only_url, **pool))
    app.extensions["jobmon"] = ctx
    register_error_handlers(app)

    # Imported here so a read-only app never imports write code it does not serve.
    if "state" in wanted:
        from jobmon.server.state_manager import blueprint as state_bp

        app.register_blueprint(state_bp, url_prefix=PREFIXES["state"])
    if "query" in wanted:
        from jobmon.server.query_service import blueprint as query_bp

        app.register_blueprint(query_bp, url_prefix=PREFIXES["query"])
    if "viz" in wanted:
        from jobmon.server.visualization import blueprint as viz_bp

        app.register_blueprint(viz_bp)

    for service in wanted:
        _add_service_routes(app, service, ctx)

    def openapi_all() -> ResponseReturnValue:
        """OpenAPI 3.1 document of every route this app serves."""
        return jsonify(build_document(app))

    app.add_url_rule("/api/openapi.json", "openapi_all", openapi_all)
    return app


def _add_service_routes(app: Flask, service: str, ctx: ServiceContext) -> None:
    prefix = PREFIXES[service]
    factory = ctx.read_write if service == "state" else ctx.read_only
    assert factory is not None

    def health() -> ResponseReturnValue:
        """Health: the service answers and its database connection works."""
        with factory() as session:
            session.execute(text("SELECT 1"))
        return jsonify({"status": "ok", "service": service, "version": jobmon.__version__})

    own = (prefix, "/viz") if service == "viz" else (prefix,)

    def openapi() -> ResponseReturnValue:
        """OpenAPI 3.1 document of this service's routes."""
        return jsonify(build_document(app, own))

    app.add_url_rule(f"{prefix}/health", f"{service}_health", health)
    app.add_url_rule(f"{prefix}/openapi.json", f"{service}_openapi", openapi)
