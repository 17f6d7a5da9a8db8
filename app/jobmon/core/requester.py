"""HTTP calls to the Jobmon services, with retries for the failures a restart or a busy server causes.

Retried: connection errors, timeouts, and 502/503/504 (nginx without a uWSGI behind it, the database
unavailable, a gateway timeout). Each wait is exponential with full jitter, capped per wait and in total,
so thousands of clients coming back after a server restart do not all arrive at once. Everything else that
is not 2xx raises ``JobmonRequestError`` at once: a 4xx means the request is wrong and repeating it cannot
help; a 500 is a server bug.

Only ``requests`` and the standard library are imported: this runs on cluster nodes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from jobmon.core.config import ClientConfig

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})


class JobmonRequestError(Exception):
    """A request failed for good: a 4xx/5xx answer, or the service stayed unreachable through every
    retry (``status_code`` is None then)."""

    def __init__(
        self,
        method: str,
        url: str,
        status_code: int | None,
        reason: str,
        kind: str = "",
    ) -> None:
        self.method = method
        self.url = url
        self.status_code = status_code
        self.reason = reason
        self.kind = kind
        where = f"{method} {url}"
        if status_code is None:
            super().__init__(f"{where}: {reason}")
        else:
            super().__init__(f"{where} answered {status_code}: {reason}")


class Requester:
    """One ``requests.Session`` (kept-alive connections) to a Jobmon service base URL.

    A Session is not safe to share between threads: give each thread its own Requester (``clone()``).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 60.0,
        retries: int = 8,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_total_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"service URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_total_wait = max_total_wait
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"

    @classmethod
    def from_config(cls, config: ClientConfig, service_url: str | None = None) -> Requester:
        return cls(service_url or config.service_url, timeout=config.request_timeout,
                   retries=config.request_retries)

    def clone(self) -> Requester:
        """A Requester with the same settings and its own Session (for another thread)."""
        return Requester(self.base_url, self.timeout, self.retries, backoff_base=self.backoff_base,
                         backoff_cap=self.backoff_cap, max_total_wait=self.max_total_wait,
                         sleep=self._sleep)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Requester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("POST", path, body=body if body is not None else {})

    def put(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("PUT", path, body=body if body is not None else {})

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): full jitter over an exponential
        ceiling, at most ``backoff_cap``."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url}/{path.lstrip('/')}"
        waited = 0.0
        attempt = 0
        stale_retried = False
        while True:
            failure: str
            status: int | None = None
            try:
                resp = self._session.request(
                    method, url, params=params, json=body, timeout=self.timeout
                )
            except requests.Timeout as exc:
                failure = f"{type(exc).__name__}: {_short(str(exc))}"
            except requests.ConnectionError as exc:
                if not stale_retried and _dropped_connection(exc):
                    # A kept-alive connection the server had already closed: try once more at once on
                    # a new connection, without counting it as a retry.
                    stale_retried = True
                    log.debug("%s %s: connection dropped (%s); retrying now", method, url, exc)
                    continue
                failure = f"{type(exc).__name__}: {_short(str(exc))}"
            else:
                if resp.status_code < 400:
                    return _json_object(method, url, resp)
                kind, reason = _error_of(resp)
                if resp.status_code not in RETRY_STATUSES:
                    raise JobmonRequestError(method, url, resp.status_code, reason, kind)
                status = resp.status_code
                failure = f"{resp.status_code} {reason}"
            wait = self.backoff(attempt)
            if attempt >= self.retries or waited + wait > self.max_total_wait:
                reason = f"gave up after {attempt + 1} attempt(s): {failure}"
                raise JobmonRequestError(method, url, status, reason)
            log.warning("%s %s failed (%s); retry %d/%d in %.1f s",
                        method, url, failure, attempt + 1, self.retries, wait)
            self._sleep(wait)
            waited += wait
            attempt += 1


def _dropped_connection(exc: requests.ConnectionError) -> bool:
    """The server closed (or reset) the connection under us, rather than refusing a new one."""
    text = str(exc)
    return any(sign in text for sign in ("RemoteDisconnected", "Connection reset", "BrokenPipe",
                                         "Connection aborted"))


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_object(method: str, url: str, resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise JobmonRequestError(
            method, url, resp.status_code, f"answer is not JSON: {_short(resp.text)!r}"
        ) from None
    if not isinstance(data, dict):
        raise JobmonRequestError(method, url, resp.status_code, "answer is not a JSON object")
    return data


def _error_of(resp: requests.Response) -> tuple[str, str]:
    """The service's ``error`` kind and ``reason``; a proxy's HTML error page gives its text."""
    try:
        data = resp.json()
    except ValueError:
        return "", _short(resp.text) or resp.reason or "no reason given"
    if isinstance(data, dict):
        return str(data.get("error", "")), str(data.get("reason") or data.get("error") or resp.reason)
    return "", _short(resp.text)
