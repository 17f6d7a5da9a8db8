"""Query Service: every read the client, worker and reaper need. Read-only database URL."""

from flask import Blueprint

blueprint = Blueprint("query", __name__)

from jobmon.server.query_service import routes  # noqa: E402,F401  (registers the routes)
