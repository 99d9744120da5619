"""Fault injection with real processes and real signals: the scheduler and its tasks (issue 10).

Each test kills, stalls or starves a real ``taskloom`` process and then checks
the promises of README "Scheduling guarantees" and "What survives a crash"
against the database and against marker files the tasks append to (one line
per execution), never against what the process says about itself:

* SIGKILL of the scheduler during a run, during a retry backoff, and between
  claiming a firing and starting its run (the ``scheduler.after_claim``
  failpoint): after a restart every instant has exactly one run, tasks that
  succeeded are not run again, every run ends in a terminal state;
* SIGSTOP of the active scheduler past its lease: the standby fires, and the
  stalled one writes nothing once it resumes (fencing);
* a task killed by SIGKILL (an OOM kill): ``crashed`` with the signal, retried
  per policy, for a shell task and a python task in the warm pool;
* a shell task that ignores SIGTERM and leaves grandchildren on its pipe:
  the timeout still ends it within the grace period, nothing of its group lives;
* a workflow edited while it runs: the run finishes on its own version.

Every test runs on both stores (``[sqlite]`` and ``[postgresql]``): the
promises are the same, only how a stalled writer is told apart differs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from taskloom.storage.sqlite import sqlite3
from clitools import TASKLOOM, env_for, pid_alive, query, taskloom, wait_for, write_flow
from conftest import make_doc

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

TERMINAL = ("succeeded", "failed", "cancelled", "crashed")
#: The states a run ends in once a running scheduler is done with it: ``crashed`` is not one of them, since the
#: scheduler that takes a dead runner's run over records it crashed and then resumes it, in two transactions.
FINAL = ("succeeded", "failed", "cancelled")


class Proc:
    """A ``taskloom`` subprocess whose output goes to files (read them while it runs)."""

    def __init__(self, home: Path, folder: Path, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.out_path, self.err_path = folder / f"{name}.out", folder / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen([TASKLOOM, *args], env=env_for(home, **(env or {})), cwd=folder,
                                          stdout=out, stderr=err, text=True)
        self.pid = self.popen.pid

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait: a clean stop."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a test may have left it stopped
            self.popen.kill()
        self.popen.wait(timeout=10)


@pytest.fixture
def procs():
    """Start processes through this fixture; whatever is still alive at the end is killed."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def scheduler(procs: list[Proc], home: Path, folder: Path, name: str, *args: str,
              env: dict[str, str] | None = None) -> Proc:
    proc = Proc(home, folder, name, "scheduler", "--no-api", "--lease-ttl", "2", *args, env=env)
    procs.append(proc)
    return proc


def lease(home: Path) -> tuple[int, str, int]:
    """(pid, holder, token) of the scheduler lease."""
    return query(home, "SELECT pid, holder, token FROM scheduler_lease")[0]


def wait_active(home: Path, proc: Proc, timeout: float = 20) -> str:
    """Wait until ``proc`` holds the lease; its holder id (its heartbeat id, the owner of its runs)."""
    wait_for(lambda: lease(home)[0] == proc.pid, timeout=timeout, what=f"{proc.name} to hold the lease")
    return lease(home)[1]


def add_workflow(home: Path, folder: Path, doc: dict, active: Proc | None = None) -> None:
    """Store ``doc`` and wake the running scheduler so it sees the new trigger at once."""
    stored = taskloom(home, "import", write_flow(folder, doc, f"{doc['name']}.json"))
    assert stored.returncode == 0, stored.stderr
    if active is not None:
        active.signal(signal.SIGUSR1)
        wait_for(lambda: query(home, "SELECT count(*) FROM trigger_state WHERE workflow = ?", doc["name"])[0][0],
                 what="the scheduler to take stock of the new trigger")


def instants_trigger(first: float, last: float, every: int) -> dict:
    """An interval trigger firing at ``first``, ``first + every``, ... up to ``last`` (epoch seconds)."""
    iso = lambda t: datetime.fromtimestamp(t, tz=timezone.utc).isoformat()  # noqa: E731
    return {"id": "tick", "type": "interval", "every": every, "unit": "seconds", "start": iso(first), "end": iso(last)}


def soon(lead: float = 2.0) -> int:
    return math.ceil(time.time() + lead)


