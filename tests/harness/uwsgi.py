"""uWSGI serving ``jobmon.server.wsgi:application`` over HTTP on 127.0.0.1, as production runs it.

The binary is the ``uwsgi`` that the pyuwsgi package installs into the venv. The configuration goes to the
app the way it does in production: a TOML file (mode 0600, it holds database passwords) named by
``JOBMON_CONFIG``, and the services to serve in ``JOBMON_SERVICES``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from harness import free_port, tail
from jobmon.core.config import ClientConfig, JobmonConfig, ServerConfig, WorkerConfig

UWSGI = Path(sys.executable).parent / "uwsgi"
HOST = "127.0.0.1"
ALL_SERVICES = ("state", "query", "viz")
HEALTH_PATHS = {"state": "/api/state/health", "query": "/api/query/health", "viz": "/api/viz/health"}

# The shape production uses (see the jobmon_server role), small enough for a 2-core CI machine.
UWSGI_OPTIONS = [
    "--strict",  # an unknown option is an error, not a silent no-op
    "--master",
    "--processes", "2",
    "--threads", "4",
    "--need-app",
    "--die-on-term",
    "--lazy-apps",
    "--single-interpreter",
    "--vacuum",
    "--buffer-size", "32768",
    "--worker-reload-mercy", "10",
]


class UwsgiStartError(RuntimeError):
    """uWSGI exited or did not become healthy in time."""


# -- the config file ------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in {'"', "\\"}:
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def config_toml(config: JobmonConfig) -> str:
    """The config as a TOML document that ``JobmonConfig.load`` reads back to the same values."""
    lines: list[str] = []
    for section in ("client", "server", "worker"):
        lines.append(f"[{section}]")
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    text = "\n".join(lines)
    loaded = tomllib.loads(text)
    for section, klass in (("client", ClientConfig), ("server", ServerConfig), ("worker", WorkerConfig)):
        assert klass(**loaded[section]) == getattr(config, section), f"[{section}] did not round-trip"
    return text


def write_config(config: JobmonConfig, path: Path) -> Path:
    """Write the config file with mode 0600 from the start: it holds database passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(config_toml(config))
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file
    return path


# -- the server -----------------------------------------------------------------------------------------

@dataclass
class UwsgiService:
    url: str
    services: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def terminate(self) -> None:
        """Ask the master to stop (--die-on-term: it stops its workers and exits); see :meth:`stop`."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate and wait; SIGKILL the process group if it is stuck."""
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The process group is this master and the workers it forked; nothing else is in it.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def stop_all(services: Iterable[UwsgiService]) -> None:
    """Stop several servers at once: each takes about a second to wind down, so signal all, then wait."""
    services = list(services)
    for service in services:
        service.terminate()
    for service in services:
        service.stop()


def _child_env(config_path: Path, services: Sequence[str], extra: Mapping[str, str] | None) -> dict[str, str]:
    # The test's own JOBMON_* variables must not override the file the test wrote.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBMON_")}
    env["JOBMON_CONFIG"] = str(config_path)
    env["JOBMON_SERVICES"] = ",".join(services)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_uwsgi(
    config: JobmonConfig,
    workdir: Path,
    services: Iterable[str] = ALL_SERVICES,
    timeout: float = 60.0,
    extra_env: Mapping[str, str] | None = None,
) -> UwsgiService:
    """Start uWSGI and return once every service it serves answers its health check."""
    if not UWSGI.exists():
        raise UwsgiStartError(f"{UWSGI} not found: install the dev extras (pip install -e '.[dev]')")
    wanted = tuple(services)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = write_config(config, workdir / "jobmon.toml")
    env = _child_env(config_path, wanted, extra_env)
    # A free port can be taken between choosing and binding it; try a few.
    for attempt in range(5):
        port = free_port()
        log_path = workdir / f"uwsgi-{attempt}.log"
        args = [str(UWSGI), "--http11-socket", f"{HOST}:{port}",
                "--module", "jobmon.server.wsgi:application", *UWSGI_OPTIONS]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # ^C goes to pytest, which stops us; and killpg stays precise
            )
        service = UwsgiService(f"http://{HOST}:{port}", wanted, process, log_path, config_path)
        try:
            _wait_healthy(service, timeout)
            return service
        except UwsgiStartError:
            service.stop()
            if "Address already in use" in service.log_tail(200):
                continue
            raise
    raise UwsgiStartError(f"uWSGI found no free port; last log:\n{tail(log_path)}")


def _wait_healthy(service: UwsgiService, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = [HEALTH_PATHS[name] for name in service.services]
    last = ""
    while pending:
        if service.process.poll() is not None:
            raise UwsgiStartError(f"uWSGI exited {service.process.returncode}:\n{service.log_tail()}")
        if time.monotonic() > deadline:
            raise UwsgiStartError(f"uWSGI not healthy within {timeout:.0f}s ({last}):\n{service.log_tail()}")
        try:
            resp = requests.get(service.url + pending[0], timeout=5)
            if resp.status_code == 200 and resp.json().get("status") == "ok":
                pending.pop(0)
                continue
            last = f"{pending[0]} answered {resp.status_code}: {resp.text[:200]}"
        except requests.RequestException as exc:
            last = f"{pending[0]}: {exc.__class__.__name__}"
        time.sleep(0.1)
