"""Shared startup for the benchmarks: a private MariaDB and uWSGI serving Jobmon on it, both on 127.0.0.1.

Reuses the test harness (tests/harness): the same ``mariadbd`` launcher (temporary datadir, free port,
the three least-privilege users) and the same ``start_uwsgi`` the end-to-end tests use, with the uWSGI
process/thread counts and request logging made adjustable for tuning runs.

Also measures the processes: peak RSS (VmHWM) and CPU seconds of the uWSGI master and its workers, and of
mariadbd, read from /proc.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from harness import uwsgi as harness_uwsgi  # noqa: E402
from harness.mariadb import MariaDBServer  # noqa: E402
from harness.uwsgi import UwsgiService, start_uwsgi  # noqa: E402
from jobmon.core.config import ClientConfig, JobmonConfig, ServerConfig  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# -- uWSGI options ---------------------------------------------------------------------------------------

def uwsgi_options(
    processes: int | None = None,
    threads: int | None = None,
    request_logging: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The harness's uWSGI options (production's shape) with processes/threads replaced, request logging
    off unless asked (production sets ``disable-logging = true``), and any extra flags appended."""
    opts = list(harness_uwsgi.UWSGI_OPTIONS)
    for flag, value in (("--processes", processes), ("--threads", threads)):
        if value is None:
            continue
        if flag in opts:
            opts[opts.index(flag) + 1] = str(value)
        else:
            opts += [flag, str(value)]
    if not request_logging:
        opts.append("--disable-logging")
    opts += list(extra)
    return opts


def option_value(opts: Sequence[str], flag: str) -> str | None:
    return opts[opts.index(flag) + 1] if flag in opts else None


def code_version() -> str:
    """The git commit and a digest of the jobmon sources as they are now (the working tree may hold
    uncommitted changes), so a figure can be tied to the code it measured."""
    import hashlib
    import subprocess

    digest = hashlib.sha256()
    for path in sorted((ROOT / "app" / "jobmon").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False, timeout=10).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "app"],
                               capture_output=True, text=True, check=False, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "?", ""
    changes = " + uncommitted changes in app/" if dirty else ""
    return f"commit {head}{changes}, sources {digest.hexdigest()[:10]}"


# -- /proc readings ---------------------------------------------------------------------------------------