def marks(path: Path) -> list[list[str]]:
    """The lines a task appended (one per execution), split into words."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def runs_of(home: Path, workflow: str) -> list[tuple]:
    return query(home, "SELECT id, logical_time, status, version FROM runs WHERE workflow = ? ORDER BY id", workflow)


def firings_of(home: Path, workflow: str) -> list[tuple]:
    return query(home, "SELECT instant, status, run_id, claimed_by FROM firings WHERE workflow = ? ORDER BY instant",
                 workflow)


def attempts_of(home: Path, run_id: int, task_id: str) -> list[tuple]:
    return query(home, "SELECT number, status, signal, error, started, ended FROM attempts"
                       " WHERE run_id = ? AND task_id = ? ORDER BY number", run_id, task_id)


def all_ended(home: Path, workflow: str, count: int) -> bool:
    """Whether ``count`` runs of ``workflow`` exist and each has ended for good (not crashed, waiting to resume)."""
    rows = runs_of(home, workflow)
    return len(rows) == count and all(r[2] in FINAL for r in rows)


def assert_one_run_per_instant(home: Path, workflow: str, instants: list[float]) -> dict[float, int]:
    """Every instant fired once, started exactly one run, and that run is the firing's; {instant: run id}."""
    fired = firings_of(home, workflow)
    assert [f[0] for f in fired] == instants, f"instants fired: {fired}"
    assert all(f[1] == "started" and f[2] is not None for f in fired), fired
    per_instant = query(home, "SELECT logical_time, count(*), min(id) FROM runs WHERE workflow = ?"
                              " GROUP BY logical_time ORDER BY logical_time", workflow)
    assert [(t, n) for t, n, _ in per_instant] == [(t, 1) for t in instants], f"runs per instant: {per_instant}"
    assert {t: r for t, _, r in per_instant} == {f[0]: f[2] for f in fired}
    return {t: r for t, _, r in per_instant}


# -- 1. SIGKILL of the scheduler ----------------------------------------------


def test_sigkill_of_the_scheduler_during_a_run(tmp_path, home, procs):
    """Killed while a task runs: the restarted scheduler marks that attempt crashed, retries it, and runs every
    instant once; the task that had succeeded before the kill is not run again."""
    log, hang = tmp_path / "marks", tmp_path / "hung-once"
    a = scheduler(procs, home, tmp_path, "a")
    wait_active(home, a)
    first = soon(2.5)
    doc = make_doc(
        [
            {"id": "first", "type": "shell", "params": {"command": f"echo $TASKLOOM_RUN_ID first $TASKLOOM_ATTEMPT >> {log}"}},
            {"id": "slow", "type": "shell", "retries": 1, "retry_delay": 0, "params": {
                "command": f"echo $TASKLOOM_RUN_ID slow $TASKLOOM_ATTEMPT $$ >> {log};"  # the very first one hangs
                           f" if [ ! -e {hang} ]; then touch {hang}; sleep 30; else sleep 1; fi"}},
        ],
        [{"from": "first", "to": "slow"}],
        name="nightly", triggers=[instants_trigger(first, first + 8, 4)],
        settings={"overlap": "allow"},  # the recovered run may still run when the next instant comes
    )
    add_workflow(home, tmp_path, doc, a)
    assert time.time() < first, "the machine is too slow: the first instant passed before the trigger was known"

    row = wait_for(lambda: [m for m in marks(log) if m[1] == "slow"], timeout=20, what="the first run's slow task")[0]
    killed_run, leftover = int(row[0]), int(row[3])
    a.popen.kill()  # SIGKILL: no clean-up of any kind
    a.popen.wait(timeout=10)
    assert query(home, "SELECT status FROM runs WHERE id = ?", killed_run)[0][0] == "running"
    assert pid_alive(leftover), "the task outlived the scheduler, as after a real crash"

    b = scheduler(procs, home, tmp_path, "b")
    wait_for(lambda: all_ended(home, "nightly", 3), timeout=40, what="three runs to end")
    assert b.stop() == 0

    runs = assert_one_run_per_instant(home, "nightly", [first, first + 4, first + 8])
    assert runs[first] == killed_run
    assert {r[2] for r in runs_of(home, "nightly")} == {"succeeded"}
    executions = [(int(m[0]), m[1], int(m[2])) for m in marks(log)]
    for run_id in runs.values():
        assert [e for e in executions if e[0] == run_id and e[1] == "first"] == [(run_id, "first", 1)], \
            "a task that succeeded before the kill must not run again"
        slow = [e[2] for e in executions if e[0] == run_id and e[1] == "slow"]
        assert slow == ([1, 2] if run_id == killed_run else [1])
    crashed, retried = attempts_of(home, killed_run, "slow")
    assert crashed[1] == "crashed" and "runner died" in crashed[3]
    assert retried[1] == "succeeded"
    wait_for(lambda: not pid_alive(leftover), timeout=5, what="the killed run's leftover task to be killed")
    assert f"run {killed_run}:" in b.stderr and "resuming it" in b.stderr
    print(f"runs per instant {runs}; executions {executions}; killed run's slow attempts"
          f" {[(a[1], a[3]) for a in (crashed, retried)]}; leftover pid {leftover} killed by the restart")


