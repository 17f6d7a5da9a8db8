"""``jobmon-server``: schema migrations, queue limits and a development server.

    jobmon-server [--config PATH] db upgrade [REV]      migrate to REV (default: head)
    jobmon-server [--config PATH] db downgrade REV      migrate down to REV ("base" removes the schema)
    jobmon-server [--config PATH] db current [--check]  the database's revision and whether it is head
    jobmon-server [--config PATH] queue list            the cluster queues and their limits
    jobmon-server [--config PATH] queue set NAME [--max-cores N] [--max-memory-mb MB] [--max-runtime-s S]
    jobmon-server [--config PATH] serve [--host H] [--port P] [--services state,query,viz]

Database URLs carry passwords, so they come only from the config file and ``JOBMON_SERVER_*`` variables,
never from the command line (where ``ps`` and shell history would show them). Migrations use the
migrate URL (``server.db_url_migrate``, else ``server.db_url``); ``queue list`` reads with the read-only
URL (``server.db_url_read_only``, else ``server.db_url``) and ``queue set`` writes with ``server.db_url``.

Exit status: 0 success; 1 an error (one line on stderr, no traceback); 2 bad usage; 3 ``db current
--check`` found the database behind head.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Callable, Sequence

import jobmon
from jobmon.core.cli_support import CONFIG_HELP, fail, int_argument, print_table
from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.core.display import human_bytes, human_seconds

PROG = "jobmon-server"
EXIT_ERROR = 1
EXIT_NOT_HEAD = 3
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
# The queue table's limits are INT columns.
MAX_LIMIT = 2**31 - 1


class CliError(Exception):
    """An error the user can act on; main() prints it as one line."""


def _services(text: str) -> tuple[str, ...]:
    from jobmon.server.app import SERVICES

    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in SERVICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(SERVICES)}; got {text!r}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Jobmon server: database migrations, queue limits and a development server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {jobmon.__version__}")
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="schema migrations (Alembic) with the migrate URL")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    up = db_commands.add_parser("upgrade", help="migrate up to REV (default head)")
    up.add_argument("revision", nargs="?", default="head", metavar="REV")
    up.set_defaults(handler=_db_migrate)
    down = db_commands.add_parser("downgrade", help='migrate down to REV ("base" drops every jobmon table)')
    down.add_argument("revision", metavar="REV")
    down.set_defaults(handler=_db_migrate)
    cur = db_commands.add_parser("current", help="print the database's revision and whether it is head")
    cur.add_argument("--check", action="store_true",
                     help=f"exit {EXIT_NOT_HEAD} when the database is not at head")
    cur.set_defaults(handler=_db_current)

    queue = commands.add_parser(
        "queue", help="the cluster queues whose limits cap what tasks ask for (table queue)"
    )
    queue_commands = queue.add_subparsers(dest="queue_command", required=True, metavar="QUEUE_COMMAND")
    queue_commands.add_parser("list", help="every queue and its limits").set_defaults(handler=_queue_list)
    set_ = queue_commands.add_parser(
        "set", help="add a queue (all three limits needed) or change some limits of one"
    )
    set_.add_argument("name", metavar="NAME", help="the queue's name as Grid Engine knows it, e.g. all.q")
    limit = int_argument(1, MAX_LIMIT)
    set_.add_argument("--max-cores", type=limit, metavar="N", help="most cores a task may ask for")
    set_.add_argument("--max-memory-mb", type=limit, metavar="MB", help="most memory, in MiB")
    set_.add_argument("--max-runtime-s", type=limit, metavar="S", help="longest runtime, in seconds")
    set_.set_defaults(handler=_queue_set)

    serve = commands.add_parser(
        "serve", help="development server (werkzeug) on a loopback address; production runs uWSGI"
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int_argument(1, 65535), default=8070, help="TCP port (default 8070)")
    serve.add_argument("--services", type=_services, default=None, metavar="LIST",
                       help="comma list of state,query,viz (default all three)")
    serve.set_defaults(handler=_serve)
    return parser


# -- db -------------------------------------------------------------------------------------------------

def _safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _describe(url: str) -> str:
    from jobmon.server import migrate

    rev = migrate.current(url)
    head = migrate.head()
    if rev is None:
        return f"base (empty database; head is {head})"
    if rev == head:
        return f"{rev} (head)"
    return f"{rev} (not head; head is {head})"


def _show_alembic_progress() -> None:
    # Alembic reports each step it runs ("Running upgrade  -> 0001, ...") at INFO, among chatter.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(
        lambda record: record.levelno > logging.INFO or record.getMessage().startswith("Running")
    )
    log = logging.getLogger("alembic")
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _db_migrate(args: argparse.Namespace, config: JobmonConfig) -> int:
    from jobmon.server import migrate

    url = config.server.migrate_url
    _show_alembic_progress()
    step = migrate.upgrade if args.db_command == "upgrade" else migrate.downgrade
    step(url, args.revision)
    print(f"database {_safe_url(url)} at revision {_describe(url)}")
    return 0


def _db_current(args: argparse.Namespace, config: JobmonConfig) -> int:
    from jobmon.server import migrate

    url = config.server.migrate_url
    print(_describe(url))
    if args.check and migrate.current(url) != migrate.head():
        return EXIT_NOT_HEAD
    return 0


# -- queue ----------------------------------------------------------------------------------------------

QUEUE_COLUMNS = ("max_cores", "max_memory_mb", "max_runtime_s")


def _queue_list(args: argparse.Namespace, config: JobmonConfig) -> int:
    from sqlalchemy import select

    from jobmon.server.db import make_engine
    from jobmon.server.models import Queue

    engine = make_engine(config.server.read_only_url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Queue.name, Queue.max_cores, Queue.max_memory_mb, Queue.max_runtime_s)
                .order_by(Queue.name)
            ).all()
    finally:
        engine.dispose()
    if not rows:
        print("no queues: add one with 'jobmon-server queue set NAME --max-cores N --max-memory-mb MB "
              "--max-runtime-s S'")
        return 0
    print_table(["NAME", *(column.upper() for column in QUEUE_COLUMNS)], rows, {1, 2, 3}, sys.stdout)
    return 0


def _queue_set(args: argparse.Namespace, config: JobmonConfig) -> int:
    from sqlalchemy import select

    from jobmon.server.db import make_engine, make_sessionmaker, transaction
    from jobmon.server.models import Queue

    name = args.name.strip()
    if not name or len(name) > 255:
        raise CliError(f"a queue name has 1 to 255 characters, got {args.name!r}")
    given = {column: getattr(args, column) for column in QUEUE_COLUMNS if getattr(args, column) is not None}
    if not given:
        raise CliError("queue set: give at least one of --max-cores, --max-memory-mb, --max-runtime-s")
    engine = make_engine(config.server.db_url, pool_size=1)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            queue = session.execute(select(Queue).where(Queue.name == name).with_for_update()).scalar()
            if queue is None:
                missing = [f"--{column.replace('_', '-')}" for column in QUEUE_COLUMNS if column not in given]
                if missing:
                    raise CliError(f"queue {name} does not exist; a new queue needs {', '.join(missing)} too")
                queue = Queue(name=name, **given)
                session.add(queue)
                verb = "added"
            else:
                for column, value in given.items():
                    setattr(queue, column, value)
                verb = "changed"
            cores, memory_mb, runtime_s = queue.max_cores, queue.max_memory_mb, queue.max_runtime_s
    finally:
        engine.dispose()
    memory = human_bytes(memory_mb * 1024**2)
    print(f"queue {name} {verb}: at most {cores} cores, {memory_mb} MiB ({memory}), "
          f"{runtime_s} s ({human_seconds(runtime_s)})")
    return 0


# -- serve ----------------------------------------------------------------------------------------------

def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace, config: JobmonConfig) -> int:
    from werkzeug.serving import run_simple

    from jobmon.server import migrate
    from jobmon.server.app import SERVICES, create_app

    if not _is_loopback(args.host):
        raise CliError(
            f"serve binds loopback addresses only (127.0.0.1, ::1, localhost), not {args.host!r}: "
            "it is a development server; production runs uWSGI behind nginx"
        )
    services = args.services or SERVICES
    # Fail now, with a clear line, rather than on the first request; a schema behind head only warns.
    url = _url_in_use(args, config)
    rev = migrate.current(url)
    if rev != migrate.head():
        print(f"{PROG}: warning: database is at {rev or 'base'}, head is {migrate.head()}; "
              f"run '{PROG} db upgrade'", file=sys.stderr)
    app = create_app(config, services=services)
    print(f"{PROG}: serving {','.join(services)} on http://{args.host}:{args.port} (development server)",
          file=sys.stderr)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


# -- entry point ----------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, JobmonConfig], int] = args.handler
    url = "the database"
    try:
        config = JobmonConfig.load(args.config)
        url = _safe_url(_url_in_use(args, config))
        return handler(args, config)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    except CliError as exc:
        return _fail(str(exc))
    except CommandError as exc:
        return _fail(f"migration error: {exc}")
    except ArgumentError as exc:
        return _fail(f"not a usable database URL (server.db_url*): {exc}")
    except DBAPIError as exc:
        # exc.orig is the driver's own message, e.g. (2003, "Can't connect to MySQL server on ...").
        return _fail(f"database error at {url}: {exc.orig}")
    except SQLAlchemyError as exc:
        return _fail(f"database error at {url}: {exc}")
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


def _url_in_use(args: argparse.Namespace, config: JobmonConfig) -> str:
    if args.command == "db":
        return config.server.migrate_url
    if args.command == "queue":
        return config.server.read_only_url if args.queue_command == "list" else config.server.db_url
    if args.services and "state" not in args.services:
        return config.server.read_only_url
    return config.server.db_url


def _fail(message: str) -> int:
    return fail(PROG, message, EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
