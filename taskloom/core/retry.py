"""Retry arithmetic: when, if ever, the next attempt of a task starts.

Pure: the caller passes the instant the attempt ended and gets back the
instant the next one may start, so the schedule can be persisted and survives
a restart.
"""

from __future__ import annotations

from taskloom.core.model import Task

__all__ = ["retry_delay", "next_attempt_at"]


def retry_delay(task: Task, failed_attempt: int) -> float | None:
    """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed.

    ``None`` when the task has no retries left. The delay starts at
    ``retry_delay`` and is multiplied by ``retry_backoff`` for each further
    attempt, capped at ``max_retry_delay``.
    """
    if failed_attempt > task.retries:
        return None
    # Cap the exponent's result before it can overflow on huge attempt counts.
    delay = task.retry_delay
    for _ in range(failed_attempt - 1):
        delay *= task.retry_backoff
        if delay >= task.max_retry_delay:
            break
    return max(0.0, min(delay, task.max_retry_delay))


def next_attempt_at(task: Task, failed_attempt: int, ended_at: float) -> float | None:
    """The instant (seconds since the epoch) the next attempt starts, or None."""
    delay = retry_delay(task, failed_attempt)
    return None if delay is None else ended_at + delay
