"""A private MariaDB server for the test session: Debian's own ``mariadbd`` on a temporary datadir.

One server per session (it starts in about a second); each test gets its own empty database, granted to the
same three least-privilege users the appliance creates:

  jobmon_migrator  ALL PRIVILEGES      runs the Alembic migrations
  jobmon_rw        SELECT/INSERT/UPDATE/DELETE   the State Manager
  jobmon_ro        SELECT              the Query Service and the Visualization server

The server listens on 127.0.0.1 only, on a free port; the harness administers it as root over its unix
socket (socket authentication: no root password exists at all).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness import free_port, tail

# Binaries live in /usr/sbin, which is not on a normal user's PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
HOST = "127.0.0.1"

MIGRATOR = "jobmon_migrator"
READ_WRITE = "jobmon_rw"
READ_ONLY = "jobmon_ro"
PRIVILEGES = {
    MIGRATOR: "ALL PRIVILEGES",
    READ_WRITE: "SELECT, INSERT, UPDATE, DELETE",
    READ_ONLY: "SELECT",
}
BASE_DATABASE = "jobmon"
_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")

# Durability buys nothing in a throwaway datadir; these keep migrations and commits fast.
SERVER_TUNING = [
    "--skip-log-bin",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-use-native-aio=0",  # io_uring/libaio are often blocked by container seccomp profiles
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=128M",
    "--max-connections=500",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
]


class MariaDBUnavailable(RuntimeError):
    """mariadbd or mariadb-install-db is not installed on this machine."""


class MariaDBStartError(RuntimeError):
    """The server is installed but would not initialise or start."""


@dataclass(frozen=True)
class DbUrls:
    """SQLAlchemy URLs of one jobmon database, one per role."""

    backend: str
    read_write: str
    read_only: str
    migrate: str


def find_binaries() -> tuple[str, str]:
    """Paths of mariadbd and mariadb-install-db, or MariaDBUnavailable naming what is missing."""
    found = {name: shutil.which(name, path=SEARCH_PATH) for name in ("mariadbd", "mariadb-install-db")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MariaDBUnavailable(
            f"{', '.join(missing)} not found (install Debian's mariadb-server package)"
        )
    return found["mariadbd"] or "", found["mariadb-install-db"] or ""


def _random_password() -> str:
    # URL-significant characters on purpose: every URL consumer must quote and unquote them correctly.
    return secrets.token_urlsafe(18) + "%@:/#"


class MariaDBServer:
    """A running mariadbd; use :meth:`start` and :meth:`stop` (or the fixture that wraps them)."""

    def __init__(self, base_dir: Path, mariadbd: str) -> None:
        self.base_dir = base_dir
        self.datadir = base_dir / "data"
        self.socket = base_dir / "mariadb.sock"
        self.error_log = base_dir / "error.log"
        self.mariadbd = mariadbd
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.passwords = {user: _random_password() for user in PRIVILEGES}
        self._counter = itertools.count(1)
        # Unix-socket authentication maps the OS user to the MariaDB user of the same name.
        self.admin_user = "root" if os.geteuid() == 0 else _os_user()

    # -- lifecycle -----------------------------------------------------------------------------------

    @classmethod
    def start(cls, timeout: float = 60.0) -> MariaDBServer:
        mariadbd, install_db = find_binaries()
        base_dir = _short_tempdir()
        server = cls(base_dir, mariadbd)
        try:
            server._install(install_db)
            server._launch(timeout)
            server._create_users()
        except BaseException:
            server.stop()
            raise
        return server

    def _install(self, install_db: str) -> None:
        args = [
            install_db,
            "--no-defaults",  # must come first: ignore /etc/mysql, which describes the system server
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--innodb-log-file-size=16M",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        else:
            args.append(f"--auth-root-socket-user={self.admin_user}")
        log = self.base_dir / "install.log"
        with open(log, "wb") as out:
            done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=120)
        rc = done.returncode
        if rc != 0:
            raise MariaDBStartError(f"mariadb-install-db exited {rc}:\n{tail(log)}")

    def _launch(self, timeout: float) -> None:
        # A free port can be taken between choosing and binding it; try a few.
        for _attempt in range(5):
            self.port = free_port()
            args = [
                self.mariadbd,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.base_dir / 'mariadbd.pid'}",
                f"--log-error={self.error_log}",
                f"--port={self.port}",
                f"--bind-address={HOST}",
                "--skip-name-resolve",
                *SERVER_TUNING,
            ]
            if os.geteuid() == 0:
                args.append("--user=root")
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,  # a ^C at the terminal reaches pytest, which then stops us cleanly
            )
            if self._wait_ready(timeout):
                return
            if "Address already in use" not in tail(self.error_log, 200):
                raise MariaDBStartError(f"mariadbd exited {self.process.returncode}:\n{tail(self.error_log)}")
        raise MariaDBStartError(f"mariadbd found no free port:\n{tail(self.error_log)}")

    def _wait_ready(self, timeout: float) -> bool:
        """True when the server answers; False if it exited; MariaDBStartError on timeout."""
        import pymysql

        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.socket.exists():
                try:
                    pymysql.connect(
                        unix_socket=str(self.socket), user=self.admin_user, connect_timeout=2
                    ).close()
                    return True
                except pymysql.err.OperationalError:
                    pass
            time.sleep(0.05)
        raise MariaDBStartError(f"mariadbd did not answer within {timeout:.0f}s:\n{tail(self.error_log)}")

    def stop(self) -> None:
        """Stop the server (SIGTERM: a clean InnoDB shutdown) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- administration ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def admin(self) -> Iterator[Any]:
        """A root connection over the unix socket, autocommit on."""
        import pymysql

        conn = pymysql.connect(unix_socket=str(self.socket), user=self.admin_user, autocommit=True)
        try:
            yield conn
        finally:
            conn.close()

    def _create_users(self) -> None:
        with self.admin() as conn, conn.cursor() as cur:
            for user, password in self.passwords.items():
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, HOST, password))
        self.create_database(BASE_DATABASE)

    def url(self, user: str, database: str) -> str:
        password = quote(self.passwords[user], safe="")
        return f"mysql+pymysql://{user}:{password}@{HOST}:{self.port}/{database}?charset=utf8mb4"

    def urls(self, database: str) -> DbUrls:
        return DbUrls(
            backend="mariadb",
            read_write=self.url(READ_WRITE, database),
            read_only=self.url(READ_ONLY, database),
            migrate=self.url(MIGRATOR, database),
        )

    def create_database(self, name: str | None = None) -> DbUrls:
        """A new empty database granted to the three users as the appliance grants them."""
        name = name or f"jobmon_t{next(self._counter)}_{secrets.token_hex(3)}"
        _check_name(name)
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for user, privileges in PRIVILEGES.items():
                cur.execute(f"GRANT {privileges} ON `{name}`.* TO %s@%s", (user, HOST))
        return self.urls(name)

    def drop_database(self, name: str) -> None:
        """Drop a test database, first ending any session still using it (a pooled connection of an app
        the test did not dispose would otherwise hold a metadata lock and stall the DROP)."""
        _check_name(name)
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (name,))
            for (session_id,) in cur.fetchall():
                with contextlib.suppress(Exception):  # it may have ended by itself meanwhile
                    cur.execute(f"KILL {int(session_id)}")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            for user in PRIVILEGES:
                with contextlib.suppress(Exception):  # REVOKE fails when the grant is already gone
                    cur.execute(f"REVOKE ALL PRIVILEGES ON `{name}`.* FROM %s@%s", (user, HOST))


def database_name(url: str) -> str:
    """The database part of a URL the harness built."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    assert name, url
    return name


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(f"not a safe database name: {name!r}")


def _short_tempdir() -> Path:
    # A unix socket path must fit in 108 bytes; fall back to /tmp when TMPDIR is deep.
    base = tempfile.mkdtemp(prefix="jobmon-mariadb-")
    if len(base) > 70:
        os.rmdir(base)
        base = tempfile.mkdtemp(prefix="jobmon-mariadb-", dir="/tmp")
    return Path(base)


def _os_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
