"""The shared state machines in jobmon.core.states."""

from __future__ import annotations

import itertools

import pytest

from jobmon.core.states import (
    ACTIVE_WORKFLOW_RUN_STATES,
    TASK_INSTANCE_ACTIVE_STATES,
    TASK_INSTANCE_ERROR_STATES,
    TASK_INSTANCE_FINAL_STATES,
    TASK_INSTANCE_IGNORED,
    TASK_INSTANCE_SHOULD_DIE,
    TASK_INSTANCE_TRANSITIONS,
    TASK_TRANSITIONS,
    WORKFLOW_RUN_TRANSITIONS,
    WORKFLOW_TRANSITIONS,
    TaskInstanceStatus,
    TaskStatus,
    Verdict,
    WorkflowRunStatus,
    WorkflowStatus,
    task_instance_verdict,
    task_status_after_error,
)

TI = TaskInstanceStatus
T = TaskStatus


@pytest.mark.parametrize(("table", "enum"), [
    (WORKFLOW_TRANSITIONS, WorkflowStatus),
    (WORKFLOW_RUN_TRANSITIONS, WorkflowRunStatus),
    (TASK_TRANSITIONS, TaskStatus),
    (TASK_INSTANCE_TRANSITIONS, TaskInstanceStatus),
])
def test_every_status_has_a_row_and_no_self_loops(table: dict, enum: type) -> None:
    assert set(table) == set(enum)
    for current, targets in table.items():
        assert current not in targets
        assert targets <= set(enum)


def test_letters_are_guppys() -> None:
    assert "".join(WorkflowStatus) == "GBACRSFD"
    assert "".join(WorkflowRunStatus) == "GBRDASECHT"
    assert "".join(TaskStatus) == "GQIREAFD"
    assert "".join(TaskInstanceStatus) == "IBRDEUZWK"


def test_task_transitions_are_the_documented_ones() -> None:
    pairs = {(a.value + b.value) for a, targets in TASK_TRANSITIONS.items() for b in targets}
    assert pairs == {"GQ", "AQ", "QI", "IR", "IE", "RD", "RE", "EA", "EQ", "EF"}


def test_task_instance_transitions_include_guppys() -> None:
    for current, targets in {"I": "BWKR", "B": "RUZK", "R": "EUZKD"}.items():
        assert {t.value for t in TASK_INSTANCE_TRANSITIONS[TI(current)]} >= set(targets)


def test_final_task_instance_states_go_nowhere() -> None:
    for status in TASK_INSTANCE_FINAL_STATES:
        assert TASK_INSTANCE_TRANSITIONS[status] == frozenset()
    assert TASK_INSTANCE_ACTIVE_STATES.isdisjoint(TASK_INSTANCE_FINAL_STATES)
    assert TASK_INSTANCE_ERROR_STATES < TASK_INSTANCE_FINAL_STATES


def test_ignored_reports_are_never_valid_ones() -> None:
    for current, new in TASK_INSTANCE_IGNORED:
        assert new not in TASK_INSTANCE_TRANSITIONS[current]


@pytest.mark.parametrize(("current", "new"), list(itertools.product(TI, TI)))
def test_verdict_covers_every_pair(current: TaskInstanceStatus, new: TaskInstanceStatus) -> None:
    verdict = task_instance_verdict(current, new)
    if new in TASK_INSTANCE_TRANSITIONS[current]:
        assert verdict == Verdict.APPLY
    elif (current, new) in TASK_INSTANCE_IGNORED:
        assert verdict == Verdict.IGNORE
    else:
        assert verdict == Verdict.REFUSE


@pytest.mark.parametrize(("current", "new", "verdict"), [
    ("I", "B", Verdict.APPLY),
    ("B", "R", Verdict.APPLY),
    ("R", "D", Verdict.APPLY),
    ("R", "B", Verdict.IGNORE),   # executor's "submitted" after the worker's "running"
    ("E", "U", Verdict.IGNORE),   # reaper after the worker's own error
    ("K", "D", Verdict.IGNORE),   # a killed instance finishing anyway
    ("D", "U", Verdict.IGNORE),
    ("D", "R", Verdict.REFUSE),
    ("I", "D", Verdict.REFUSE),
    ("W", "B", Verdict.REFUSE),
])
def test_verdict_examples(current: str, new: str, verdict: Verdict) -> None:
    assert task_instance_verdict(TI(current), TI(new)) == verdict


def test_instances_that_should_die() -> None:
    assert {s.value for s in TASK_INSTANCE_SHOULD_DIE} == {"W", "U", "Z", "K"}


@pytest.mark.parametrize(("attempts", "max_attempts", "resource", "expected"), [
    (1, 3, False, T.ERROR_RECOVERABLE),
    (1, 3, True, T.ADJUSTING_RESOURCES),
    (3, 3, False, T.ERROR_FATAL),
    (3, 3, True, T.ERROR_FATAL),   # out of attempts beats a resource retry
    (4, 3, False, T.ERROR_FATAL),
    (0, 1, True, T.ADJUSTING_RESOURCES),
])
def test_task_status_after_error(attempts: int, max_attempts: int, resource: bool,
                                 expected: TaskStatus) -> None:
    outcome = task_status_after_error(attempts, max_attempts, resource)
    assert outcome == expected
    assert outcome in TASK_TRANSITIONS[T.ERROR_RECOVERABLE] | {T.ERROR_RECOVERABLE}


def test_active_runs_and_resume_targets() -> None:
    assert {s.value for s in ACTIVE_WORKFLOW_RUN_STATES} == {"G", "B", "R"}
    for status in (WorkflowRunStatus.BOUND, WorkflowRunStatus.RUNNING):
        assert {WorkflowRunStatus.COLD_RESUME, WorkflowRunStatus.HOT_RESUME} <= \
            WORKFLOW_RUN_TRANSITIONS[status]
    assert WORKFLOW_TRANSITIONS[WorkflowStatus.DONE] == frozenset()
