"""`jobmon`: the workflow author's command line.

Read commands ask the Visualization server's JSON routes (/api/viz/...); write commands ask the State
Manager's operator routes (/api/state/...). Output is an aligned table for people, or the service's JSON
with --json for scripts. Every failure is one line on stderr and a non-zero exit status:

  1  the service refused the request (unknown id, a state that forbids it, ...)
  2  a bad argument or configuration
  3  the service is unreachable or failed

This module needs only the base install (requests): it runs on cluster submit hosts.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TextIO

from jobmon.core import routes
from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.core.states import TaskInstanceStatus, TaskStatus, WorkflowStatus

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

WORKFLOW_NAMES = {s.value: s.name for s in WorkflowStatus}
TASK_NAMES = {s.value: s.name for s in TaskStatus}
TASK_INSTANCE_NAMES = {s.value: s.name for s in TaskInstanceStatus}

# workflow_status groups the eight task states into columns a person can scan.
TASK_GROUPS: tuple[tuple[str, str], ...] = (
    ("PENDING", "GQI"),  # registered, queued, instantiated: not running yet
    ("RUNNING", "R"),
    ("RETRYING", "EA"),  # failed an attempt, another one will follow
    ("DONE", "D"),
    ("FATAL", "F"),
)

# Retries of a failed connection or a 502/503/504, and the most seconds spent waiting between them.
CLI_RETRIES = 2
CLI_MAX_RETRY_WAIT = 5.0

# A page of tasks per request when workflow_tasks lists more than one page.
TASK_PAGE = 10_000
NAME_WIDTH = 40
MAX_WORKFLOWS = 1000  # the most /api/viz/workflows answers at once


class CliError(Exception):
    """A failure reported as one line on stderr."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and exits on a bad argument; we want one line and our exit code."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("jobmon").strip()
        where = f"{command}: " if command else ""
        raise CliError(f"{where}{message} (see '{self.prog} --help')", EXIT_USAGE)


# ---- HTTP ----------------------------------------------------------------------------------------


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


# ---- formatting ----------------------------------------------------------------------------------


