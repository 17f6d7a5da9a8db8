"""A small fake of the Slack Web API for tests and the Molecule scenario: a real HTTP server on 127.0.0.1.

It answers ``auth.test`` and ``chat.postMessage`` (JSON or form bodies, token from the Authorization header
or the ``token`` field), records every call, and can be told to fail the next N calls with a 429 (with a
Retry-After header) or a 500:

  in pytest:   the ``fake_slack`` fixture (a started FakeSlack; ``.base_url`` goes to slack_sdk's base_url)
  standalone:  python tests/fake_slack.py --port 8091 --record /tmp/slack.jsonl [--token xoxb-...]
               each recorded call is one JSON line in the record file; control it over HTTP:
               POST /_fake/fail {"status": 429, "count": 1, "retry_after": 1}   GET /_fake/calls
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

HOST = "127.0.0.1"


class FakeSlack:
    def __init__(self, port: int = 0, record: str | None = None, token: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures: list[tuple[int, int]] = []  # (status, retry_after) per coming call
        self.token = token
        self.record = Path(record) if record else None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # the record is the log

            def do_GET(self) -> None:
                if self.path.startswith("/_fake/calls"):
                    with fake.lock:
                        self._answer(200, {"calls": list(fake.calls)})
                else:
                    self._answer(404, {"ok": False, "error": "unknown_method"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", errors="replace")
                if self.path.startswith("/_fake/fail"):
                    spec = json.loads(raw or "{}")
                    fake.fail(int(spec.get("status", 500)), int(spec.get("count", 1)),
                              int(spec.get("retry_after", 1)))
                    self._answer(200, {"ok": True})
                    return
                fake._handle(self, raw)

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                        ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.handler = Handler
        self.server = ThreadingHTTPServer((HOST, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/api/"

    # -- control ------------------------------------------------------------------------------------

    def fail(self, status: int, count: int = 1, retry_after: int = 1) -> None:
        """The next ``count`` API calls answer ``status`` (429 carries Retry-After)."""
        with self.lock:
            self.failures += [(status, retry_after)] * count

    def messages(self) -> list[dict[str, Any]]:
        """Recorded chat.postMessage calls that were answered ok."""
        with self.lock:
            return [c for c in self.calls if c["method"] == "chat.postMessage" and c["status"] == 200]

    def start(self) -> FakeSlack:
        # Checks for shutdown() every 0.05 s: at the default 0.5 s, each test would spend that in stop().
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="fake-slack", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the API ------------------------------------------------------------------------------------

    def _handle(self, handler: Any, raw: str) -> None:
        method = handler.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        body = _parse_body(handler.headers.get("Content-Type", ""), raw)
        auth = handler.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else str(body.get("token", ""))
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            status, retry_after = failure
            self._record(method, body, status)
            if status == 429:
                handler._answer(429, {"ok": False, "error": "ratelimited"},
                                {"Retry-After": str(retry_after)})
            else:
                handler._answer(status, {"ok": False, "error": "fatal_error"})
            return
        if self.token is not None and token != self.token:
            self._record(method, body, 401)
            handler._answer(200, {"ok": False, "error": "invalid_auth"})
            return
        if method == "auth.test":
            self._record(method, body, 200)
            handler._answer(200, {"ok": True, "url": "http://127.0.0.1/", "team": "fake", "user": "jobmon",
                                  "team_id": "T0", "user_id": "U0", "bot_id": "B0"})
        elif method == "chat.postMessage":
            if not body.get("channel") or not (body.get("text") or body.get("blocks")):
                self._record(method, body, 400)
                handler._answer(200, {"ok": False, "error": "no_text" if body.get("channel")
                                      else "channel_not_found"})
                return
            self._record(method, body, 200)
            ts = f"{1700000000 + len(self.calls)}.000100"
            handler._answer(200, {"ok": True, "channel": "C0FAKE", "ts": ts,
                                  "message": {"text": body.get("text", ""), "ts": ts}})
        else:
            self._record(method, body, 404)
            handler._answer(404, {"ok": False, "error": "unknown_method"})

    def _record(self, method: str, body: dict[str, Any], status: int) -> None:
        entry = {"method": method, "status": status, "channel": body.get("channel"),
                 "text": body.get("text")}
        with self.lock:
            self.calls.append(entry)
            if self.record is not None:
                with self.record.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")


def _parse_body(content_type: str, raw: str) -> dict[str, Any]:
    if "json" in content_type:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl(raw))


try:  # a pytest fixture when imported by pytest; the module also runs without pytest installed
    import pytest

    @pytest.fixture
    def fake_slack() -> Iterator[FakeSlack]:
        """A started FakeSlack on a free 127.0.0.1 port; stopped after the test."""
        fake = FakeSlack().start()
        try:
            yield fake
        finally:
            fake.stop()
except ImportError:  # pragma: no cover
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake Slack Web API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="append each call as a JSON line to this file")
    parser.add_argument("--token", help="accept only this token (default: any)")
    args = parser.parse_args(argv)
    fake = FakeSlack(args.port, args.record, args.token)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=fake.server.shutdown).start())
    print(f"fake Slack on {fake.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.server.serve_forever()
    fake.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