def test_sigkill_of_the_scheduler_during_a_retry_backoff(tmp_path, home, procs):
    """Killed while a retry waits: after the restart the retry starts at its stored instant, once."""
    log = tmp_path / "marks"
    a = scheduler(procs, home, tmp_path, "a")
    wait_active(home, a)
    instant = soon(2.5)
    doc = make_doc(
        [{"id": "flaky", "type": "shell", "retries": 1, "retry_delay": 5, "params": {
            "command": f'echo $TASKLOOM_ATTEMPT $(date +%s.%N) >> {log}; [ "$TASKLOOM_ATTEMPT" -ge 2 ]'}}],
        name="flaky", triggers=[instants_trigger(instant, instant, 1)],
    )
    add_workflow(home, tmp_path, doc, a)
    assert time.time() < instant, "the machine is too slow: the instant passed before the trigger was known"

    due = wait_for(lambda: query(home, "SELECT next_attempt_at FROM task_states WHERE task_id = 'flaky'")[0][0],
                   timeout=20, what="the retry to be scheduled")
    a.popen.kill()
    a.popen.wait(timeout=10)
    killed_at = time.time()
    assert killed_at < due - 1, "the kill must land inside the backoff"

    b = scheduler(procs, home, tmp_path, "b")
    wait_for(lambda: all_ended(home, "flaky", 1), timeout=30, what="the run to end")
    assert b.stop() == 0

    runs = assert_one_run_per_instant(home, "flaky", [instant])
    starts = [(int(m[0]), float(m[1])) for m in marks(log)]
    assert [n for n, _ in starts] == [1, 2], (
        f"one failed attempt and one retry, not a run from scratch: runs {runs_of(home, 'flaky')}, attempts"
        f" {attempts_of(home, runs[instant], 'flaky')}; a: {a.stderr[-1500:]}; b: {b.stderr[-3000:]}")
    assert starts[1][1] >= due - 0.05, "the retry waited for its stored instant"
    assert starts[1][1] < due + 3, "the retry did not wait longer than needed"
    assert [a[1] for a in attempts_of(home, runs[instant], "flaky")] == ["failed", "succeeded"]
    assert runs_of(home, "flaky")[0][2] == "succeeded"
    print(f"killed {due - killed_at:.1f} s before the retry was due; retry started {starts[1][1] - due:+.2f} s"
          f" from its stored instant; attempts {[a[1] for a in attempts_of(home, runs[instant], 'flaky')]}")


def test_sigkill_between_claiming_a_firing_and_starting_its_run(tmp_path, home, procs):
    """The failpoint kills the scheduler right after it recorded a firing: the next scheduler starts that
    firing's run, once."""
    log = tmp_path / "marks"
    a = scheduler(procs, home, tmp_path, "a", env={"TASKLOOM_FAILPOINTS": "scheduler.after_claim=kill"})
    wait_active(home, a)
    instant = soon(2.5)
    doc = make_doc(
        [{"id": "once", "type": "shell", "params": {"command": f"echo $TASKLOOM_RUN_ID >> {log}"}}],
        name="claimed", triggers=[instants_trigger(instant, instant, 1)],
    )
    add_workflow(home, tmp_path, doc, a)
    assert time.time() < instant, "the machine is too slow: the instant passed before the trigger was known"
    assert a.popen.wait(timeout=20) == -signal.SIGKILL, a.stderr
    assert [f[:3] for f in firings_of(home, "claimed")] == [(instant, "claimed", None)]
    assert runs_of(home, "claimed") == [] and not log.exists()

    b = scheduler(procs, home, tmp_path, "b")
    wait_for(lambda: all_ended(home, "claimed", 1), timeout=20, what="the claimed firing's run to end")
    assert b.stop() == 0

    runs = assert_one_run_per_instant(home, "claimed", [instant])
    assert [int(m[0]) for m in marks(log)] == [runs[instant]], "the task ran exactly once"
    assert runs_of(home, "claimed")[0][2] == "succeeded"
    assert "was claimed but not started; starting it" in b.stderr
    print(f"after the kill: firing {instant} claimed, no run; after the restart: firings {firings_of(home, 'claimed')},"
          f" runs {runs_of(home, 'claimed')}, executions {marks(log)}")