def _clean(value: Any, width: int | None = None) -> str:
    """A cell: no control characters (a name must not break the table or the terminal), truncated."""
    text = "-" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int],
           out: TextIO) -> None:
    """Columns aligned on the widest cell; numeric columns right-aligned."""
    cells = [[_clean(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if i in numeric else v.ljust(w)
                 for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "  ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _time(value: str | None) -> str:
    """ISO timestamp to the second, space-separated (UTC)."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19]


def human_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    hours, rest = divmod(round(value), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def _name(names: dict[str, str], letter: str | None) -> str:
    if letter is None:
        return "-"
    return names.get(letter, letter)


def _print_json(answer: Any, out: TextIO) -> None:
    out.write(json.dumps(answer, indent=2) + "\n")


# ---- argument types ------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _bounded_int(maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {text!r}")
        return value

    return parse


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _task_status(text: str) -> str:
    """A task status by letter (D) or name (DONE, done)."""
    upper = text.strip().upper()
    if upper in TASK_NAMES:
        return upper
    for letter, name in TASK_NAMES.items():
        if upper == name:
            return letter
    choices = ", ".join(f"{k} ({v})" for k, v in TASK_NAMES.items())
    raise argparse.ArgumentTypeError(f"unknown task status {text!r}; one of {choices}")


def _settable_status(text: str) -> str:
    letter = _task_status(text)
    if letter not in ("D", "G"):
        raise argparse.ArgumentTypeError(f"status must be D (DONE) or G (REGISTERED), got {text!r}")
    return letter


# ---- commands ------------------------------------------------------------------------------------


def cmd_workflow_status(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    ids: list[int] = args.workflow_id or []
    params: dict[str, Any] = {"limit": max(args.limit, len(ids))}
    if ids:
        params["workflow_id"] = ids
    user = args.user
    if user is None and not ids and not args.all_users:
        user = getpass.getuser()  # like Guppy: your own workflows unless you ask otherwise
    if user is not None:
        params["user"] = user
    answer = svc.get(routes.VIZ_WORKFLOWS, params)
    workflows: list[dict[str, Any]] = answer.get("workflows", [])
    missing = sorted(set(ids) - {w["workflow_id"] for w in workflows})
    if missing:
        which = ", ".join(str(i) for i in missing)
        noun = "workflow" if len(missing) == 1 else "workflows"
        raise CliError(f"{noun} {which} not found" + (f" for user {user}" if user else ""))
    if args.json:
        _print_json(answer, out)
        return
    if not workflows:
        out.write(f"no workflows{f' for user {user}' if user else ''}\n")
        return
    headers = ["WF_ID", "NAME", "STATUS", "USER", "CREATED", "TASKS",
               *(g for g, _ in TASK_GROUPS), "%DONE"]
    rows = []
    for wf in workflows:
        counts: dict[str, int] = wf.get("tasks", {})
        total = wf.get("total", 0)
        groups = [sum(counts.get(letter, 0) for letter in letters) for _, letters in TASK_GROUPS]
        done = f"{100 * counts.get('D', 0) / total:.1f}" if total else "-"
        rows.append([wf["workflow_id"], _clean(wf.get("name"), NAME_WIDTH),
                     _name(WORKFLOW_NAMES, wf.get("status")), wf.get("user"),
                     _time(wf.get("created_date")), total, *groups, done])
    numeric = {0, 5, *range(6, 6 + len(TASK_GROUPS) + 1)}
    _table(headers, rows, numeric, out)


def cmd_workflow_tasks(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    wanted: int = args.limit  # 0: every task
    statuses: list[str] = list(dict.fromkeys(args.status or []))
    tasks: list[dict[str, Any]] = []
    total = 0
    after: int | None = None
    while True:
        page_size = TASK_PAGE if wanted == 0 else min(TASK_PAGE, wanted - len(tasks))
        params: dict[str, Any] = {"limit": page_size}
        if statuses:
            params["status"] = statuses
        if after is not None:
            params["after"] = after
        page = svc.get(routes.viz_workflow_tasks(args.workflow_id), params)
        got = page.get("tasks", [])
        tasks.extend(got)
        total = page.get("total", len(tasks))
        after = page.get("next_after")
        if after is None or not got or (wanted and len(tasks) >= wanted):
            break
    if args.json:
        _print_json({"workflow_id": args.workflow_id, "total": total, "tasks": tasks}, out)
        return
    which = f" in status {', '.join(TASK_NAMES[s] for s in statuses)}" if statuses else ""
    if not tasks:
        out.write(f"workflow {args.workflow_id} has no tasks{which}\n")
        return
    rows = [[t["task_id"], _clean(t.get("name"), NAME_WIDTH), _name(TASK_NAMES, t.get("status")),
             f"{t.get('num_attempts', 0)}/{t.get('max_attempts', 0)}"] for t in tasks]
    _table(["TASK_ID", "NAME", "STATUS", "ATTEMPTS"], rows, {0, 3}, out)
    if len(tasks) < total:
        out.write(f"(showing {len(tasks)} of {total} tasks{which}; -l 0 lists all)\n")


def cmd_task_status(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    # Fetch every task before printing, so an unknown id fails without half a table.
    details = [svc.get(routes.viz_task(task_id)) for task_id in dict.fromkeys(args.task_id)]
    if args.json:
        _print_json({"tasks": details}, out)
        return
    rows: list[list[Any]] = []
    for task in details:
        head = [task["task_id"], task.get("workflow_id"), _clean(task.get("name"), 30),
                _name(TASK_NAMES, task.get("status")),
                f"{task.get('num_attempts', 0)}/{task.get('max_attempts', 0)}"]
        instances: list[dict[str, Any]] = task.get("instances", [])
        if not instances:
            rows.append([*head, None, None, None, None, None, None, None, None])
        for ti in instances:
            rows.append([*head, ti["task_instance_id"], _name(TASK_INSTANCE_NAMES, ti.get("status")),
                         ti.get("executor_id"), ti.get("node_name"), ti.get("exit_code"),
                         human_seconds(ti.get("wallclock")), human_bytes(ti.get("maxrss")),
                         _clean(_last_error(ti), 60)])
    headers = ["TASK_ID", "WF_ID", "NAME", "STATUS", "ATTEMPTS", "TI_ID", "TI_STATUS", "EXECUTOR_ID",
               "NODE", "EXIT", "WALLCLOCK", "MAXRSS", "LAST_ERROR"]
    _table(headers, rows, {0, 1, 4, 5, 9, 10, 11}, out)


def _last_error(instance: dict[str, Any]) -> str | None:
    """First line of an instance's latest error description."""
    errors = instance.get("errors") or []
    lines = str(errors[-1].get("description") or "").strip().splitlines() if errors else []
    return lines[0] if lines else None


def cmd_workflow_reset(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    answer = svc.post(routes.workflow_reset(args.workflow_id), {})
    if args.json:
        _print_json(answer, out)
        return
    status = answer.get("status")
    out.write(f"workflow {args.workflow_id} reset: every task back to REGISTERED, workflow status "
              f"{_name(WORKFLOW_NAMES, status)}\n")


def cmd_update_task_status(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    task_ids = list(dict.fromkeys(args.task_id))
    answer = svc.put(routes.set_task_statuses(args.workflow_id),
                     {"task_ids": task_ids, "status": args.status})
    if args.json:
        _print_json(answer, out)
        return
    updated = answer.get("updated")
    extra = " (with their downstream tasks)" if args.status == "G" else ""
    out.write(f"workflow {args.workflow_id}: {updated} task(s) set to {TASK_NAMES[args.status]}{extra}\n")


def cmd_concurrency_limit(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    answer = svc.put(routes.max_concurrently_running(args.workflow_id),
                     {"limit": args.max_tasks})
    if args.json:
        _print_json(answer, out)
        return
    limit = answer.get("max_concurrently_running", args.max_tasks)
    out.write(f"workflow {args.workflow_id}: at most {limit} task(s) run at once\n")


Command = Callable[[Service, argparse.Namespace, TextIO], None]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jobmon",
        description="Inspect and steer Jobmon workflows.",
        epilog="Exit status: 0 success, 1 refused by the service (e.g. unknown id), 2 bad argument or "
               "configuration, 3 service unreachable or failing.",
    )
    # Options shared by every command; accepted before or after the command name. Subcommands default
    # to SUPPRESS so they do not overwrite a value given before the command.
    common = _Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help="service URL (default: [client] service_url of the Jobmon config)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the service's JSON instead of a table")
    common.add_argument("--timeout", type=_timeout, default=argparse.SUPPRESS,
                        help="seconds to wait for an answer (default: [client] request_timeout)")
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=_timeout, default=None, help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("workflow_status", cmd_workflow_status,
            "Workflows with their task counts (your own by default).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", nargs="+",
                   action="extend", type=_positive_int, metavar="ID", help="only these workflows")
    p.add_argument("-u", "--user", help="workflows run by this user (default: you)")
    p.add_argument("-a", "--all_users", "--all-users", dest="all_users", action="store_true",
                   help="workflows of every user")
    p.add_argument("-l", "--limit", type=_bounded_int(MAX_WORKFLOWS), default=5,
                   help="newest N workflows (default 5, at most 1000)")

    p = add("workflow_tasks", cmd_workflow_tasks, "The tasks of a workflow and their status.")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=_positive_int,
                   required=True, metavar="ID")
    p.add_argument("-s", "--status", nargs="+", action="extend", type=_task_status, metavar="STATUS",
                   help="only tasks in these statuses, by letter or name (e.g. F or FATAL)")
    p.add_argument("-l", "--limit", type=_non_negative_int, default=1000,
                   help="show at most N tasks (default 1000; 0 shows all)")

    p = add("task_status", cmd_task_status, "Tasks, their instances, usage and last error.")
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", nargs="+", action="extend",
                   type=_positive_int, required=True, metavar="ID")

    p = add("workflow_reset", cmd_workflow_reset,
            "Set every task of a workflow back to REGISTERED (refused while a run is active).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=_positive_int,
                   required=True, metavar="ID")

    p = add("update_task_status", cmd_update_task_status,
            "Mark tasks DONE (D) or back to REGISTERED (G, with everything downstream of them).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=_positive_int,
                   required=True, metavar="ID")
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", nargs="+", action="extend",
                   type=_positive_int, required=True, metavar="ID")
    p.add_argument("-s", "--status", type=_settable_status, required=True, metavar="D|G")

    p = add("concurrency_limit", cmd_concurrency_limit,
            "Change how many tasks of a workflow may run at once (takes effect while it runs).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=_positive_int,
                   required=True, metavar="ID")
    p.add_argument("-m", "--max_tasks", "--max-tasks", dest="max_tasks", type=_non_negative_int,
                   required=True, metavar="N")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        url: str | None = args.url
        timeout: float | None = args.timeout
        if url is None or timeout is None:
            client = JobmonConfig.load().client
            url = url or client.service_url
            timeout = timeout if timeout is not None else client.request_timeout
        if not (math.isfinite(timeout) and timeout > 0):
            raise CliError("[client] request_timeout must be positive", EXIT_USAGE)
        if not re.match(r"^https?://", url):
            raise CliError(f"service URL must start with http:// or https://, got {url!r}", EXIT_USAGE)
        args.func(Service(url, timeout), args, out)
    except CliError as exc:
        err.write(f"jobmon: {exc.message}\n")
        return exc.exit_code
    except ConfigError as exc:
        err.write(f"jobmon: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("jobmon: interrupted\n")
        return 130
    except BrokenPipeError:
        # `jobmon workflow_tasks ... | head` closes the pipe early: not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
