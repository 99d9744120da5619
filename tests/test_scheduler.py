"""The scheduler service with real processes: exactly-once firings, standby takeover, catch-up, overlap."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from clitools import query, start, taskloom, wait_for, write_flow
from conftest import make_doc

pytestmark = pytest.mark.both_backends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def every_second(name: str, command: str = "true", **settings) -> dict:
    return make_doc(
        [{"id": "work", "type": "shell", "params": {"command": command}}],
        name=name,
        triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}],
        settings=settings or {"max_parallel_tasks": 1},
    )


def scheduler(home, *args):
    return start(home, "scheduler", "--no-api", "--lease-ttl", "2", *args)


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except Exception:
        proc.kill()
        raise


def firings(home, workflow):
    return query(home, "SELECT instant, status, run_id, reason FROM firings WHERE workflow = ? ORDER BY instant", workflow)


def test_two_schedulers_fire_each_instant_once_and_the_standby_takes_over(tmp_path, home):
    # overlap 'allow': this test is about instants, not about runs that outlive a second
    taskloom(home, "import", write_flow(tmp_path, every_second("ticker", overlap="allow", max_active_runs=20)))
    first, second = scheduler(home), scheduler(home)
    try:
        # a minute and a half of both schedulers competing for every instant
        wait_for(lambda: len(firings(home, "ticker")) >= 90, timeout=150, what="firings")
        holder_pid = query(home, "SELECT pid FROM scheduler_lease")[0][0]
        active, standby = (first, second) if first.pid == holder_pid else (second, first)
        killed_at = time.time()
        active.kill()  # SIGKILL: no clean hand-over
        active.wait()
        new_pid = wait_for(lambda: (query(home, "SELECT pid FROM scheduler_lease")[0][0] == standby.pid) and standby.pid,
                           timeout=15, what="the standby to take over")
        assert new_pid == standby.pid and time.time() - killed_at < 6
        count = len(firings(home, "ticker"))
        wait_for(lambda: len(firings(home, "ticker")) >= count + 20, timeout=60, what="firings after takeover")
        stop(standby)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    rows = firings(home, "ticker")
    instants = [r[0] for r in rows]
    assert all(b - a == pytest.approx(1.0) for a, b in zip(instants, instants[1:])), "an instant is missing"
    assert {r[1] for r in rows} == {"started"}, "no firing may be missed or skipped"
    runs = query(home, "SELECT logical_time, count(*) FROM runs WHERE workflow = 'ticker' GROUP BY logical_time")
    assert all(n == 1 for _, n in runs), "an instant ran twice"
    assert sorted(t for t, _ in runs) == instants


@pytest.mark.parametrize("catchup, expected", [("none", "missed"), ("latest", "one"), ("all", "all")])
def test_catchup_after_downtime(tmp_path, home, catchup, expected):
    doc = every_second("catchup")
    doc["settings"] = {"catchup": catchup}
    taskloom(home, "import", write_flow(tmp_path, doc))
    up = scheduler(home, "--misfire-grace", "0.5")
    wait_for(lambda: len(firings(home, "catchup")) >= 2, timeout=20, what="first firings")
    stop(up)
    before = len(firings(home, "catchup"))
    time.sleep(4)  # down: about four instants pass
    again = scheduler(home, "--misfire-grace", "0.5")
    try:
        wait_for(lambda: len(firings(home, "catchup")) >= before + 6, timeout=20, what="firings after restart")
        time.sleep(1)  # let queued catch-up runs start
    finally:
        stop(again)
    late = [r for r in firings(home, "catchup")[before:] if r[1] == "missed" or "caught up" in (r[3] or "")]
    assert len(late) >= 3, "the downtime should have covered several instants"
    ran = [r for r in late if r[1] in ("started", "queued")]
    missed = [r for r in late if r[1] == "missed"]
    if expected == "missed":
        assert len(missed) == len(late) and not ran
        assert "settings.catchup is 'none'" in missed[0][3]
        shown = json.loads(taskloom(home, "runs", "catchup", "--status", "missed", "--json").stdout)
        assert shown and shown[0]["status"] == "missed" and shown[0]["id"] is None and shown[0]["error"]
    elif expected == "one":
        assert len(ran) == 1 and len(missed) == len(late) - 1
        assert ran[0][0] == max(r[0] for r in late)  # the most recent missed instant ran
    else:
        assert len(ran) == len(late) and not missed
        started = [r for r in late if r[1] == "started"]
        # Caught up in order: the runs were fired oldest instant first (ids are given as runs are recorded).
        # Their start times are not compared: each run starts on a thread of its own, and two runs fired in
        # the same moment may write their start in either order.
        runs = query(home, "SELECT logical_time, id FROM runs WHERE id IN (%s) ORDER BY id" %
                     ",".join(str(r[2]) for r in started))
        assert [t for t, _ in runs] == sorted(t for t, _ in runs)


@pytest.mark.parametrize("policy", ["skip", "queue", "allow", "cancel_previous"])
def test_overlap_policies(tmp_path, home, policy):
    doc = every_second("slow", "sleep 2.5")
    doc["settings"] = {"overlap": policy, "max_active_runs": 2}
    taskloom(home, "import", write_flow(tmp_path, doc))
    proc = scheduler(home)
    try:
        wait_for(lambda: len(firings(home, "slow")) >= 6, timeout=30, what="firings")
    finally:
        stop(proc)
    statuses = [r[1] for r in firings(home, "slow")]
    spans = query(home, "SELECT started, ended, status FROM runs WHERE workflow = 'slow' AND started IS NOT NULL ORDER BY started")
    peak = max(sum(1 for s, e, _ in spans if s <= t < (e or 1e18)) for t, _, _ in spans)
    if policy == "skip":
        assert "skipped_overlap" in statuses and peak == 1
        reason = [r[3] for r in firings(home, "slow") if r[1] == "skipped_overlap"][0]
        assert "was still active" in reason
    elif policy == "queue":
        assert peak == 1
        assert query(home, "SELECT count(*) FROM firings WHERE workflow = 'slow' AND reason LIKE '%waiting for run%'")[0][0] >= 1
    elif policy == "allow":
        assert peak == 2 and "skipped_overlap" in statuses
    else:
        assert "cancelled" in [s for _, _, s in spans]
