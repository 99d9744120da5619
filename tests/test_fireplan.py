"""Catch-up and overlap decisions (pure, with a fake clock)."""

from __future__ import annotations

import pytest

from taskloom.core.fireplan import overlap_action, plan_due

NOW = 10_000.0
LATE = [NOW - 3600, NOW - 1800, NOW - 600]  # missed while down


def actions(decisions):
    return [(d.instant, d.action) for d in decisions]


def test_on_time_instants_run():
    assert actions(plan_due([NOW - 1, NOW], NOW, catchup="none")) == [(NOW - 1, "run"), (NOW, "run")]


def test_catchup_none_records_every_missed_instant():
    decisions = plan_due(LATE, NOW, catchup="none")
    assert [d.action for d in decisions] == ["missed"] * 3
    assert "settings.catchup is 'none'" in decisions[0].reason


def test_catchup_latest_runs_only_the_most_recent():
    assert actions(plan_due(LATE, NOW, catchup="latest")) == [
        (LATE[0], "missed"), (LATE[1], "missed"), (LATE[2], "run")]
    # an on-time instant runs as well: it is not a missed one
    assert [d.action for d in plan_due(LATE + [NOW], NOW, catchup="latest")] == ["missed", "missed", "run", "run"]


def test_catchup_all_runs_in_order_up_to_the_limit():
    assert [d.action for d in plan_due(LATE, NOW, catchup="all")] == ["run"] * 3
    limited = plan_due(LATE, NOW, catchup="all", limit=2)
    assert [d.action for d in limited] == ["run", "run", "missed"]
    assert "catchup_limit (2)" in limited[2].reason


@pytest.mark.parametrize(
    "policy, active, limit, expected",
    [
        ("skip", 0, 4, "start"), ("skip", 1, 4, "skip"),
        ("queue", 1, 4, "queue"), ("allow", 3, 4, "start"), ("allow", 4, 4, "skip"),
        ("cancel_previous", 2, 4, "cancel_previous"),
    ],
)
def test_overlap(policy, active, limit, expected):
    assert overlap_action(policy, active, limit) == expected
