"""Status sets and their allowed transitions, shared by server, client and worker.

The letters are Guppy's (see docs/architecture.md for the meaning of each). A transition is one of:
  - valid: the server applies it;
  - ignored: a known late or racing report; the server logs it and leaves the row alone;
  - anything else: refused with HTTP 409.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class WorkflowStatus(StrEnum):
    REGISTERED = "G"
    BOUND = "B"
    ABORTED = "A"
    CREATED = "C"
    RUNNING = "R"
    SUSPENDED = "S"
    FAILED = "F"
    DONE = "D"


class WorkflowRunStatus(StrEnum):
    REGISTERED = "G"
    BOUND = "B"
    RUNNING = "R"
    DONE = "D"
    ABORTED = "A"
    STOPPED = "S"
    ERROR = "E"
    COLD_RESUME = "C"
    HOT_RESUME = "H"
    TERMINATED = "T"


class TaskStatus(StrEnum):
    REGISTERED = "G"
    QUEUED = "Q"
    INSTANTIATED = "I"
    RUNNING = "R"
    ERROR_RECOVERABLE = "E"
    ADJUSTING_RESOURCES = "A"
    ERROR_FATAL = "F"
    DONE = "D"


class TaskInstanceStatus(StrEnum):
    INSTANTIATED = "I"
    SUBMITTED_TO_BATCH_EXECUTOR = "B"
    RUNNING = "R"
    DONE = "D"
    ERROR = "E"
    UNKNOWN_ERROR = "U"
    RESOURCE_ERROR = "Z"
    NO_EXECUTOR_ID = "W"
    KILL_SELF = "K"


WF = WorkflowStatus
WFR = WorkflowRunStatus
T = TaskStatus
TI = TaskInstanceStatus

WORKFLOW_TRANSITIONS: dict[WorkflowStatus, frozenset[WorkflowStatus]] = {
    WF.REGISTERED: frozenset({WF.BOUND, WF.ABORTED}),
    WF.BOUND: frozenset({WF.CREATED, WF.RUNNING, WF.ABORTED}),
    WF.CREATED: frozenset({WF.RUNNING, WF.ABORTED, WF.FAILED}),
    WF.RUNNING: frozenset({WF.DONE, WF.FAILED, WF.SUSPENDED, WF.ABORTED}),
    # A failed, suspended or aborted workflow can be resumed: it is bound again by a new run.
    WF.FAILED: frozenset({WF.REGISTERED, WF.BOUND}),
    WF.SUSPENDED: frozenset({WF.REGISTERED, WF.BOUND}),
    WF.ABORTED: frozenset({WF.REGISTERED, WF.BOUND}),
    WF.DONE: frozenset(),
}

WORKFLOW_RUN_TRANSITIONS: dict[WorkflowRunStatus, frozenset[WorkflowRunStatus]] = {
    WFR.REGISTERED: frozenset({WFR.BOUND, WFR.ABORTED, WFR.ERROR}),
    WFR.BOUND: frozenset({WFR.RUNNING, WFR.ABORTED, WFR.ERROR, WFR.COLD_RESUME, WFR.HOT_RESUME}),
    WFR.RUNNING: frozenset(
        {WFR.DONE, WFR.STOPPED, WFR.ERROR, WFR.COLD_RESUME, WFR.HOT_RESUME, WFR.ABORTED}
    ),
    WFR.COLD_RESUME: frozenset({WFR.TERMINATED}),
    WFR.HOT_RESUME: frozenset({WFR.TERMINATED}),
    WFR.STOPPED: frozenset(),
    WFR.ERROR: frozenset(),
    WFR.DONE: frozenset(),
    WFR.ABORTED: frozenset(),
    WFR.TERMINATED: frozenset(),
}

# A run in one of these states belongs to a live client: a second run of the same workflow is refused
# unless the caller asks to resume.
ACTIVE_WORKFLOW_RUN_STATES = frozenset({WFR.REGISTERED, WFR.BOUND, WFR.RUNNING})

TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    T.REGISTERED: frozenset({T.QUEUED}),
    T.QUEUED: frozenset({T.INSTANTIATED}),
    T.INSTANTIATED: frozenset({T.RUNNING, T.ERROR_RECOVERABLE}),
    T.RUNNING: frozenset({T.DONE, T.ERROR_RECOVERABLE}),
    T.ERROR_RECOVERABLE: frozenset({T.ADJUSTING_RESOURCES, T.QUEUED, T.ERROR_FATAL}),
    T.ADJUSTING_RESOURCES: frozenset({T.QUEUED}),
    T.ERROR_FATAL: frozenset(),
    T.DONE: frozenset(),
}

TASK_INSTANCE_TRANSITIONS: dict[TaskInstanceStatus, frozenset[TaskInstanceStatus]] = {
    TI.INSTANTIATED: frozenset(
        {TI.SUBMITTED_TO_BATCH_EXECUTOR, TI.NO_EXECUTOR_ID, TI.KILL_SELF, TI.RUNNING,
         # a local executor can lose a process before it ever reported
         TI.UNKNOWN_ERROR}
    ),
    TI.SUBMITTED_TO_BATCH_EXECUTOR: frozenset(
        {TI.RUNNING, TI.UNKNOWN_ERROR, TI.RESOURCE_ERROR, TI.KILL_SELF}
    ),
    TI.RUNNING: frozenset(
        {TI.ERROR, TI.UNKNOWN_ERROR, TI.RESOURCE_ERROR, TI.KILL_SELF, TI.DONE}
    ),
    TI.DONE: frozenset(),
    TI.ERROR: frozenset(),
    TI.UNKNOWN_ERROR: frozenset(),
    TI.RESOURCE_ERROR: frozenset(),
    TI.NO_EXECUTOR_ID: frozenset(),
    TI.KILL_SELF: frozenset(),
}

# Late, racing reports: logged and ignored, never an error (e.g. the executor says "submitted" after the
# worker already said "running").
TASK_INSTANCE_IGNORED: frozenset[tuple[TaskInstanceStatus, TaskInstanceStatus]] = frozenset(
    {
        # The executor's "submitted" can arrive after a fast task already finished.
        (TI.RUNNING, TI.SUBMITTED_TO_BATCH_EXECUTOR),
        (TI.DONE, TI.SUBMITTED_TO_BATCH_EXECUTOR),
        (TI.ERROR, TI.SUBMITTED_TO_BATCH_EXECUTOR),
        (TI.RESOURCE_ERROR, TI.SUBMITTED_TO_BATCH_EXECUTOR),
        (TI.UNKNOWN_ERROR, TI.SUBMITTED_TO_BATCH_EXECUTOR),
        (TI.KILL_SELF, TI.SUBMITTED_TO_BATCH_EXECUTOR),
        (TI.ERROR, TI.UNKNOWN_ERROR),
        (TI.UNKNOWN_ERROR, TI.DONE),
        (TI.UNKNOWN_ERROR, TI.ERROR),
        (TI.UNKNOWN_ERROR, TI.RESOURCE_ERROR),
        (TI.RESOURCE_ERROR, TI.UNKNOWN_ERROR),
        (TI.DONE, TI.UNKNOWN_ERROR),
        (TI.KILL_SELF, TI.DONE),
        (TI.KILL_SELF, TI.ERROR),
        (TI.KILL_SELF, TI.RESOURCE_ERROR),
        (TI.KILL_SELF, TI.UNKNOWN_ERROR),
        (TI.NO_EXECUTOR_ID, TI.UNKNOWN_ERROR),
        (TI.DONE, TI.DONE),
        (TI.ERROR, TI.ERROR),
        (TI.RESOURCE_ERROR, TI.RESOURCE_ERROR),
        (TI.UNKNOWN_ERROR, TI.UNKNOWN_ERROR),
        (TI.RUNNING, TI.RUNNING),
    }
)

# An instance in one of these states that reports "running" is told to kill itself.
TASK_INSTANCE_SHOULD_DIE = frozenset(
    {TI.NO_EXECUTOR_ID, TI.UNKNOWN_ERROR, TI.RESOURCE_ERROR, TI.KILL_SELF}
)

# Instance states that end an attempt: the task leaves RUNNING/INSTANTIATED when one is reached.
TASK_INSTANCE_ERROR_STATES = frozenset(
    {TI.ERROR, TI.UNKNOWN_ERROR, TI.RESOURCE_ERROR, TI.NO_EXECUTOR_ID}
)
TASK_INSTANCE_FINAL_STATES = TASK_INSTANCE_ERROR_STATES | {TI.DONE, TI.KILL_SELF}

# Instance states in which the executor still owns a live process.
TASK_INSTANCE_ACTIVE_STATES = frozenset(
    {TI.INSTANTIATED, TI.SUBMITTED_TO_BATCH_EXECUTOR, TI.RUNNING}
)

# Task states that a running workflow is still waiting on.
TASK_ACTIVE_STATES = frozenset({T.QUEUED, T.INSTANTIATED, T.RUNNING})
TASK_FINAL_STATES = frozenset({T.DONE, T.ERROR_FATAL})


class Verdict(StrEnum):
    APPLY = "apply"
    IGNORE = "ignore"
    REFUSE = "refuse"


def task_instance_verdict(current: TaskInstanceStatus, new: TaskInstanceStatus) -> Verdict:
    """Decide what the server does with a reported task-instance transition."""
    if new in TASK_INSTANCE_TRANSITIONS[current]:
        return Verdict.APPLY
    if (current, new) in TASK_INSTANCE_IGNORED:
        return Verdict.IGNORE
    return Verdict.REFUSE


def task_status_after_error(
    num_attempts: int, max_attempts: int, resource_error: bool
) -> TaskStatus:
    """Where a task goes after an instance failed: F when attempts are used up, A when the instance died
    of a resource error, else it stays E (recoverable) until the client queues it again."""
    if num_attempts >= max_attempts:
        return T.ERROR_FATAL
    if resource_error:
        return T.ADJUSTING_RESOURCES
    return T.ERROR_RECOVERABLE


def status_name(kind: type[StrEnum], letter: str | None) -> str:
    """A status letter's name for people, e.g. ``status_name(TaskStatus, "E") == "ERROR_RECOVERABLE"``;
    "-" for None, and an unknown letter as it came (an older or newer server may know more)."""
    if letter is None:
        return "-"
    try:
        return kind(letter).name
    except ValueError:
        return letter


def describe_counts(counts: Mapping[str, int], kind: type[StrEnum] = TaskStatus) -> str:
    """Counts by status letter for a log line, by name in the enum's order: "QUEUED=155, DONE=87"."""
    order = {member.value: index for index, member in enumerate(kind)}
    letters = sorted(counts, key=lambda letter: (order.get(letter, len(order)), letter))
    return ", ".join(f"{status_name(kind, letter)}={counts[letter]}" for letter in letters)
