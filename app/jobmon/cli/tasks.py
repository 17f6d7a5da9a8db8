"""``jobmon`` commands about single tasks: task_status and update_task_status."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from jobmon.cli.service import Service
from jobmon.core import routes
from jobmon.core.cli_support import clean_cell, print_json, print_table
from jobmon.core.display import human_bytes, human_seconds
from jobmon.core.states import TaskInstanceStatus, TaskStatus, status_name

# LAST_ERROR is the last column: wide enough for a first line and the message it introduces.
ERROR_WIDTH = 120


def cmd_task_status(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    # Fetch every task before printing, so an unknown id fails without half a table.
    details = [svc.get(routes.viz_task(task_id)) for task_id in dict.fromkeys(args.task_id)]
    if args.json:
        print_json({"tasks": details}, out)
        return
    rows: list[list[Any]] = []
    for task in details:
        instances: list[dict[str, Any]] = task.get("instances", [])
        # ATTEMPTS counts this run's (a resume or reset starts again from 0); INSTANCES every run's.
        head = [task["task_id"], task.get("workflow_id"), clean_cell(task.get("name"), 30),
                status_name(TaskStatus, task.get("status")),
                f"{task.get('num_attempts', 0)}/{task.get('max_attempts', 0)}", len(instances)]
        if not instances:
            rows.append([*head, None, None, None, None, None, None, None, None])
        for ti in instances:
            rows.append([*head, ti["task_instance_id"], status_name(TaskInstanceStatus, ti.get("status")),
                         ti.get("executor_id"), ti.get("node_name"), ti.get("exit_code"),
                         human_seconds(ti.get("wallclock")), human_bytes(ti.get("maxrss")),
                         clean_cell(last_error(ti), ERROR_WIDTH)])
    headers = ["TASK_ID", "WF_ID", "NAME", "STATUS", "ATTEMPTS", "INSTANCES", "TI_ID", "TI_STATUS",
               "EXECUTOR_ID", "NODE", "EXIT", "WALLCLOCK", "MAXRSS", "LAST_ERROR"]
    print_table(headers, rows, {0, 1, 4, 5, 6, 10, 11, 12}, out)


def last_error(instance: dict[str, Any]) -> str | None:
    """An instance's latest error description on one line: its first line, and when that line ends with
    a colon (it introduces what follows, e.g. "exit code 2; stderr tail:"), the last line after it,
    where a traceback or a failing tool says what went wrong."""
    errors = instance.get("errors") or []
    description = str(errors[-1].get("description") or "") if errors else ""
    lines = [line.strip() for line in description.splitlines() if line.strip()]
    if not lines:
        return None
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def cmd_update_task_status(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    task_ids = list(dict.fromkeys(args.task_id))
    answer = svc.put(routes.set_task_statuses(args.workflow_id),
                     {"task_ids": task_ids, "status": args.status})
    if args.json:
        print_json(answer, out)
        return
    updated = answer.get("updated")
    extra = " (with their downstream tasks)" if args.status == TaskStatus.REGISTERED else ""
    out.write(f"workflow {args.workflow_id}: {updated} task(s) set to {status_name(TaskStatus, args.status)}"
              f"{extra}\n")