# -- 2. SIGSTOP past the lease: fencing ------------------------------------------


def stop_outside_a_transaction(home: Path, proc: Proc) -> float:
    """SIGSTOP ``proc`` at an instant it holds no write lock on the lease; return when.

    A process stopped inside a write transaction blocks the writers it conflicts
    with until it resumes (on SQLite the whole file's lock, on PostgreSQL the
    lease row's lock until ``idle_in_transaction_session_timeout`` ends its
    session); the lease cannot move then, which is a property of the store,
    not what this test is about.
    """
    for _ in range(50):
        proc.signal(signal.SIGSTOP)
        stopped_at = time.time()
        if _write_lock_free(home):
            return stopped_at
        proc.signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("could not stop the scheduler outside a write transaction")


def _write_lock_free(home: Path) -> bool:
    """Whether a writer could take the lease now without waiting for another process."""
    url = os.environ.get("TASKLOOM_DATABASE_URL")
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            try:
                with conn.transaction():
                    conn.execute("SELECT holder FROM scheduler_lease FOR UPDATE NOWAIT")
                return True
            except psycopg.errors.LockNotAvailable:
                return False
    probe = sqlite3.connect(home / "taskloom.db", timeout=0.3, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def footprint(home: Path, holder: str) -> tuple[list[tuple], list[tuple]]:
    """What a scheduler wrote that can be told apart: the firings it claimed, the runs it owns."""
    return (query(home, "SELECT id, instant, status, run_id, reason FROM firings WHERE claimed_by = ? ORDER BY id", holder),
            query(home, "SELECT id, status, ended, error FROM runs WHERE owner = ? ORDER BY id", holder))


def test_sigstop_past_the_lease_standby_fires_and_the_stalled_one_writes_nothing(tmp_path, home, procs):
    doc = make_doc([{"id": "work", "type": "shell", "params": {"command": "true"}}], name="ticker",
                   triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}],
                   settings={"overlap": "allow"})
    taskloom(home, "import", write_flow(tmp_path, doc))
    first = scheduler(procs, home, tmp_path, "first", "--lease-ttl", "1")
    stalled_id = wait_active(home, first)
    second = scheduler(procs, home, tmp_path, "second", "--lease-ttl", "1")
    wait_for(lambda: len(firings_of(home, "ticker")) >= 3, timeout=20, what="firings by the first scheduler")

    stopped_at = stop_outside_a_transaction(home, first)
    before = footprint(home, stalled_id)
    in_flight = {r[0] for r in before[1] if r[1] not in TERMINAL}
    _, _, token = lease(home)
    standby_id = wait_for(lambda: lease(home)[0] == second.pid and lease(home)[1], timeout=10,
                          what="the standby to take the lease over")
    assert time.time() - stopped_at < 1 + 4, "the standby took over within the lease TTL (plus its poll)"
    wait_for(lambda: len([f for f in firings_of(home, "ticker") if f[3] == standby_id]) >= 3, timeout=15,
             what="the standby to fire")
    assert lease(home)[2] > token, "a takeover raises the fencing token"

    first.signal(signal.SIGCONT)  # it wakes up believing it still holds the lease
    resumed_at = time.time()
    wait_for(lambda: "lost the scheduler lease" in first.stderr, timeout=10, what="the stalled scheduler to step down")
    time.sleep(2)  # several of its renewal periods: it must stay a standby
    holder_pid, holder, _ = lease(home)
    assert (holder, holder_pid) == (standby_id, second.pid), "the lease must stay with the standby"
    for proc in (first, second):  # the stalled one first: the other's clean stop frees the lease
        assert proc.stop() == 0, proc.stderr

    after = footprint(home, stalled_id)
    assert after[0] == before[0], "the stalled scheduler claimed or changed a firing after it resumed"
    changed = {r[0] for r in set(after[1]) ^ set(before[1])}
    assert changed <= in_flight, f"the stalled scheduler wrote runs {changed - in_flight} after it resumed"
    rows = firings_of(home, "ticker")
    instants = [r[0] for r in rows]
    assert all(b - a == pytest.approx(1.0) for a, b in zip(instants, instants[1:])), "an instant was lost"
    assert {r[1] for r in rows} == {"started"}
    assert all(n == 1 for (n,) in query(home, "SELECT count(*) FROM runs WHERE workflow = 'ticker' GROUP BY logical_time"))
    assert all(r[2] in TERMINAL for r in runs_of(home, "ticker"))
    assert "Traceback" not in first.stderr + second.stderr
    by_standby = len([r for r in rows if r[3] == standby_id])
    print(f"stalled {resumed_at - stopped_at:.1f} s; standby fired {by_standby} of {len(rows)} instants;"
          f" stalled scheduler's firings/runs unchanged after SIGCONT ({len(before[0])} firings, {len(before[1])} runs,"
          f" in flight {sorted(in_flight)}); its log: {[l for l in first.stderr.splitlines() if 'lease' in l][-1]}")


