"""Schedulers on two hosts sharing one PostgreSQL store: each instant runs once, and the survivor takes over.

A "host" here is a ``taskloom scheduler`` process with a home folder of its own
(hosts share no folder) and its own ``TASKLOOM_HOST_ID``, so the store sees two
hosts: a pid of one means nothing to the other, and a run whose owner died is
found by its heartbeat's age. Both have ``--max-runs 1`` and every run takes
longer than the trigger's second, so the lease holder cannot run every firing
itself: it records the runs it has no room for as queued, and the other host
executes them.

The network-cut test puts each host in a Linux network namespace of its own
(tests/netns.py), reaching the server over a veth pair, and cuts the lease
holder off while its processes live on: silently (every packet dropped, as
behind a dead switch) and unplugged (its link down).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clitools import TASKLOOM, query, wait_for, write_flow
from conftest import make_doc
from netns import Island, require_netns

pytestmark = pytest.mark.slow

LEASE_TTL = 2.0
#: The longest a firing may be late after the lease holder is SIGKILLed (docs/deploy.md, "Several hosts"):
#: the lease must expire (its TTL), the standby looks every half TTL, then claims and starts the firing.
TAKEOVER = LEASE_TTL + LEASE_TTL / 2 + 1.0


class Host:
    """One simulated machine: its own home and host id, the shared store's URL, and optionally a network
    namespace of its own (:class:`netns.Island`) whose link a test can cut."""

    def __init__(self, name: str, root: Path, url: str, island: "Island | None" = None) -> None:
        self.name = name
        self.home = root / name
        self.home.mkdir()
        self.island = island
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
                    "TASKLOOM_HOME": str(self.home), "TASKLOOM_DATABASE_URL": url, "TASKLOOM_HOST_ID": name}
        self.err_path = root / f"{name}.err"
        self.proc: subprocess.Popen[str] | None = None

    def start_scheduler(self) -> None:
        argv = [TASKLOOM, "scheduler", "--no-api", "--lease-ttl", str(LEASE_TTL), "--max-runs", "1"]
        with open(self.err_path, "w") as err:  # a file, not a pipe: nobody reads it while the scheduler runs
            self.proc = subprocess.Popen(self.island.command(*argv) if self.island else argv, env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=err, text=True)

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        """The end of this host's scheduler log, for a failure message."""
        return f"\n--- {self.name}'s scheduler log (last {lines} lines) ---\n" + "\n".join(
            self.stderr.splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for_every_run_to_end(home: Path) -> None:
    """Until no run of the ticker is queued, running, or crashed and waiting to be resumed."""
    wait_for(lambda: not query(home, "SELECT id FROM runs WHERE workflow = 'ticker'"
                                     " AND status IN ('queued', 'running', 'crashed')"),
             timeout=180, what="every run to end")


def server_sessions(home: Path) -> str:
    """What every session of the store's server is doing (who holds or waits for a lock), for a failure message."""
    rows = query(home, "SELECT pid, client_addr, state, wait_event_type, wait_event,"
                       " round(extract(epoch FROM now() - xact_start)::numeric, 1), left(query, 120)"
                       " FROM pg_stat_activity WHERE datname = current_database()")
    return "--- the server's sessions (pid, client, state, waiting for, transaction age s, query) ---\n" + "\n".join(
        " | ".join(str(value) for value in row) for row in rows)


def assert_each_instant_ran_once(home: Path, instants: list[float], bound: float) -> tuple[list[float], float]:
    """Every second from the first firing to the last fired, each started exactly one run, every run succeeded,
    and none was created more than ``bound`` seconds after its instant; (the instants, the latest lateness)."""
    assert all(b - a == pytest.approx(1.0) for a, b in zip(instants, instants[1:])), "an instant is missing"
    fired = query(home, "SELECT DISTINCT status FROM firings WHERE workflow = 'ticker'")
    assert {status for (status,) in fired} <= {"started"}, "no firing may be missed or skipped"
    per_instant = query(home, "SELECT logical_time, count(*) FROM runs WHERE workflow = 'ticker'"
                              " GROUP BY logical_time")
    assert all(n == 1 for _, n in per_instant), "an instant ran twice"
    assert sorted(t for t, _ in per_instant) == instants
    statuses = query(home, "SELECT status, count(*) FROM runs WHERE workflow = 'ticker' GROUP BY status")
    assert dict(statuses) == {"succeeded": len(instants)}, statuses
    latest = max(created - instant for instant, created in query(
        home, "SELECT logical_time, created FROM runs WHERE workflow = 'ticker'"))
    assert latest <= bound, f"a firing was {latest:.1f} s late (bound {bound} s)"
    return instants, latest


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
        wait_for_every_run_to_end(home)
        survivor.stop()
    finally:
        for host in hosts.values():
            host.stop(signal.SIGKILL)
    rows = firings()
    instants, latest = assert_each_instant_ran_once(home, [r[0] for r in rows], TAKEOVER)
    assert executing == {"host-a", "host-b"}, f"runs executed only on {executing}: the hosts must share them"
    succeeded_twice = query(home, "SELECT run_id, task_id, count(*) FROM attempts WHERE status = 'succeeded'"
                                      " GROUP BY run_id, task_id HAVING count(*) > 1")
    assert not succeeded_twice, "a finished task ran again"
    print(f"lease taken over {took_over:.1f} s after SIGKILL; {len(instants)} instants, latest firing"
          f" {latest:.2f} s late; runs executed on {sorted(executing)}")


#: How long the server takes to drop the session of a host whose network went (TCP keepalives: idle 5 s, then 3
#: probes 2 s apart, taskloom.storage.postgres.SESSION_SETTINGS). A write transaction the host held open keeps the
#: write lock that long, so a cut, unlike a kill, can add this to the take-over (docs/deploy.md, "Several hosts").
DEAD_PEER = 5 + 3 * 2
CUT_TAKEOVER = DEAD_PEER + TAKEOVER
#: Longer than a runner's heartbeat TTL (15 s): the run the cut-off host was executing is taken over too.
CUT_FOR = 25.0


@pytest.mark.parametrize("how", ["silent", "unplugged"])
def test_a_lease_holder_cut_off_from_the_network_loses_the_lease_and_each_instant_still_runs_once(
        tmp_path, monkeypatch, how):
    """Both hosts live in network namespaces of their own and reach the server over a veth pair. The lease holder's
    network goes (``how``: see netns.Island.cut) for longer than a runner's heartbeat TTL (its processes live on,
    unlike a kill): the other host
    takes the lease and the cut-off host's run over; when the link comes back, the cut-off host steps down and
    executes queued runs again. Each instant ran once; nothing the cut-off host wrote after the cut survives."""
    require_netns()
    from pgserver import PostgresServer, fresh_database, require_postgres

    bindir = require_postgres()
    marks = tmp_path / "executions"
    doc = make_doc([{"id": "work", "type": "shell", "retries": 2, "retry_delay": 0, "params": {
                        "command": f"echo $TASKLOOM_RUN_ID $TASKLOOM_ATTEMPT_ID start >> {marks}; sleep 1.5;"
                                   f" echo $TASKLOOM_RUN_ID $TASKLOOM_ATTEMPT_ID end >> {marks}"}}],
                   name="ticker", triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}],
                   settings={"overlap": "allow", "max_active_runs": 100})
    with Island(1) as one, Island(2) as two, PostgresServer(
            bindir, also_listen=(one.gateway, two.gateway), trust=(one.network, two.network)) as server:
        url = fresh_database(server.url)
        monkeypatch.setenv("TASKLOOM_DATABASE_URL", url)  # the test reads the store over loopback, never cut
        hosts = {name: Host(name, tmp_path, url.replace("127.0.0.1", island.gateway), island)
                 for name, island in (("host-a", one), ("host-b", two))}
        imported = subprocess.run(hosts["host-a"].island.command(TASKLOOM, "import", write_flow(tmp_path, doc)),
                                  env=hosts["host-a"].env, capture_output=True, text=True, timeout=60)
        assert imported.returncode == 0, imported.stderr
        home = hosts["host-a"].home

        def firings():
            return query(home, "SELECT instant, status, run_id, claimed_by FROM firings WHERE workflow = 'ticker'"
                               " ORDER BY instant")

        for host in hosts.values():
            host.start_scheduler()
        try:
            wait_for(lambda: len(firings()) >= 15, timeout=90, what="15 firings on two hosts")
            holder_host, holder_id, token = query(home, "SELECT host, holder, token FROM scheduler_lease")[0]
            cut, survivor = hosts[holder_host], next(h for h in hosts.values() if h.name != holder_host)
            cut.island.cut(how)
            cut_at = time.time()
            in_flight = {run_id for (run_id,) in query(
                home, "SELECT r.id FROM runs r JOIN runners n ON n.id = r.owner"
                      " WHERE n.host = ? AND r.status = 'running'", cut.name)}
            try:
                wait_for(lambda: query(home, "SELECT host FROM scheduler_lease")[0][0] == survivor.name,
                         timeout=CUT_TAKEOVER + 5, what="the survivor to take the lease over")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; runs in flight on the cut-off host {sorted(in_flight)}\n"
                                     + server_sessions(home) + "".join(host.log_tail() for host in hosts.values()))
            took_over = time.time() - cut_at
            time.sleep(max(0.0, CUT_FOR - (time.time() - cut_at)))
            assert cut.proc.poll() is None, "a host cut off from the network keeps running"
            cut.island.mend()
            mended_at = time.time()
            wait_for(lambda: "lost the scheduler lease" in cut.stderr, timeout=60,
                     what="the cut-off host to step down once it can reach the server")
            count = len(firings())
            wait_for(lambda: len(firings()) >= count + 10, timeout=60, what="10 firings after the mend")
            paused = subprocess.run(survivor.island.command(TASKLOOM, "pause", "ticker"), env=survivor.env,
                                    capture_output=True, text=True, timeout=60)
            assert paused.returncode == 0, paused.stderr
            wait_for_every_run_to_end(home)
            for host in hosts.values():
                host.stop()
        finally:
            for host in hosts.values():
                host.stop(signal.SIGKILL)
        rows = firings()
        instants, latest = assert_each_instant_ran_once(home, [r[0] for r in rows], CUT_TAKEOVER)
        stale = [r for r in rows if r[3] == holder_id and cut_at < r[0] < mended_at]
        assert not stale, f"the cut-off host claimed instants while it could not hold the lease: {stale}"
        succeeded_twice = query(home, "SELECT run_id, task_id, count(*) FROM attempts WHERE status = 'succeeded'"
                                      " GROUP BY run_id, task_id HAVING count(*) > 1")
        assert not succeeded_twice, "a finished task ran again"
        for host in hosts.values():
            assert "Traceback" not in host.stderr, host.stderr
        executed = [line.split() for line in marks.read_text().splitlines()]
        once = sorted((int(r), w) for r, _, w in executed if int(r) not in in_flight)
        expected = sorted((r, w) for (r,) in query(home, "SELECT id FROM runs") if r not in in_flight
                          for w in ("start", "end"))
        assert once == expected, \
            "a run the cut-off host was not executing ran its task more than once"
        assert "psycopg.pool" not in cut.stderr, "the pool's reconnect warnings flood the service log"
        print(f"{how} cut: lease (token {token}) taken over {took_over:.1f} s after the cut; cut for {mended_at - cut_at:.0f} s;"
              f" {len(instants)} instants, latest firing {latest:.2f} s late; runs in flight on the cut-off"
              f" host {sorted(in_flight)}, their executions {[m for m in executed if int(m[0]) in in_flight]}")


