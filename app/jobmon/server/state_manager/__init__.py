"""State Manager: every write. Its engine uses the read-write database URL."""

from flask import Blueprint

blueprint = Blueprint("state", __name__)

from jobmon.server.state_manager import routes  # noqa: E402,F401  (registers the routes)
