"""``jobmon`` commands about whole workflows: workflow_status, workflow_tasks, workflow_reset and
concurrency_limit."""

from __future__ import annotations

import argparse
import getpass
from typing import Any, TextIO

from jobmon.cli.service import CliError, Service
from jobmon.core import routes
from jobmon.core.cli_support import clean_cell, print_json, print_table
from jobmon.core.states import TaskStatus as T
from jobmon.core.states import WorkflowStatus, status_name

# workflow_status groups the eight task states into columns a person can scan.
TASK_GROUPS: tuple[tuple[str, tuple[T, ...]], ...] = (
    ("PENDING", (T.REGISTERED, T.QUEUED, T.INSTANTIATED)),  # not running yet
    ("RUNNING", (T.RUNNING,)),
    ("RETRYING", (T.ERROR_RECOVERABLE, T.ADJUSTING_RESOURCES)),  # another attempt will follow
    ("DONE", (T.DONE,)),
    ("FATAL", (T.ERROR_FATAL,)),
)

# A page of tasks per request when workflow_tasks lists more than one page.
TASK_PAGE = 10_000
NAME_WIDTH = 40
MAX_WORKFLOWS = 1000  # the most /api/viz/workflows answers at once


def _time(value: str | None) -> str:
    """ISO timestamp to the second, space-separated (UTC)."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19]


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
        print_json(answer, out)
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
        groups = [sum(counts.get(status, 0) for status in statuses) for _, statuses in TASK_GROUPS]
        done = f"{100 * counts.get(T.DONE, 0) / total:.1f}" if total else "-"
        rows.append([wf["workflow_id"], clean_cell(wf.get("name"), NAME_WIDTH),
                     status_name(WorkflowStatus, wf.get("status")), wf.get("user"),
                     _time(wf.get("created_date")), total, *groups, done])
    numeric = {0, 5, *range(6, 6 + len(TASK_GROUPS) + 1)}
    print_table(headers, rows, numeric, out)


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
        print_json({"workflow_id": args.workflow_id, "total": total, "tasks": tasks}, out)
        return
    which = f" in status {', '.join(status_name(T, s) for s in statuses)}" if statuses else ""
    if not tasks:
        out.write(f"workflow {args.workflow_id} has no tasks{which}\n")
        return
    rows = [[t["task_id"], clean_cell(t.get("name"), NAME_WIDTH), status_name(T, t.get("status")),
             f"{t.get('num_attempts', 0)}/{t.get('max_attempts', 0)}"] for t in tasks]
    print_table(["TASK_ID", "NAME", "STATUS", "ATTEMPTS"], rows, {0, 3}, out)
    if len(tasks) < total:
        out.write(f"(showing {len(tasks)} of {total} tasks{which}; -l 0 lists all)\n")


def cmd_workflow_reset(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    answer = svc.post(routes.workflow_reset(args.workflow_id), {})
    if args.json:
        print_json(answer, out)
        return
    out.write(f"workflow {args.workflow_id} reset: every task back to REGISTERED, workflow status "
              f"{status_name(WorkflowStatus, answer.get('status'))}\n")


def cmd_concurrency_limit(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    answer = svc.put(routes.max_concurrently_running(args.workflow_id),
                     {"limit": args.max_tasks})
    if args.json:
        print_json(answer, out)
        return
    limit = answer.get("max_concurrently_running", args.max_tasks)
    out.write(f"workflow {args.workflow_id}: at most {limit} task(s) run at once\n")
