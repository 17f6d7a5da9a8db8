"""`jobmon`: the workflow author's command line.

Read commands ask the Visualization server's JSON routes (/api/viz/...); write commands ask the State
Manager's operator routes (/api/state/...). Output is an aligned table for people, or the service's JSON
with --json for scripts. Every failure is one line on stderr and a non-zero exit status:

  1  the service refused the request (unknown id, a state that forbids it, ...)
  2  a bad argument or configuration
  3  the service is unreachable or failed

The commands are in ``workflows.py`` and ``tasks.py``, the HTTP side in ``service.py``. The package needs
only the base install (requests): it runs on cluster submit hosts.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from jobmon.cli.service import EXIT_USAGE, CliError, Service
from jobmon.cli.tasks import cmd_task_status, cmd_update_task_status
from jobmon.cli.workflows import (
    MAX_WORKFLOWS,
    cmd_concurrency_limit,
    cmd_workflow_reset,
    cmd_workflow_status,
    cmd_workflow_tasks,
)
from jobmon.core.cli_support import int_argument, non_negative_int, positive_int, positive_seconds
from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.core.states import TaskStatus


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and exits on a bad argument; we want one line and our exit code."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("jobmon").strip()
        where = f"{command}: " if command else ""
        raise CliError(f"{where}{message} (see '{self.prog} --help')", EXIT_USAGE)


def _task_status(text: str) -> str:
    """A task status by letter (D) or name (DONE, done)."""
    wanted = text.strip().upper()
    for status in TaskStatus:
        if wanted in (status.value, status.name):
            return status.value
    choices = ", ".join(f"{s.value} ({s.name})" for s in TaskStatus)
    raise argparse.ArgumentTypeError(f"unknown task status {text!r}; one of {choices}")


def _settable_status(text: str) -> str:
    letter = _task_status(text)
    if letter not in (TaskStatus.DONE, TaskStatus.REGISTERED):
        raise argparse.ArgumentTypeError(f"status must be D (DONE) or G (REGISTERED), got {text!r}")
    return letter


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
    common.add_argument("--timeout", type=positive_seconds, default=argparse.SUPPRESS,
                        help="seconds to wait for an answer (default: [client] request_timeout)")
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=positive_seconds, default=None, help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("workflow_status", cmd_workflow_status,
            "Workflows with their task counts (your own by default).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", nargs="+",
                   action="extend", type=positive_int, metavar="ID", help="only these workflows")
    p.add_argument("-u", "--user", help="workflows run by this user (default: you)")
    p.add_argument("-a", "--all_users", "--all-users", dest="all_users", action="store_true",
                   help="workflows of every user")
    p.add_argument("-l", "--limit", type=int_argument(1, MAX_WORKFLOWS), default=5,
                   help="newest N workflows (default 5, at most 1000)")

    p = add("workflow_tasks", cmd_workflow_tasks, "The tasks of a workflow and their status.")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=positive_int,
                   required=True, metavar="ID")
    p.add_argument("-s", "--status", nargs="+", action="extend", type=_task_status, metavar="STATUS",
                   help="only tasks in these statuses, by letter or name (e.g. F or FATAL)")
    p.add_argument("-l", "--limit", type=non_negative_int, default=1000,
                   help="show at most N tasks (default 1000; 0 shows all)")

    p = add("task_status", cmd_task_status, "Tasks, their instances, usage and last error.")
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", nargs="+", action="extend",
                   type=positive_int, required=True, metavar="ID")

    p = add("workflow_reset", cmd_workflow_reset,
            "Set every task of a workflow back to REGISTERED (refused while a run is active).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=positive_int,
                   required=True, metavar="ID")

    p = add("update_task_status", cmd_update_task_status,
            "Mark tasks DONE (D) or back to REGISTERED (G, with everything downstream of them).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=positive_int,
                   required=True, metavar="ID")
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", nargs="+", action="extend",
                   type=positive_int, required=True, metavar="ID")
    p.add_argument("-s", "--status", type=_settable_status, required=True, metavar="D|G")

    p = add("concurrency_limit", cmd_concurrency_limit,
            "Change how many tasks of a workflow may run at once (takes effect while it runs).")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", type=positive_int,
                   required=True, metavar="ID")
    p.add_argument("-m", "--max_tasks", "--max-tasks", dest="max_tasks", type=non_negative_int,
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
