"""Schedulers on two hosts sharing one PostgreSQL store: each instant runs once, and the survivor takes over.

A "host" here is a ``taskloom scheduler`` process with a home folder of its own
(hosts share no folder) and its own ``TASKLOOM_HOST_ID``, so the store sees two
hosts: a pid of one means nothing to the other, and a run whose owner died is
found by its heartbeat's age. Both have ``--max-runs 1`` and every run takes
longer than the trigger's second, so the lease holder cannot run every firing
itself: it records the runs it has no room for as queued, and the other host
executes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitools import TASKLOOM, query, taskloom, wait_for, write_flow
from conftest import make_doc

pytestmark = pytest.mark.slow

LEASE_TTL = 2.0
#: The longest a firing may be late after the lease holder is SIGKILLed (docs/deploy.md, "Several hosts"):
#: the lease must expire (its TTL), the standby looks every half TTL, then claims and starts the firing.
TAKEOVER = LEASE_TTL + LEASE_TTL / 2 + 1.0


class Host:
    """One simulated machine: its own home and host id, the shared store's URL."""

    def __init__(self, name: str, root: Path, url: str) -> None:
        self.name = name
        self.home = root / name
        self.home.mkdir()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
                    "TASKLOOM_HOME": str(self.home), "TASKLOOM_DATABASE_URL": url, "TASKLOOM_HOST_ID": name}
        self.proc: subprocess.Popen[str] | None = None

    def start_scheduler(self) -> None:
        self.proc = subprocess.Popen(
            [TASKLOOM, "scheduler", "--no-api", "--lease-ttl", str(LEASE_TTL), "--max-runs", "1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_two_hosts_share_the_runs_and_each_instant_runs_once_when_the_lease_holder_is_killed(
        tmp_path, postgres_url, monkeypatch):
    from pgserver import fresh_database

    url = fresh_database(postgres_url)
    monkeypatch.setenv("TASKLOOM_DATABASE_URL", url)
    hosts = {name: Host(name, tmp_path, url) for name in ("host-a", "host-b")}
    doc = make_doc([{"id": "work", "type": "shell", "retries": 2, "retry_delay": 0,
                     "params": {"command": "sleep 1.5"}}],
                   name="ticker", triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}],
                   settings={"overlap": "allow", "max_active_runs": 100})
    imported = subprocess.run([TASKLOOM, "import", write_flow(tmp_path, doc)], env=hosts["host-a"].env,
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    home = hosts["host-a"].home

    def firings():
        return query(home, "SELECT instant, status, run_id FROM firings WHERE workflow = 'ticker' ORDER BY instant")

    executing: set[str] = set()

    def note_hosts():
        executing.update(row[0] for row in query(home, "SELECT DISTINCT n.host FROM runs r JOIN runners n"
                                                      " ON n.id = r.owner WHERE r.status = 'running'"))

    for host in hosts.values():
        host.start_scheduler()
    try:
        wait_for(lambda: note_hosts() or len(firings()) >= 30, timeout=90, what="30 firings on two hosts")
        (holder_host,) = query(home, "SELECT host FROM scheduler_lease")[0]
        holder, survivor = hosts[holder_host], next(h for h in hosts.values() if h.name != holder_host)
        killed_at = time.time()
        holder.stop(signal.SIGKILL)  # no clean hand-over: its lease, its runs and its claims are left as they were
        wait_for(lambda: query(home, "SELECT host FROM scheduler_lease")[0][0] == survivor.name,
                 timeout=15, what="the survivor to take the lease over")
        took_over = time.time() - killed_at
        count = len(firings())
        wait_for(lambda: len(firings()) >= count + 30, timeout=60, what="30 firings after the take-over")
        paused = subprocess.run([TASKLOOM, "pause", "ticker"], env=survivor.env, capture_output=True, text=True,
                                timeout=60)
        assert paused.returncode == 0, paused.stderr
        # the killed host's runs: found by heartbeat age (its pid means nothing here) and resumed
        wait_for(lambda: not query(home, "SELECT id FROM runs WHERE workflow = 'ticker'"
                                             " AND status IN ('queued', 'running', 'crashed')"),
                 timeout=180, what="every run to end")
        survivor.stop()
    finally:
        for host in hosts.values():
            host.stop(signal.SIGKILL)
    rows = firings()
    instants = [r[0] for r in rows]
    assert all(b - a == pytest.approx(1.0) for a, b in zip(instants, instants[1:])), "an instant is missing"
    assert {r[1] for r in rows} <= {"started"}, "no firing may be missed or skipped"
    per_instant = query(home, "SELECT logical_time, count(*) FROM runs WHERE workflow = 'ticker'"
                                  " GROUP BY logical_time")
    assert all(n == 1 for _, n in per_instant), "an instant ran twice"
    assert sorted(t for t, _ in per_instant) == instants
    statuses = query(home, "SELECT status, count(*) FROM runs WHERE workflow = 'ticker' GROUP BY status")
    assert dict(statuses) == {"succeeded": len(instants)}, statuses
    lateness = [created - instant for instant, created in query(
        home, "SELECT logical_time, created FROM runs WHERE workflow = 'ticker' ORDER BY logical_time")]
    assert max(lateness) <= TAKEOVER, f"a firing was {max(lateness):.1f} s late (take-over bound {TAKEOVER} s)"
    assert executing == {"host-a", "host-b"}, f"runs executed only on {executing}: the hosts must share them"
    succeeded_twice = query(home, "SELECT run_id, task_id, count(*) FROM attempts WHERE status = 'succeeded'"
                                      " GROUP BY run_id, task_id HAVING count(*) > 1")
    assert not succeeded_twice, "a finished task ran again"
    print(f"lease taken over {took_over:.1f} s after SIGKILL; {len(instants)} instants, latest firing"
          f" {max(lateness):.2f} s late; runs executed on {sorted(executing)}")
