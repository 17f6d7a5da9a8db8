"""Registers every Query Service route on the blueprint; each module holds one concern."""

from jobmon.server.query_service import (  # noqa: F401  (imported for their route registrations)
    client_reads,
    reaper,
)