def test_stall_right_after_claiming_the_standby_starts_the_firing_and_the_stalled_one_cannot_touch_it(
        tmp_path, home, procs):
    """The failpoint stops the first scheduler just after it claimed an instant. The standby starts that
    firing's run; when the first resumes it finds a run active (overlap 'skip') and would mark the firing
    skipped: fencing must refuse that write."""
    doc = make_doc([{"id": "work", "type": "shell", "params": {"command": "sleep 6"}}], name="stall",
                   triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}])
    taskloom(home, "import", write_flow(tmp_path, doc))
    first = scheduler(procs, home, tmp_path, "first", "--lease-ttl", "1",
                      env={"TASKLOOM_FAILPOINTS": "scheduler.after_claim=stop"})
    stalled_id = wait_active(home, first)
    claimed = wait_for(lambda: firings_of(home, "stall"), timeout=15, what="the first claim")[0]
    wait_for(lambda: open(f"/proc/{first.pid}/stat").read().rsplit(") ", 1)[1][0] == "T", what="the stall")

    second = scheduler(procs, home, tmp_path, "second", "--lease-ttl", "1")
    run_id = wait_for(lambda: firings_of(home, "stall")[0][2], timeout=15, what="the standby to start the firing")
    wait_for(lambda: len(firings_of(home, "stall")) >= 3, timeout=15, what="more instants")
    assert query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] == "running"
    first.signal(signal.SIGCONT)  # resumes in the middle of firing: it sees that run active
    wait_for(lambda: "lost the scheduler lease" in first.stderr, timeout=10, what="the stalled scheduler to step down")
    assert first.stop() == 0, first.stderr
    wait_for(lambda: query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] in TERMINAL, timeout=15,
             what="the run to end")
    assert second.stop() == 0, second.stderr

    instant, status, started_run, claimed_by = firings_of(home, "stall")[0]
    assert (instant, claimed_by) == (claimed[0], stalled_id)
    assert (status, started_run) == ("started", run_id), "the stalled scheduler overwrote the firing's outcome"
    assert query(home, "SELECT count(*), min(status) FROM runs WHERE logical_time = ?", instant) == [(1, "succeeded")]
    claimed_rows, owned_runs = footprint(home, stalled_id)
    assert [(r[1], r[2], r[3]) for r in claimed_rows] == [(instant, "started", run_id)], \
        "the stalled scheduler claimed nothing more"
    assert owned_runs == [], "the stalled scheduler started no run"
    assert "lost the scheduler lease while starting a run" in first.stderr
    print(f"firing {instant} claimed by the stalled scheduler, started by the standby as run {run_id}; after SIGCONT:"
          f" {firings_of(home, 'stall')[0][:3]}, runs for the instant"
          f" {query(home, 'SELECT id, status FROM runs WHERE logical_time = ?', instant)}")


# -- 3. A task killed by SIGKILL (an OOM kill) -------------------------------------

VICTIM = '''
import os, time

def victim(pidfile):
    if os.environ["TASKLOOM_ATTEMPT"] == "1":
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    return "attempt " + os.environ["TASKLOOM_ATTEMPT"]
'''


