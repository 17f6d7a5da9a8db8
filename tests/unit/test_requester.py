"""Requester against a small real HTTP server on 127.0.0.1 that answers from a script."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import serve_in_thread
from jobmon.core.requester import JobmonRequestError, Requester


class ScriptedServer:
    """Answers each request with the next (status, body) of ``script``; the last one repeats."""

    def __init__(self) -> None:
        self.script: list[tuple[int, object]] = [(200, {"ok": True})]
        self.requests: list[tuple[str, str, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, json.loads(raw) if raw else None))
                status, body = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                ctype = "text/html" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = serve_in_thread(self.httpd)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def make(url: str, retries: int = 5) -> tuple[Requester, list[float]]:
    waits: list[float] = []
    return Requester(url, timeout=5, retries=retries, sleep=waits.append), waits


def test_503_is_retried_with_growing_backoff_until_200(server):
    server.script = [(503, {"error": "database_unavailable", "reason": "the database is unavailable"}),
                     (503, {"error": "database_unavailable", "reason": "the database is unavailable"}),
                     (502, "<html>bad gateway</html>"),
                     (200, {"tool_id": 1, "tool_version_id": 2})]
    req, waits = make(server.url)
    assert req.post("/api/state/tool", {"name": "x"}) == {"tool_id": 1, "tool_version_id": 2}
    assert len(server.requests) == 4
    assert all(r == ("POST", "/api/state/tool", {"name": "x"}) for r in server.requests)
    assert len(waits) == 3
    # Full jitter within an exponential ceiling: attempt n waits in [base*2^n / 2, base*2^n].
    for n, wait in enumerate(waits):
        ceiling = 0.5 * 2**n
        assert ceiling / 2 <= wait <= ceiling


def test_backoff_is_capped_per_wait_and_in_total(server):
    server.script = [(504, {"error": "gateway_timeout", "reason": "slow"})]
    waits: list[float] = []
    req = Requester(server.url, timeout=5, retries=50, backoff_base=1.0, backoff_cap=4.0,
                    max_total_wait=20.0, sleep=waits.append)
    with pytest.raises(JobmonRequestError) as info:
        req.get("/api/query/time")
    assert max(waits) <= 4.0
    assert sum(waits) <= 20.0
    assert info.value.status_code == 504
    assert "gave up after" in info.value.reason
    assert "slow" in info.value.reason


def test_retries_are_bounded(server):
    server.script = [(503, {"error": "database_unavailable", "reason": "down"})]
    req, waits = make(server.url, retries=2)
    with pytest.raises(JobmonRequestError, match="gave up after 3 attempt"):
        req.get("/api/query/time")
    assert len(server.requests) == 3
    assert len(waits) == 2


def test_4xx_raises_at_once_with_the_servers_reason(server):
    server.script = [(409, {"error": "conflict", "reason": "workflow 3 has an active run 4; pass resume"})]
    req, waits = make(server.url)
    with pytest.raises(JobmonRequestError) as info:
        req.post("/api/state/workflow/3/run", {"resume": False})
    err = info.value
    assert err.status_code == 409
    assert err.kind == "conflict"
    assert err.reason == "workflow 3 has an active run 4; pass resume"
    assert "answered 409: workflow 3 has an active run 4" in str(err)
    assert len(server.requests) == 1
    assert waits == []


def test_500_is_not_retried(server):
    server.script = [(500, {"error": "internal_error", "reason": "internal server error"})]
    req, waits = make(server.url)
    with pytest.raises(JobmonRequestError) as info:
        req.get("/api/query/time")
    assert info.value.status_code == 500
    assert len(server.requests) == 1
    assert waits == []


def test_html_error_page_gives_its_text(server):
    server.script = [(404, "<html><body>no such page</body></html>")]
    req, _ = make(server.url)
    with pytest.raises(JobmonRequestError, match="no such page"):
        req.get("/nowhere")


def test_non_object_answer_is_an_error(server):
    server.script = [(200, [1, 2])]
    req, _ = make(server.url)
    with pytest.raises(JobmonRequestError, match="not a JSON object"):
        req.get("/api/query/time")


def test_get_sends_query_parameters(server):
    req, _ = make(server.url)
    req.get("/api/query/workflow/1/task_statuses", {"since": "2024-01-01T00:00:00"})
    assert server.requests[0][1] == "/api/query/workflow/1/task_statuses?since=2024-01-01T00%3A00%3A00"


def test_connection_refused_is_retried_then_raises_without_status():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    req, waits = make(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(JobmonRequestError) as info:
        req.get("/api/query/time")
    assert info.value.status_code is None
    assert "gave up after 3 attempt(s)" in str(info.value)
    assert len(waits) == 2


def test_session_is_reused(server):
    req, _ = make(server.url)
    session = req._session
    req.get("/a")
    req.post("/b", {})
    req.put("/c", {"x": 1})
    assert req._session is session
    assert [r[0] for r in server.requests] == ["GET", "POST", "PUT"]
    assert server.requests[2][2] == {"x": 1}


def test_base_url_must_be_http():
    with pytest.raises(ValueError, match="must start with http"):
        Requester("127.0.0.1:8070")
