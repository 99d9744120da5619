"""Retry arithmetic and the transition table."""

from __future__ import annotations

import pytest

from taskloom.core.model import Task
from taskloom.core.retry import next_attempt_at, retry_delay
from taskloom.core.errors import InternalError
from taskloom.core.states import (
    ATTEMPT_TRANSITIONS,
    FAILURE_STATES,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    TERMINAL_RUN_STATES,
    TERMINAL_TASK_STATES,
    InvalidTransition,
    RunState,
    TaskState,
    check_attempt_transition,
    check_run_transition,
    check_task_transition,
    run_sources,
    task_sources,
)


def test_backoff_multiplies_and_caps():
    task = Task("t", "noop", retries=5, retry_delay=10, retry_backoff=3, max_retry_delay=100)
    assert [retry_delay(task, n) for n in range(1, 7)] == [10, 30, 90, 100, 100, None]


def test_no_retries_means_no_next_attempt():
    assert next_attempt_at(Task("t", "noop"), 1, ended_at=1000.0) is None


def test_next_attempt_is_persistable_instant():
    task = Task("t", "noop", retries=2, retry_delay=5, retry_backoff=2)
    assert next_attempt_at(task, 2, ended_at=1000.0) == 1010.0


def test_huge_attempt_numbers_do_not_overflow():
    task = Task("t", "noop", retries=10_000, retry_delay=1, retry_backoff=10, max_retry_delay=60)
    assert retry_delay(task, 9_999) == 60


def test_transitions():
    check_task_transition("t", TaskState.PENDING, TaskState.RUNNING)
    check_task_transition("t", TaskState.RUNNING, TaskState.PENDING)  # a retry: the task never rests in failed
    with pytest.raises(InvalidTransition, match="task 't' cannot go from succeeded to running"):
        check_task_transition("t", TaskState.SUCCEEDED, TaskState.RUNNING)
    check_run_transition(1, RunState.CRASHED, RunState.RUNNING)  # resume
    check_run_transition(1, RunState.CRASHED, RunState.QUEUED)  # resume requested from the web
    with pytest.raises(InvalidTransition):
        check_run_transition(1, RunState.SUCCEEDED, RunState.RUNNING)


@pytest.mark.parametrize("ended", sorted(TERMINAL_TASK_STATES))
def test_an_ended_task_never_changes_again(ended):
    """A resumed run keeps its ended tasks, a re-run is a new run: nothing leaves a terminal state."""
    assert TASK_TRANSITIONS[ended] == {}
    for state in TaskState:
        with pytest.raises(InvalidTransition):
            check_task_transition("t", ended, state)


def test_a_failed_attempt_is_retried_from_running_not_from_failed():
    """The runner journals running -> pending for a retry; failed -> pending is nobody's transition."""
    for failure in FAILURE_STATES:
        with pytest.raises(InvalidTransition):
            check_task_transition("t", failure, TaskState.PENDING)


def test_only_crashed_runs_come_back():
    assert {old for old, news in RUN_TRANSITIONS.items() if news and old in TERMINAL_RUN_STATES} == {RunState.CRASHED}


def test_every_allowed_transition_says_why():
    for table in (TASK_TRANSITIONS, RUN_TRANSITIONS, ATTEMPT_TRANSITIONS):
        for old, news in table.items():
            for new, reason in news.items():
                assert isinstance(reason, str) and len(reason) > 10, (old, new)


def test_an_attempt_is_created_running_and_ends_once():
    assert set(ATTEMPT_TRANSITIONS[TaskState.RUNNING]) == TERMINAL_TASK_STATES - {TaskState.SKIPPED}
    check_attempt_transition(7, TaskState.RUNNING, TaskState.CRASHED)
    with pytest.raises(InvalidTransition, match="attempt 7 of task 'a' of run 3 cannot go from succeeded to failed"):
        check_attempt_transition(7, TaskState.SUCCEEDED, TaskState.FAILED, run_id=3, task_id="a")
    with pytest.raises(InvalidTransition):
        check_attempt_transition(7, TaskState.PENDING, TaskState.RUNNING)  # an attempt is never pending


def test_the_refusal_carries_what_was_refused():
    with pytest.raises(InvalidTransition) as caught:
        check_task_transition("b", TaskState.SKIPPED, TaskState.RUNNING, run_id=12)
    error = caught.value
    assert (error.kind, error.from_state, error.to_state, error.run_id, error.task_id) == (
        "task", TaskState.SKIPPED, TaskState.RUNNING, 12, "b")
    assert str(error) == "task 'b' of run 12 cannot go from skipped to running"
    assert isinstance(error, InternalError)


def test_sources_are_the_table_turned_around():
    assert task_sources(TaskState.PENDING) == {TaskState.PENDING, TaskState.RUNNING}
    assert task_sources(TaskState.RUNNING) == {TaskState.PENDING}
    assert run_sources(RunState.RUNNING) == {RunState.QUEUED, RunState.CRASHED}
    assert run_sources(RunState.CANCELLED) == {RunState.QUEUED, RunState.RUNNING, RunState.CRASHED}


def test_states_serialize_as_plain_strings():
    import json

    assert json.dumps({"s": TaskState.TIMED_OUT}) == '{"s": "timed_out"}'