def _status(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM in bytes from /proc/<pid>/status ({} if the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _pss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle since boot (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the uWSGI workers of a master)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                data = fh.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


@dataclass
class ProcStats:
    """What a ProcMonitor saw of one group of processes."""

    hwm: dict[int, int] = field(default_factory=dict)  # pid -> VmHWM bytes (peak of each process)
    peak_rss_total: int = 0  # largest sampled sum of VmRSS over the group
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)

    @property
    def hwm_sum(self) -> int:
        return sum(self.hwm.values())

    @property
    def hwm_max(self) -> int:
        return max(self.hwm.values(), default=0)

    @property
    def cpu(self) -> float:
        return sum(self.cpu_last[p] - self.cpu_start.get(p, 0.0) for p in self.cpu_last)


class ProcMonitor:
    """Samples groups of processes every ``interval`` seconds: ``server`` (the uWSGI master and its
    workers), ``mariadb`` and, with the nginx front, ``nginx`` (master and workers).

    VmHWM is each process's own lifetime peak, so the sum of VmHWM over master and workers is an upper
    bound of the server's peak resident memory (the workers' peaks need not coincide, and shared pages
    count once per process); ``peak_rss_total`` is the largest simultaneous sum actually sampled.
    """

    def __init__(self, uwsgi_pid: int, mariadb_pid: int | None = None, nginx_pid: int | None = None,
                 interval: float = 0.2) -> None:
        self.groups: dict[str, int] = {"server": uwsgi_pid}
        if mariadb_pid:
            self.groups["mariadb"] = mariadb_pid
        if nginx_pid:
            self.groups["nginx"] = nginx_pid
        self.stats = {name: ProcStats() for name in self.groups}
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sample()
        for stats in self.stats.values():
            stats.cpu_start = dict(stats.cpu_last)
        self.busy_start = machine_busy_seconds()
        self.wall_start = time.monotonic()
        self.busy = 0.0  # CPU seconds the whole machine used while monitored
        self.wall = 0.0

    @property
    def server(self) -> ProcStats:
        return self.stats["server"]

    @property
    def mariadb(self) -> ProcStats:
        return self.stats.get("mariadb", ProcStats())

    @property
    def nginx(self) -> ProcStats:
        return self.stats.get("nginx", ProcStats())

    def pids(self, name: str) -> list[int]:
        root = self.groups[name]
        return [root] if name == "mariadb" else [root, *children(root)]

    def sample(self) -> None:
        for name, stats in self.stats.items():
            total = 0
            for pid in self.pids(name):
                st = _status(pid)
                if not st:
                    continue
                total += st.get("VmRSS", 0)
                stats.hwm[pid] = max(stats.hwm.get(pid, 0), st.get("VmHWM", 0))
                cpu = _cpu_seconds(pid)
                if cpu is not None:
                    stats.cpu_last[pid] = cpu
            stats.peak_rss_total = max(stats.peak_rss_total, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ProcMonitor:
        self._thread = threading.Thread(target=self._run, name="procmon", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy = machine_busy_seconds() - self.busy_start
        self.wall = time.monotonic() - self.wall_start
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()

    def others(self, ours: float) -> float:
        """CPU seconds used by processes outside the benchmark (``ours``: the client's or load
        generator's own CPU seconds) while monitored: other work sharing the machine."""
        return max(0.0, self.busy - ours - sum(s.cpu for s in self.stats.values()))

    def server_pss_now(self) -> int:
        return sum(_pss(pid) or 0 for pid in self.pids("server"))


# -- nginx in front (production's shape) -----------------------------------------------------------------

NGINX = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))

NGINX_CONF = """\
{user}
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    client_max_body_size 64m;
    client_body_buffer_size 1m;
    uwsgi_buffer_size 64k;
    uwsgi_buffers 16 64k;
    uwsgi_busy_buffers_size 128k;
    uwsgi_read_timeout 300s;
    uwsgi_send_timeout 300s;
    uwsgi_request_buffering on;
    uwsgi_next_upstream off;
    upstream jobmon {{ server unix:{socket}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {uwsgi_params};
            uwsgi_pass jobmon;
        }}
    }}
}}
"""


class Nginx:
    """nginx on 127.0.0.1:<free port> passing every request to uWSGI's unix socket (uwsgi protocol), as
    the appliance's container does: clients keep-alive to nginx, nginx opens a connection to uWSGI per
    request."""

    def __init__(self, workdir: Path, socket: Path, workers: int = 1) -> None:
        import subprocess

        from harness import free_port

        if NGINX is None:
            raise SystemExit("nginx not found (apt-get install nginx-light)")
        self.dir = workdir / "nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        # As root, nginx's workers would run as nobody and could not reach the socket in our 0700 dir.
        user = "user root root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(user=user, workers=workers, dir=self.dir, socket=socket,
                                          port=self.port, uwsgi_params="/etc/nginx/uwsgi_params"))
        self.process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.dir)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        import socket as socket_mod

        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"nginx exited: {(self.dir / 'nginx-error.log').read_text()[-2000:]}")
            try:
                socket_mod.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("nginx did not listen in time") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait(timeout=5)


# -- the stack --------------------------------------------------------------------------------------------

@dataclass
class Stack:
    """A private MariaDB with a migrated jobmon database, and uWSGI serving all three services on it;
    with ``front="nginx"`` also nginx in front of uWSGI's unix socket, and ``url`` is nginx's."""

    workdir: Path
    db: MariaDBServer
    config: JobmonConfig
    uwsgi_opts: list[str]
    front: str = "direct"
    nginx_workers: int = 1
    env: dict[str, str] | None = None  # for uWSGI, e.g. PYTHONPATH=<another checkout>/app
    server: UwsgiService | None = None
    nginx: Nginx | None = None
    _n: int = 0

    @property
    def socket(self) -> Path:
        return self.workdir / "uwsgi.sock"

    @property
    def url(self) -> str:
        if self.nginx is not None:
            return self.nginx.url
        assert self.server is not None
        return self.server.url

    @property
    def master_pid(self) -> int:
        assert self.server is not None
        return self.server.process.pid

    @property
    def mariadb_pid(self) -> int | None:
        return self.db.process.pid if self.db.process is not None else None

    def start_server(self) -> UwsgiService:
        opts = list(self.uwsgi_opts)
        if self.front == "nginx":
            # The http11 socket stays for the harness's health checks; nginx uses the unix socket.
            opts += ["--socket", str(self.socket), "--chmod-socket=666"]
        saved = harness_uwsgi.UWSGI_OPTIONS
        harness_uwsgi.UWSGI_OPTIONS = opts  # start_uwsgi reads the module global
        try:
            self._n += 1
            self.server = start_uwsgi(self.config, self.workdir / f"uwsgi{self._n}", extra_env=self.env)
        finally:
            harness_uwsgi.UWSGI_OPTIONS = saved
        # Wait for every worker to exist (health checks may all have hit one worker).
        want = int(option_value(self.uwsgi_opts, "--processes") or 1)
        deadline = time.monotonic() + 20
        while len(children(self.master_pid)) < want and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.front == "nginx" and self.nginx is None:
            self.nginx = Nginx(self.workdir, self.socket, self.nginx_workers)
        return self.server

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart_server(self) -> UwsgiService:
        self.stop_server()
        return self.start_server()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
            self.nginx = None
        self.stop_server()

    def monitor(self, interval: float = 0.2) -> ProcMonitor:
        nginx_pid = self.nginx.process.pid if self.nginx is not None else None
        return ProcMonitor(self.master_pid, self.mariadb_pid, nginx_pid, interval)

    def client_config(self, **kwargs: Any) -> ClientConfig:
        return ClientConfig(service_url=self.url, **kwargs)

    def shape(self) -> str:
        o = self.uwsgi_opts
        front = f"nginx({self.nginx_workers})->uwsgi socket" if self.front == "nginx" else "http11-socket"
        return f"{option_value(o, '--processes')}x{option_value(o, '--threads')} {front}"

    def describe(self) -> str:
        o = self.uwsgi_opts
        logging_note = "request logging off" if "--disable-logging" in o else "request logging on"
        front = (f"behind nginx ({self.nginx_workers} worker) over a unix socket" if self.front == "nginx"
                 else "clients straight to its --http11-socket")
        return (f"uWSGI --processes {option_value(o, '--processes')} --threads "
                f"{option_value(o, '--threads')} ({logging_note}, lazy-apps), {front}; "
                "MariaDB with the harness's tuning (innodb_flush_log_at_trx_commit=0, no binlog, "
                "buffer pool 128M)")


