"""Retry arithmetic and the transition table."""

from __future__ import annotations

import pytest

from taskloom.core.model import Task
from taskloom.core.retry import next_attempt_at, retry_delay
from taskloom.core.states import InvalidTransition, RunState, TaskState, check_run_transition, check_task_transition


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
    check_task_transition("t", TaskState.FAILED, TaskState.PENDING)  # a retry
    with pytest.raises(InvalidTransition, match="task 't' cannot go from succeeded to running"):
        check_task_transition("t", TaskState.SUCCEEDED, TaskState.RUNNING)
    check_run_transition(1, RunState.CRASHED, RunState.RUNNING)  # resume
    with pytest.raises(InvalidTransition):
        check_run_transition(1, RunState.SUCCEEDED, RunState.RUNNING)


def test_states_serialize_as_plain_strings():
    import json

    assert json.dumps({"s": TaskState.TIMED_OUT}) == '{"s": "timed_out"}'
