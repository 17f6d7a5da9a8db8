"""A daemon's liveness mark: the file is touched after every completed pass, and a container health check
fails when it grows older than a few passes (the process can be alive yet stuck)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def touch(path: str) -> None:
    if not path:
        return
    try:
        Path(path).touch()
    except OSError as exc:
        log.warning("cannot touch health file %s: %s", path, exc)