@contextmanager
def stack(
    processes: int | None = None,
    threads: int | None = None,
    request_logging: bool = False,
    extra: Sequence[str] = (),
    db_pool_size: int | None = None,
    front: str = "direct",
    nginx_workers: int = 1,
    keep: bool = False,
    app_dir: Path | None = None,
) -> Iterator[Stack]:
    """Start MariaDB, make and migrate the ``jobmon`` database, start uWSGI (and nginx); stop them all
    afterwards. ``app_dir``: serve (and migrate with) the jobmon package under this directory, e.g. the
    ``app`` of another revision's checkout, instead of the one this process imports."""
    if front not in {"direct", "nginx"}:
        raise ValueError(f"front must be direct or nginx, not {front!r}")
    workdir = Path(tempfile.mkdtemp(prefix="jobmon-bench-"))
    db = MariaDBServer.start()
    st: Stack | None = None
    try:
        urls = db.urls("jobmon")  # the harness creates and grants the ``jobmon`` database at start
        env = {"PYTHONPATH": str(app_dir)} if app_dir is not None else None
        _migrate(urls.migrate, env)
        server_kwargs: dict[str, Any] = {}
        if db_pool_size is not None:
            server_kwargs["db_pool_size"] = db_pool_size
        config = JobmonConfig(server=ServerConfig(
            db_url=urls.read_write, db_url_read_only=urls.read_only, db_url_migrate=urls.migrate,
            log_level="INFO", **server_kwargs,
        ))
        st = Stack(workdir, db, config, uwsgi_options(processes, threads, request_logging, extra),
                   front=front, nginx_workers=nginx_workers, env=env)
        st.start_server()
        yield st
    finally:
        if st is not None:
            st.stop()
        db.stop()
        if keep:
            print(f"(kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _migrate(url: str, env: dict[str, str] | None) -> None:
    if env is None:
        from jobmon.server import migrate

        migrate.upgrade(url)
        return
    import subprocess

    # The URL travels in the environment, not the command line, which any process could read.
    subprocess.run([sys.executable, "-c", "import os; from jobmon.server import migrate; "
                    "migrate.upgrade(os.environ['BENCH_MIGRATE_URL'])"],
                   env={**os.environ, **env, "BENCH_MIGRATE_URL": url}, check=True, timeout=300)


def add_stack_arguments(ap: Any) -> None:
    """The uWSGI/nginx options both benchmarks take."""
    ap.add_argument("--processes", type=int, default=None, help="uWSGI processes (default: the harness's, 2)")
    ap.add_argument("--threads", type=int, default=None, help="uWSGI threads (default: the harness's, 4)")
    ap.add_argument("--front", choices=["direct", "nginx"], default="direct",
                    help="direct: clients talk to uWSGI's --http11-socket (the harness's setup); nginx: "
                         "nginx in front over a unix socket, as the appliance runs it")
    ap.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes (default 1)")
    ap.add_argument("--request-logging", action="store_true",
                    help="keep uWSGI's per-request log (production disables it)")
    ap.add_argument("--uwsgi-extra", default="", help="extra uWSGI flags, space-separated")
    ap.add_argument("--db-pool-size", type=int, default=None, help="server db_pool_size")


def stack_from_args(args: Any) -> Any:
    return stack(args.processes, args.threads, args.request_logging, args.uwsgi_extra.split(),
                 args.db_pool_size, args.front, args.nginx_workers)


# -- profiling ---------------------------------------------------------------------------------------------

PY_SPY = Path(sys.executable).parent / "py-spy"


@contextmanager
def py_spy(master_pid: int, out: Path, rate: int = 200, idle: bool = True) -> Iterator[Path]:
    """Sample the uWSGI master and its workers with py-spy (``pip install py-spy``) while the block runs;
    the collapsed stacks go to ``out`` (one ``frame;frame;... count`` line per stack).

    ``idle`` (default) keeps samples of threads blocked in a system call, so time a request spends
    waiting for MariaDB shows up (as pymysql socket reads); the summary drops threads that are not
    handling a request (uWSGI threads waiting in accept). ``idle=False`` samples only the thread holding
    the GIL (``--gil``): the Python CPU of each worker."""
    import signal
    import subprocess

    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} not found: .venv/bin/pip install py-spy")
    args = [str(PY_SPY), "record", "--pid", str(master_pid), "--subprocesses", "--format", "raw",
            "--rate", str(rate), "--output", str(out), "--nonblocking"]
    # Wall mode (idle): every thread, blocked or not. CPU mode: only the thread holding the GIL, i.e.
    # where the workers' Python CPU goes (socket waits and GIL waits drop out).
    args.append("--idle" if idle else "--gil")
    log = out.with_suffix(".log")
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
    time.sleep(1.0)  # let it attach to every process
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _frame_name(frame: str) -> tuple[str, str]:
    """('function', 'file') of a py-spy raw frame 'function (path/to/file.py:123)'."""
    m = frame.rsplit(" (", 1)
    if len(m) != 2:
        return frame, ""
    func, where = m
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/app/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return func, path