#: A program for a cut-off host: one session holds the write lock, then a second waits for it.
_HOLD_AND_WAIT = """
import sys, threading, time
from taskloom.storage.postgres import open_postgres
holder, waiter = (open_postgres(sys.argv[1], lock_timeout=120) for _ in range(2))
def wait():
    with waiter.write_txn():
        time.sleep(120)
with holder.write_txn():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    threading.Thread(target=wait, daemon=True).start()
    time.sleep(120)
"""


def test_a_cut_off_hosts_waiting_writer_does_not_inherit_the_write_lock(tmp_path):
    """A cut-off host holds the write lock in one session and waits for it in another. When the server drops the
    holder (its keepalives), the lock must go to a host that can use it: were the cut-off waiter still queued, the
    server would grant it the lock and then wait for its dead connection's retransmission timeout (10 s more for
    each such waiter: a take-over of 18 s, past the bound, measured before waiters left the queue every second)."""
    require_netns()
    import psycopg
    from pgserver import PostgresServer, fresh_database, require_postgres

    from taskloom.storage.postgres import WRITE_LOCK

    bindir = require_postgres()
    with Island(1) as one, PostgresServer(bindir, also_listen=(one.gateway,), trust=(one.network,)) as server:
        url = fresh_database(server.url)
        host = subprocess.Popen(
            one.command(sys.executable, "-c", _HOLD_AND_WAIT, url.replace("127.0.0.1", one.gateway), "3"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if host.stdout.readline().strip() != "held":
                host.kill()
                raise AssertionError(f"the cut-off host's program did not take the lock: {host.communicate()[1]}")
            with psycopg.connect(url, autocommit=True) as conn:
                wait_for(lambda: conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0],
                    timeout=20, what="the second session to wait for the lock")
                one.cut("silent")
                cut_at = time.monotonic()
                conn.execute("SET lock_timeout = '60s'")
                conn.execute("SELECT pg_advisory_lock(%s)", [WRITE_LOCK])
                free_after = time.monotonic() - cut_at
        finally:
            host.kill()
            host.wait()
    assert free_after < DEAD_PEER + 2, f"the write lock was free only {free_after:.1f} s after the cut"
    print(f"write lock free {free_after:.1f} s after the cut (dead peer {DEAD_PEER} s)")
