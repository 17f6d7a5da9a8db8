"""Every error leaves the service as JSON: ``{"error": <kind>, "reason": <text>}``.

A 4xx names what was wrong with the request; a 5xx is a bug and is logged with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# MySQL/MariaDB client errors that mean "no connection" (can't connect, gone away, lost, too many
# connections, shutting down) rather than a problem with the statement.
_CONNECTION_ERRORS = frozenset({1040, 1053, 2002, 2003, 2006, 2013})


class ApiError(Exception):
    status = 400
    kind = "bad_request"

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class InvalidInput(ApiError):
    status = 400
    kind = "invalid_input"


class NotFound(ApiError):
    status = 404
    kind = "not_found"


class Conflict(ApiError):
    """The request is well formed but the current state forbids it (e.g. an invalid transition)."""

    status = 409
    kind = "conflict"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        return jsonify({"error": exc.kind, "reason": exc.reason, **exc.details}), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        kind = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": kind, "reason": exc.description}), exc.code or 500

    @app.errorhandler(OperationalError)
    def _db_error(exc: OperationalError) -> ResponseReturnValue:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if code in _CONNECTION_ERRORS or exc.connection_invalidated:
            # The database went away: the client retries 503 with backoff.
            log.error("database unavailable: %s", exc.orig)
            return jsonify({"error": "database_unavailable", "reason": "the database is unavailable"}), 503
        # Anything else (a missing grant, say) is a deployment bug: retrying would never help.
        log.exception("database error")
        return jsonify({"error": "internal_error", "reason": "internal server error"}), 500

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify({"error": "internal_error", "reason": "internal server error"}), 500