def summarize_profile(path: Path, top: int = 25, focus: str = "jobmon/") -> str:
    """Shares of request-handling wall time from py-spy's collapsed output (samples of threads inside a
    Flask request only): where requests wait (MariaDB round trips vs Python CPU), by library (self), by
    jobmon function (inclusive) and by leaf function."""
    from collections import Counter

    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    lib: Counter[str] = Counter()
    kind: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return f"(no profile at {path})"
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [f for f in stack.split(";") if " (" in f and not f.startswith(("process ", "thread "))]
        if not any("flask/app.py" in f for f in frames):
            continue  # a uWSGI thread waiting for a request, or the master
        total += count
        func, file = _frame_name(frames[-1])
        self_c[f"{file}:{func}"] += count
        files = [_frame_name(f)[1] for f in frames]
        if file.startswith("socket.py") and any(f.startswith("pymysql/") for f in files):
            kind["waiting for MariaDB (pymysql socket read)"] += count
        elif any(f.startswith("pymysql/") for f in files):
            kind["pymysql (CPU: escaping, packets)"] += count
        elif any(f.startswith("sqlalchemy/") for f in files):
            kind["SQLAlchemy (CPU: compile, params, rows)"] += count
        elif any(f.startswith("json/") or "get_json" in f for f in frames):
            kind["JSON decode/encode"] += count
        elif any(f.startswith("jobmon/") for f in files):
            kind["jobmon Python (validation, row building)"] += count
        else:
            kind["Flask/Werkzeug/other"] += count
        top_lib = file.split("/", 1)[0] if "/" in file else file
        lib[top_lib] += count
        seen: set[str] = set()
        for frame in frames:
            func, file = _frame_name(frame)
            key = f"{file}:{func}"
            if focus in file and key not in seen:
                seen.add(key)
                incl[key] += count
    if not total:
        return "(profile is empty)"

    def table(title: str, counter: Counter[str]) -> list[str]:
        lines = [title]
        for key, n in counter.most_common(top):
            lines.append(f"  {100 * n / total:5.1f}%  {key}")
        return lines

    out = [f"{total} samples of threads handling a request (all uWSGI workers; "
           f"{total / 200:.1f} s at 200 Hz)"]
    out += table("where request time goes:", kind)
    out += table("by library/package (self):", lib)
    out += table(f"inclusive, {focus} frames:", incl)
    out += table("self (leaf) time:", self_c)
    return "\n".join(out)
