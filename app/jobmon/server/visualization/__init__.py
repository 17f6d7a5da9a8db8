"""Visualization server: JSON summaries for the CLI and an HTML page. Read-only database URL."""

from flask import Blueprint

blueprint = Blueprint("viz", __name__, template_folder="templates")

from jobmon.server.visualization import routes  # noqa: E402,F401  (registers the routes)
