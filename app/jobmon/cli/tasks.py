"""``jobmon`` commands about single tasks: task_status and update_task_status."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from jobmon.cli.service import Service
from jobmon.core import routes
from jobmon.core.cli_support import clean_cell, print_json, print_table
from jobmon.core.display import human_bytes, human_seconds
from jobmon.core.states import TaskInstanceStatus, TaskStatus, status_name


def cmd_task_status(svc: Service, args: argparse.Namespace, out: TextIO) -> None:
    # Fetch every task before printing, so an unknown id fails without half a table.
    details = [svc.get(routes.viz_task(task_id)) for task_id in dict.fromkeys(args.task_id)]
    if args.json:
        print_json({"tasks": details}, out)
        return
    rows: list[list[Any]] = []
    for task in details:
        head = [task["task_id"], task.get("workflow_id"), clean_cell(task.get("name"), 30),
                status_name(TaskStatus, task.get("status")),
                f"{task.get('num_attempts', 0)}/{task.get('max_attempts', 0)}"]
        instances: list[dict[str, Any]] = task.get("instances", [])
        if not instances:
            rows.append([*head, None, None, None, None, None, None, None, None])
        for ti in instances:
            rows.append([*head, ti["task_instance_id"], status_name(TaskInstanceStatus, ti.get("status")),
                         ti.get("executor_id"), ti.get("node_name"), ti.get("exit_code"),
                         human_seconds(ti.get("wallclock")), human_bytes(ti.get("maxrss")),
                         clean_cell(_last_error(ti), 60)])
    headers = ["TASK_ID", "WF_ID", "NAME", "STATUS", "ATTEMPTS", "TI_ID", "TI_STATUS", "EXECUTOR_ID",
               "NODE", "EXIT", "WALLCLOCK", "MAXRSS", "LAST_ERROR"]
    print_table(headers, rows, {0, 1, 4, 5, 9, 10, 11}, out)


def _last_error(instance: dict[str, Any]) -> str | None:
    """First line of an instance's latest error description."""
    errors = instance.get("errors") or []
    lines = str(errors[-1].get("description") or "").strip().splitlines() if errors else []
    return lines[0] if lines else None


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
