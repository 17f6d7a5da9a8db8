"""Run the rendered jobmon-mariadb-init SQL the way the StatefulSet does: mariadbd's --init-file with the
event scheduler on, on a private data directory and socket, no TCP listener."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymysql

from harness import tail
from harness.mariadb import _os_user, _short_tempdir, find_binaries


class InitFileServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "mysqld.sock"
        self.admin = "root" if os.geteuid() == 0 else _os_user()

    def connect(self, user: str | None = None, password: str = "", database: str | None = None) -> Any:
        return pymysql.connect(unix_socket=str(self.socket), user=user or self.admin, password=password,
                               database=database, connect_timeout=5, autocommit=True)

    def url(self, user: str, password: str, database: str) -> str:
        return (f"mysql+pymysql://{quote(user, safe='')}:{quote(password, safe='')}@localhost/{database}"
                f"?unix_socket={self.socket}&charset=utf8mb4")


@contextmanager
def init_file_server(init_sql: str, timeout: float = 60.0) -> Iterator[InitFileServer]:
    mariadbd, install_db = find_binaries()
    base = _short_tempdir()
    server = InitFileServer(base)
    (base / "init.sql").write_text(init_sql)
    user = ["--user=root"] if os.geteuid() == 0 else []
    install = [install_db, "--no-defaults", f"--datadir={base / 'data'}", "--skip-test-db",
               "--auth-root-authentication-method=socket", "--innodb-log-file-size=16M", *user]
    if not user:
        install.append(f"--auth-root-socket-user={server.admin}")
    subprocess.run(install, check=True, capture_output=True, timeout=120)
    log = base / "error.log"
    process = subprocess.Popen(
        [mariadbd, "--no-defaults", f"--datadir={base / 'data'}", f"--socket={server.socket}",
         f"--pid-file={base / 'mariadbd.pid'}", f"--log-error={log}", "--skip-networking",
         "--skip-name-resolve", "--event-scheduler=ON", f"--init-file={base / 'init.sql'}",
         "--innodb-buffer-pool-size=32M", *user],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"mariadbd exited:\n{tail(log)}"
            assert time.monotonic() < deadline, f"mariadbd did not answer:\n{tail(log)}"
            try:
                server.connect().close()
                break
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)