@pytest.mark.parametrize("kind", ["shell", "python"])
def test_a_task_killed_by_sigkill_is_crashed_with_the_signal_and_retried_per_policy(tmp_path, home, kind):
    """SIGKILL from outside, as the OOM killer sends it, to a task with a retry and to one without."""
    (tmp_path / "victims.py").write_text(VICTIM)

    def task(task_id: str, retries: int) -> dict:
        pidfile = tmp_path / f"{task_id}.pid"
        if kind == "shell":
            command = (f'if [ "$TASKLOOM_ATTEMPT" = 1 ]; then echo $$ > {pidfile}; sleep 60; fi;'
                       ' echo attempt $TASKLOOM_ATTEMPT')
            return {"id": task_id, "type": "shell", "retries": retries, "retry_delay": 0, "params": {"command": command}}
        return {"id": task_id, "type": "python", "retries": retries, "retry_delay": 0,
                "params": {"callable": "victims:victim", "cwd": str(tmp_path), "args": {"pidfile": str(pidfile)}}}

    doc = make_doc([task("retried", 1), task("once", 0)], settings={"max_parallel_tasks": 2})
    runner = subprocess.Popen([TASKLOOM, "run", write_flow(tmp_path, doc), "--json"], env=env_for(home), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for task_id in ("retried", "once"):
            pidfile = tmp_path / f"{task_id}.pid"
            pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30,
                               what=f"{task_id} to start"))
            os.kill(pid, signal.SIGKILL)
        out, err = runner.communicate(timeout=60)
    finally:
        runner.kill()
    result = json.loads(out)
    assert runner.returncode == 1 and result["status"] == "failed", err
    retried, once = result["tasks"]["retried"], result["tasks"]["once"]
    first = retried["attempt_list"][0]
    assert (first["status"], first["signal"]) == ("crashed", signal.SIGKILL), first
    assert "SIGKILL" in first["error"]
    assert [a["status"] for a in retried["attempt_list"]] == ["crashed", "succeeded"]
    assert retried["status"] == "succeeded" and "attempt 2" in json.dumps(retried["output"])
    assert [(a["status"], a["signal"]) for a in once["attempt_list"]] == [("crashed", signal.SIGKILL)]
    assert once["status"] == "crashed", "no retry left: the task ends crashed and fails the run"
    assert "Traceback" not in err
    print(f"[{kind}] retried: {[(a['status'], a['signal'], a['error']) for a in retried['attempt_list']]};"
          f" once: {[(a['status'], a['signal']) for a in once['attempt_list']]}; run {result['status']}")


# -- 4. SIGTERM ignored, grandchildren holding the pipe -------------------------------


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            members.append(int(entry.name))
    return members


def carriers_of(attempt_id: int, cwd: Path) -> list[int]:
    """Live processes in ``cwd`` whose environment carries this attempt's marker (even one that left the group).

    The folder tells this test's tasks from other tests' with the same attempt id.
    """
    marker = f"TASKLOOM_ATTEMPT_ID={attempt_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if (os.readlink(entry / "cwd") == str(cwd) and marker in (entry / "environ").read_bytes().split(b"\0")
                        and pid_alive(int(entry.name))):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_task_ignoring_sigterm_with_grandchildren_on_its_pipe_ends_at_timeout_plus_grace(tmp_path, home):
    kids, leader = tmp_path / "kids", tmp_path / "leader"
    command = (
        f"trap '' TERM; echo $$ > {leader}; "
        f"(sleep 60; echo late) & echo $! >> {kids}; "  # a subshell grandchild on stdout
        f"sh -c 'sleep 60; echo later' & echo $! >> {kids}; "  # another, exec'd by sh
        "echo started; sleep 60"
    )
    doc = make_doc([{"id": "stubborn", "type": "shell", "timeout": 1, "params": {"command": command}}])
    started = time.monotonic()
    result = taskloom(home, "run", write_flow(tmp_path, doc), "--json", "--grace", "1", cwd=tmp_path)
    wall = time.monotonic() - started
    data = json.loads(result.stdout)
    task = data["tasks"]["stubborn"]
    assert task["status"] == "timed_out", result.stderr
    (attempt,) = task["attempt_list"]
    assert attempt["signal"] == signal.SIGKILL, "SIGTERM was ignored: SIGKILL after the grace period ended it"
    number, status, _, _, began, ended = attempts_of(home, data["run_id"], "stubborn")[0]
    assert ended - began < 1 + 1 + 1.0, f"the attempt took {ended - began:.2f} s: timeout 1 s + grace 1 s"
    assert wall < 15
    pgid = int(leader.read_text())
    children = [int(p) for p in kids.read_text().split()]
    assert len(children) == 2 and os.getpgid(0) != pgid
    assert group_members(pgid) == [], "a process of the task's group survived"
    assert not any(pid_alive(p) for p in children)
    attempt_id = query(home, "SELECT id FROM attempts WHERE run_id = ?", data["run_id"])[0][0]
    assert carriers_of(attempt_id, tmp_path) == []
    print(f"attempt {status} after {ended - began:.2f} s (timeout 1 s, grace 1 s), signal {attempt['signal']};"
          f" group {pgid}: no live member; grandchildren {children} dead; command took {wall:.1f} s")


