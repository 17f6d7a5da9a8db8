"""The Jobmon service as the ``jobmon`` CLI talks to it, and the one-line failures it reports."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from jobmon.core.requester import JobmonRequestError, Requester

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

# Retries of a failed connection or a 502/503/504, and the most seconds spent waiting between them.
CLI_RETRIES = 2
CLI_MAX_RETRY_WAIT = 5.0


class CliError(Exception):
    """A failure reported as one line on stderr."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Service:
    """The Jobmon service at one base URL, through the client's Requester (a few retries on connection
    errors and 502/503/504); every failure becomes a CliError carrying the server's reason."""

    def __init__(self, url: str, timeout: float, retries: int = CLI_RETRIES) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # A person is waiting: retry briefly, not for the minutes a running workflow would.
        self.requester = Requester(self.url, timeout=timeout, retries=retries, backoff_base=0.5,
                                   backoff_cap=2.0, max_total_wait=CLI_MAX_RETRY_WAIT)

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.call("GET", path, params=params)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", path, body=body)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", path, body=body)

    def call(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            with _quiet_retries():
                return self.requester.request(method, path, params=params, body=body)
        except JobmonRequestError as exc:
            raise self._explain(exc) from None

    def _explain(self, exc: JobmonRequestError) -> CliError:
        status, reason = exc.status_code, exc.reason
        if status is None:
            if "Timeout" in reason:
                return CliError(f"the Jobmon service at {self.url} did not answer within {self.timeout:g}s",
                                EXIT_UNAVAILABLE)
            return CliError(f"cannot reach the Jobmon service at {self.url}: {_short_reason(reason)}",
                            EXIT_UNAVAILABLE)
        if status >= 500:
            return CliError(f"the Jobmon service failed (HTTP {status}): {reason}", EXIT_UNAVAILABLE)
        # Werkzeug's routing 404 (no such route) and a proxy's page say nothing about an id: the URL (or
        # the server's version) is wrong.
        if status >= 400 and exc.kind and not reason.startswith("The requested URL was not found"):
            return CliError(reason)
        if status >= 400:
            return CliError(f"HTTP {status} from {exc.url} (is {self.url} the Jobmon service?)")
        return CliError(f"unexpected answer from {exc.url}: {reason} (is {self.url} the Jobmon service?)",
                        EXIT_UNAVAILABLE)


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """The requester logs each retry as a warning; a person gets one line at the end instead."""
    logger = logging.getLogger("jobmon.core.requester")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _short_reason(text: str) -> str:
    # requests nests the socket error several levels deep; "[Errno 111] Connection refused" is the part
    # a person needs.
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip().lower()
    return text.split(":", 1)[-1].strip()[:200] or "no reason given"
