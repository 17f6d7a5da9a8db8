"""Real servers for the test session: a private MariaDB (``mariadb``) and uWSGI serving the app (``uwsgi``).

Nothing here is a fake: each harness starts the same binaries the appliance runs, bound to 127.0.0.1 on a
free port, and stops them when the session ends.
"""

from __future__ import annotations

import os
import socket
import socketserver
import threading


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (callers retry if another process takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def in_ci() -> bool:
    """CI sets CI=true; there a missing server is a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def tail(path: os.PathLike[str] | str, lines: int = 30) -> str:
    """The end of a log file, for failure messages."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return "(no log)"


def serve_in_thread(server: socketserver.BaseServer, name: str | None = None) -> threading.Thread:
    """Start ``server.serve_forever`` on a daemon thread. The loop checks for ``shutdown()`` every 0.05 s:
    at the default 0.5 s, stopping an in-process server costs each test that uses one half a second."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                              daemon=True)
    thread.start()
    return thread