# -- 7. A workflow edited while it runs -----------------------------------------------


def test_a_workflow_edited_while_it_runs_finishes_on_the_version_it_started_with(tmp_path, home, procs):
    log, gate = tmp_path / "marks", tmp_path / "gate"

    def version(tag: str, tasks: list[str]) -> dict:
        steps = [{"id": t, "type": "shell", "params": {"command": f"echo $TASKLOOM_RUN_ID {tag}-{t} >> {log}"}}
                 for t in tasks]
        steps[0]["params"]["command"] += f"; while [ ! -e {gate} ]; do sleep 0.05; done"
        return make_doc(steps, [{"from": a, "to": b} for a, b in zip(tasks, tasks[1:])], name="edited")

    taskloom(home, "import", write_flow(tmp_path, version("v1", ["a", "b"])))
    active = scheduler(procs, home, tmp_path, "sched")
    wait_active(home, active)
    assert taskloom(home, "trigger", "edited").returncode == 0
    wait_for(lambda: marks(log), timeout=20, what="v1's first task to start")
    stored = taskloom(home, "import", write_flow(tmp_path, version("v2", ["a", "c", "d"])))
    assert "version 2" in stored.stdout, stored.stdout + stored.stderr
    gate.touch()
    wait_for(lambda: all_ended(home, "edited", 1), timeout=20, what="the first run to end")
    assert taskloom(home, "trigger", "edited").returncode == 0
    wait_for(lambda: all_ended(home, "edited", 2), timeout=20, what="the second run to end")
    assert active.stop() == 0

    (first, _, status1, version1), (second, _, status2, version2) = runs_of(home, "edited")
    assert (status1, version1, status2, version2) == ("succeeded", 1, "succeeded", 2)
    ran = [(int(m[0]), m[1]) for m in marks(log)]
    assert [t for r, t in ran if r == first] == ["v1-a", "v1-b"], "the edited run must keep its version's tasks"
    assert [t for r, t in ran if r == second] == ["v2-a", "v2-c", "v2-d"]
    tasks = lambda run: sorted(t for (t,) in query(home, "SELECT task_id FROM task_states WHERE run_id = ?", run))  # noqa: E731
    assert (tasks(first), tasks(second)) == (["a", "b"], ["a", "c", "d"])
    print(f"run {first}: version {version1}, ran {[t for r, t in ran if r == first]};"
          f" run {second}: version {version2}, ran {[t for r, t in ran if r == second]}")


@pytest.mark.slow
def test_serve_killed_by_sigkill_leaves_no_web_app_behind(tmp_path, home):
    """The web app `taskloom serve` starts ends with it, even when serve cannot clean up (SIGKILL)."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        ui_port = probe.getsockname()[1]
    serve = subprocess.Popen([TASKLOOM, "serve", "--no-api", "--ui-port", str(ui_port)], env=env_for(home),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def app_up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=1).text == "ok"
            except httpx.HTTPError:
                return False

        wait_for(app_up, timeout=60, what="the web app")
        children = [int(p) for p in Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()]
        assert children, "serve should have started the web app as its child"
        serve.kill()
        serve.wait(timeout=10)
        wait_for(lambda: not any(pid_alive(pid) for pid in children), timeout=20, what="the web app to end")
        assert not app_up()
    finally:
        if serve.poll() is None:
            serve.kill()
