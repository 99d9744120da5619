"""Fault injection at the storage layer with real processes and real files (issue 10).

* The database on a full file system: a small tmpfs really filled up when
  this machine lets the test mount one (root, CAP_SYS_ADMIN), and always the
  simulated ``SQLITE_FULL`` of the ``storage.commit`` failpoint. A command
  says what failed and where, and stores nothing; the scheduler logs the
  error, keeps running, and resumes the run it had to stop once there is space.
* A read-only database: the scheduler refuses to start naming the path, a
  command says why it cannot write.
* Another process holding the write lock past the busy timeout: the command
  waits and succeeds once the lock is free; past ``TASKLOOM_LOCK_TIMEOUT`` it
  gives up with a message naming the path, never "database is locked".

After each fault ``PRAGMA integrity_check`` must say ok.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from taskloom.storage.sqlite import sqlite3
from clitools import TASKLOOM, env_for, pid_alive, query, taskloom, wait_for, write_flow
from conftest import make_doc

pytestmark = pytest.mark.slow


def cli(home: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``taskloom ARGS`` with extra environment variables."""
    return subprocess.run([TASKLOOM, *args], env=env_for(home, **env), cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def versions(home: Path, name: str) -> list[int]:
    return [v for (v,) in query(home, "SELECT version FROM workflow_versions WHERE workflow = ? ORDER BY version", name)]


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 1 with an ``error:`` line holding every needle, and no traceback or raw SQLite lock message."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    text = " ".join(result.stderr.split())  # rich wraps long lines
    assert "error:" in text, result.stderr
    for needle in needles:
        assert needle in text, f"{needle!r} not in {result.stderr!r}"
    assert "Traceback" not in result.stderr and "database is locked" not in result.stderr


# -- full file systems: a real tmpfs, or the simulated SQLITE_FULL ----------------------------


class Mount:
    """A small tmpfs this test mounted (unmounted at the end)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Write a file until the file system refuses (ENOSPC)."""
        fd = os.open(self.path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
            try:  # the last pages too
                while True:
                    os.write(fd, b"\0" * 512)
            except OSError:
                pass
        finally:
            os.close(fd)

    def free(self) -> None:
        (self.path / "filler").unlink()

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True, capture_output=True)


def mount_tmpfs(folder: Path, size: str) -> Mount:
    """Mount a tmpfs of ``size`` on ``folder``; skip the test (saying why) when this machine does not allow it."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the simulated SQLITE_FULL variant covers this path")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()}); "
                    "the simulated SQLITE_FULL variant covers this path")
    return Mount(folder)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    mounted: list[Mount] = []

    def make(size: str = "16m") -> Mount:
        mount = mount_tmpfs(tmp_path / "mnt", size)
        mounted.append(mount)
        return mount

    yield make  # type: ignore[misc]
    for mount in mounted:
        subprocess.run(["umount", "-l", str(mount.path)], capture_output=True)


class Disk:
    """Where the home lives and how it fills up: a real tmpfs or the ``storage.commit=full`` failpoint."""

    def __init__(self, how: str, tmp_path: Path, tmpfs) -> None:
        self.how = how
        self.armed = tmp_path / "failpoints"
        if how == "tmpfs":
            self.mount = tmpfs()
            self.home = self.mount.path / "home"
        else:
            self.home = tmp_path / "home"
        self.home.mkdir()
        self.db = self.home / "taskloom.db"
        # processes started with this environment read the failpoint file at every commit
        self.env = {} if how == "tmpfs" else {"TASKLOOM_FAILPOINTS_FILE": str(self.armed)}

    def fill(self) -> None:
        if self.how == "tmpfs":
            self.mount.fill()
        else:
            self.armed.write_text("storage.commit=full")

    def free(self) -> None:
        if self.how == "tmpfs":
            self.mount.free()
        else:
            self.armed.unlink()


@pytest.fixture(params=["tmpfs", "failpoint"])
def disk(request, tmp_path, tmpfs) -> Disk:
    return Disk(request.param, tmp_path, tmpfs)


def test_import_on_a_full_disk_says_so_and_stores_nothing(disk, tmp_path):
    doc = make_doc([{"id": "a", "type": "noop"}], name="full")
    assert cli(disk.home, "import", write_flow(tmp_path, doc)).returncode == 0
    doc["tasks"].append({"id": "b", "type": "shell", "params": {"command": "echo " + "x" * 20_000}})
    disk.fill()
    refused = cli(disk.home, "import", write_flow(tmp_path, doc), **disk.env)
    assert_clean_error(refused, str(disk.db), "the disk is full", "free space")
    print(f"[{disk.how}] import on a full disk: exit {refused.returncode}: {' '.join(refused.stderr.split())}")
    disk.free()
    assert versions(disk.home, "full") == [1], "nothing of the refused import was stored"
    assert integrity(disk.db) == "ok"
    assert cli(disk.home, "import", write_flow(tmp_path, doc)).returncode == 0
    assert versions(disk.home, "full") == [1, 2]


def test_full_disk_during_a_run_the_scheduler_keeps_running_and_resumes_the_run(disk, tmp_path):
    """The disk fills while a chatty task runs: its run stops (the task is killed), the scheduler logs the error
    and stays up; once there is space the crash is recorded, the task retried (per its policy) and the run ends."""
    executions, gate = tmp_path / "executions", tmp_path / "gate"
    chatter = "x" * 300
    doc = make_doc([{
        "id": "talk", "type": "shell", "retries": 1, "retry_delay": 0, "timeout": 120,
        "params": {"command": f"echo $TASKLOOM_ATTEMPT $$ >> {executions};"
                              f" while [ ! -e {gate} ]; do echo {chatter}; sleep 0.005; done; echo done"},
    }], name="chatty")
    assert cli(disk.home, "import", write_flow(tmp_path, doc)).returncode == 0
    err_path = tmp_path / "scheduler.err"
    with open(err_path, "w") as err:
        service = subprocess.Popen([TASKLOOM, "scheduler", "--no-api", "--lease-ttl", "2"],
                                   env=env_for(disk.home, **disk.env), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=err, text=True)
    try:
        wait_for(lambda: query(disk.home, "SELECT pid FROM scheduler_lease")[0][0] == service.pid, what="the lease")
        assert cli(disk.home, "trigger", "chatty").returncode == 0
        wait_for(lambda: query(disk.home, "SELECT count(*) FROM logs")[0][0] > 50, what="the task to chatter")
        first_pid = int(executions.read_text().split()[1])

        disk.fill()
        stderr = lambda: " ".join(err_path.read_text().split())  # noqa: E731
        wait_for(lambda: "run 1 stopped" in stderr(), timeout=20, what="the scheduler to report the stopped run")
        wait_for(lambda: not pid_alive(first_pid), timeout=15, what="the stopped run's task to be killed")
        time.sleep(3)  # the disk stays full a while: the scheduler must ride it out
        assert service.poll() is None, f"the scheduler died on a full disk: {stderr()}"
        stopped_status = query(disk.home, "SELECT status FROM runs WHERE id = 1")[0][0]

        disk.free()
        wait_for(lambda: len(executions.read_text().split()) == 4, timeout=30, what="the retry after the disk freed")
        gate.touch()
        wait_for(lambda: query(disk.home, "SELECT status FROM runs WHERE id = 1")[0][0] == "succeeded", timeout=30,
                 what="the resumed run to succeed")
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    log = stderr()
    assert f"cannot write to database {disk.db}: the disk is full" in log
    assert "the scheduler keeps running and tries again" in log
    assert "the database can be written again" in log and "run 1: recorded as crashed" in log
    assert "Traceback" not in log
    attempts = query(disk.home, "SELECT number, status, error FROM attempts WHERE run_id = 1 ORDER BY number")
    assert [(n, s) for n, s, _ in attempts] == [(1, "crashed"), (2, "succeeded")]
    assert "the database could not be written: the disk is full" in attempts[0][2]
    assert [line.split()[0] for line in executions.read_text().splitlines()] == ["1", "2"]
    assert query(disk.home, "SELECT count(*) FROM runs")[0][0] == 1
    assert integrity(disk.db) == "ok"
    print(f"[{disk.how}] run 1 while the disk was full: {stopped_status}; attempts {attempts};"
          f" log lines kept {query(disk.home, 'SELECT count(*) FROM logs')[0][0]}")


def test_foreground_run_on_a_full_disk_stops_cleanly_and_resumes_later(disk, tmp_path):
    """``taskloom run`` while the disk fills: a message naming the database and how to go on, no traceback, the
    task killed; ``taskloom resume`` finishes it once there is space (the crashed attempt used its retry)."""
    executions, gate = tmp_path / "executions", tmp_path / "gate"
    doc = make_doc([{
        "id": "talk", "type": "shell", "retries": 1, "retry_delay": 0,
        "params": {"command": f"echo $TASKLOOM_ATTEMPT $$ >> {executions};"
                              f" while [ ! -e {gate} ]; do echo {'y' * 300}; sleep 0.005; done"},
    }], name="fg")
    runner = subprocess.Popen([TASKLOOM, "run", write_flow(tmp_path, doc)], env=env_for(disk.home, **disk.env),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: query(disk.home, "SELECT count(*) FROM logs")[0][0] > 50, what="the task to chatter")
        disk.fill()
        out, err = runner.communicate(timeout=30)
    finally:
        runner.kill()
    text = " ".join(err.split())
    assert runner.returncode == 1
    assert f"run 1 stopped: cannot write to database {disk.db}: the disk is full" in text, err
    assert "resume it with: taskloom resume 1" in text
    assert "Traceback" not in err
    task_pid = int(executions.read_text().split()[1])
    wait_for(lambda: not pid_alive(task_pid), timeout=10, what="the task to be killed")
    disk.free()
    gate.touch()
    resumed = cli(disk.home, "resume", "1", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    attempts = json.loads(resumed.stdout)["tasks"]["talk"]["attempt_list"]
    assert [a["status"] for a in attempts] == ["crashed", "succeeded"]
    assert integrity(disk.db) == "ok"
    print(f"[{disk.how}] taskloom run on a full disk: exit 1: {text}; after resume: {[a['status'] for a in attempts]}")


def test_the_scheduler_refuses_to_start_on_a_full_disk(tmp_path):
    """Simulated: at start there is nothing to keep alive, so a clear refusal naming the path."""
    home = tmp_path / "home"
    assert taskloom(home, "list").returncode == 0  # creates the database
    started = time.monotonic()
    refused = cli(home, "scheduler", "--no-api", TASKLOOM_FAILPOINTS="storage.commit=full")
    assert_clean_error(refused, "the scheduler cannot start", str(home / "taskloom.db"), "the disk is full")
    assert time.monotonic() - started < 20
    assert integrity(home / "taskloom.db") == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "resume"])
def test_foreground_commands_that_cannot_even_take_their_heartbeat_exit_cleanly(tmp_path, command):
    """Simulated full disk from the first write: `run` and `resume` print the path and the fix, no traceback."""
    home = tmp_path / "home"
    assert taskloom(home, "list").returncode == 0
    flow = write_flow(tmp_path, make_doc([{"id": "a", "type": "noop"}]))
    args = [command, flow] if command == "run" else [command, "1"]
    refused = cli(home, *args, cwd=tmp_path, TASKLOOM_FAILPOINTS="storage.commit=full")
    assert_clean_error(refused, str(home / "taskloom.db"), "the disk is full")
    assert integrity(home / "taskloom.db") == "ok"


# -- a read-only database ------------------------------------------------------------------------


def test_a_write_refused_as_read_only_names_the_file_and_the_fix(home):
    """In-process: SQLite refuses the write with SQLITE_READONLY (here through ``query_only``, as for a file
    without write permission); the error names the file and says how to make it writable."""
    from taskloom.storage.db import StorageError, connect, write_txn

    db = connect(home / "taskloom.db")
    try:
        db.execute("PRAGMA query_only = ON")
        with pytest.raises(StorageError) as caught:
            with write_txn(db):
                db.execute("UPDATE workflows SET paused = 1")
    finally:
        db.conn.close()
    error = caught.value
    assert (error.kind, error.path) == ("readonly", str(home / "taskloom.db"))
    assert f"cannot write to database {home / 'taskloom.db'}: the database is read-only" in str(error)
    assert "writable by this user" in str(error)


def test_read_only_database_scheduler_refuses_to_start_and_import_says_why(tmp_path, tmpfs):
    """Root ignores file modes, so as root the database sits on a tmpfs remounted read-only; otherwise the
    file is chmod 0444."""
    if os.geteuid() == 0:
        mount = tmpfs("8m")
        home = mount.path / "home"
    else:
        mount, home = None, tmp_path / "home"
    doc = make_doc([{"id": "a", "type": "noop"}], name="ro")
    assert taskloom(home, "import", write_flow(tmp_path, doc)).returncode == 0
    db = home / "taskloom.db"
    if mount is not None:
        mount.remount("ro")
    else:
        db.chmod(0o444)
    try:
        started = time.monotonic()
        refused = cli(home, "scheduler", "--no-api")
        assert time.monotonic() - started < 20
        assert_clean_error(refused, "the scheduler cannot start", str(db), "read-only")
        doc["tasks"].append({"id": "b", "type": "noop"})
        import_refused = cli(home, "import", write_flow(tmp_path, doc))
        assert_clean_error(import_refused, str(db), "read-only")
        print(f"scheduler on a read-only database: {' '.join(refused.stderr.split())}")
        print(f"import on a read-only database: {' '.join(import_refused.stderr.split())}")
    finally:
        if mount is not None:
            mount.remount("rw")
        else:
            db.chmod(0o644)
    assert versions(home, "ro") == [1]
    assert integrity(db) == "ok"


# -- another process holding the write lock -------------------------------------------------------

HOLDER = """
import sys, time
from taskloom.storage.sqlite import sqlite3
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", time.time(), flush=True)
time.sleep(float(sys.argv[2]))
print("released", time.time(), flush=True)
conn.execute("COMMIT")
"""


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes the write lock and keeps it ``seconds``; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().startswith("locked")
    return holder


def released_at(holder: subprocess.Popen[str]) -> float:
    out, _ = holder.communicate(timeout=30)
    return float(out.split()[1])


def test_import_waits_for_a_write_lock_held_past_the_busy_timeout(tmp_path, home):
    assert taskloom(home, "import", write_flow(tmp_path, make_doc([{"id": "a", "type": "noop"}], name="lk"))).returncode == 0
    doc = make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], name="lk")
    holder = hold_write_lock(home / "taskloom.db", 3)
    started = time.time()
    # each SQLite wait gives up after 0.3 s, ten times shorter than the lock is held
    result = cli(home, "import", write_flow(tmp_path, doc), TASKLOOM_BUSY_TIMEOUT_MS="300",
                 TASKLOOM_LOCK_TIMEOUT="60")
    finished, freed = time.time(), released_at(holder)
    assert result.returncode == 0, result.stderr
    assert "imported lk version 2" in result.stdout
    assert finished >= freed, "it succeeded only once the lock was free"
    assert "waiting for the write lock on" in result.stderr and str(home / "taskloom.db") in result.stderr
    assert "database is locked" not in result.stderr and "Traceback" not in result.stderr
    assert versions(home, "lk") == [1, 2]
    assert integrity(home / "taskloom.db") == "ok"
    print(f"import under a 3 s lock: waited {finished - started:.1f} s, done {finished - freed:.2f} s after the"
          f" release; stderr: {result.stderr.strip()!r}")


def test_run_waits_for_a_write_lock_held_while_it_runs(tmp_path, home):
    started_file = tmp_path / "started"
    doc = make_doc(
        [{"id": "first", "type": "shell", "params": {"command": f"touch {started_file}; sleep 0.5; echo one"}},
         {"id": "second", "type": "shell", "params": {"command": "echo two"}}],
        [{"from": "first", "to": "second"}], name="locked-run",
    )
    runner = subprocess.Popen([TASKLOOM, "run", write_flow(tmp_path, doc), "--json"], cwd=tmp_path,
                              env=env_for(home, TASKLOOM_BUSY_TIMEOUT_MS="300", TASKLOOM_LOCK_TIMEOUT="60"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(started_file.exists, what="the first task to start")
        holder = hold_write_lock(home / "taskloom.db", 3)
        out, err = runner.communicate(timeout=60)
    finally:
        runner.kill()
    freed = released_at(holder)
    result = json.loads(out)
    assert runner.returncode == 0 and result["status"] == "succeeded", err
    assert [t["status"] for t in result["tasks"].values()] == ["succeeded", "succeeded"]
    second = result["tasks"]["second"]["attempt_list"][0]
    ended = query(home, "SELECT ended FROM runs WHERE id = ?", result["run_id"])[0][0]
    assert ended >= freed, "the run's end was written after the lock was released"
    assert "database is locked" not in err and "Traceback" not in err
    assert integrity(home / "taskloom.db") == "ok"
    print(f"run under a 3 s lock: {result['status']}; second task started {second['started']};"
          f" run ended {ended - freed:.2f} s after the release")


def test_a_lock_held_past_the_lock_timeout_is_a_clear_error(tmp_path, home):
    assert taskloom(home, "import", write_flow(tmp_path, make_doc([{"id": "a", "type": "noop"}], name="lk"))).returncode == 0
    doc = make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], name="lk")
    holder = hold_write_lock(home / "taskloom.db", 8)
    started = time.monotonic()
    result = cli(home, "import", write_flow(tmp_path, doc), TASKLOOM_BUSY_TIMEOUT_MS="200", TASKLOOM_LOCK_TIMEOUT="1.5")
    took = time.monotonic() - started
    holder.kill()
    holder.wait()
    assert_clean_error(result, str(home / "taskloom.db"), "another process held the write lock",
                       "TASKLOOM_LOCK_TIMEOUT is 1.5 s", "fuser", "nothing stored")
    assert 1.5 <= took < 1.5 + 5, f"gave up after {took:.1f} s"
    assert versions(home, "lk") == [1]
    assert integrity(home / "taskloom.db") == "ok"
    print(f"import under an 8 s lock with a 1.5 s limit: exit 1 after {took:.1f} s: {' '.join(result.stderr.split())}")


# -- several processes writing one database at once -----------------------------------------------------------

ROUNDS = 5
CHATTER = 400  # log lines per run: the WAL grows and is checkpointed while the other processes write


def _busy_flow(name: str, marks: Path) -> dict:
    """Two shell tasks: the first marks its execution and prints CHATTER lines, the second marks its own."""
    loop = f'i=0; while [ $i -lt {CHATTER} ]; do echo "line $i of run $TASKLOOM_RUN_ID"; i=$((i+1)); done'
    return make_doc(
        [{"id": "talk", "type": "shell",
          "params": {"command": f"echo $TASKLOOM_RUN_ID talk $TASKLOOM_ATTEMPT >> {marks}; {loop}"}},
         {"id": "after", "type": "shell",
          "params": {"command": f"echo $TASKLOOM_RUN_ID after $TASKLOOM_ATTEMPT >> {marks}"}}],
        [{"from": "talk", "to": "after"}], name=name,
    )


def test_writers_in_several_processes_beside_the_scheduler_lose_nothing(tmp_path, home):
    """A real ``taskloom scheduler`` runs triggered runs while, in each round, four other real processes write the
    same database at once (``import``, a foreground ``run``, ``secrets set``, ``trigger``), the README's everyday
    flow beside a running service, and another connection checkpoints the WAL every 50 ms (what the WAL-reset
    bug needs): the database stays intact, every run ends once with each task executed once, and every version,
    secret, run and log line is there, with no warning about writing processes."""
    from taskloom.storage.db import connect
    from taskloom.storage.secrets import SecretStore

    marks, db = tmp_path / "executions", home / "taskloom.db"
    flows = [write_flow(tmp_path, _busy_flow(name, marks), f"{name}.json") for name in ("fg", "bg")]
    assert taskloom(home, "import", *flows).returncode == 0
    err_path = tmp_path / "scheduler.err"
    started = time.monotonic()
    with open(err_path, "w") as err:
        service = subprocess.Popen([TASKLOOM, "scheduler", "--no-api"], env=env_for(home), cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=err, text=True)
    checkpoints: list[tuple[int, int, int]] = []
    done = threading.Event()

    def checkpoint() -> None:  # a checkpointer in yet another connection, as a backup tool or a sqlite3 shell
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            while not done.wait(0.05):
                checkpoints.append(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        finally:
            conn.close()

    checkpointer = threading.Thread(target=checkpoint, name="checkpointer")
    try:
        wait_for(lambda: query(home, "SELECT pid FROM scheduler_lease")[0][0] == service.pid, what="the lease")
        checkpointer.start()
        for n in range(1, ROUNDS + 1):
            version = write_flow(tmp_path, make_doc([{"id": f"t{i}", "type": "noop"} for i in range(n)], name="imp"),
                                 f"imp{n}.json")
            commands = {"import": ["import", version], "run": ["run", "fg"],
                        "secrets set": ["secrets", "set", f"TOKEN_{n}"], "trigger": ["trigger", "bg"]}
            procs = {what: subprocess.Popen([TASKLOOM, *args], env=env_for(home), cwd=tmp_path, text=True,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for what, args in commands.items()}
            for what, proc in procs.items():  # all four are running before any is waited for
                out, errs = proc.communicate(f"value-{n}" if what == "secrets set" else "", timeout=60)
                assert proc.returncode == 0, (n, what, out, errs)
                assert "Traceback" not in errs and "one writing process" not in errs, (n, what, errs)
        wait_for(lambda: query(home, "SELECT count(*) FROM runs WHERE workflow = 'bg' AND ended IS NOT NULL")[0][0]
                 == ROUNDS, timeout=60, what="every triggered run to end")
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0
    finally:
        done.set()
        if checkpointer.is_alive():
            checkpointer.join(timeout=30)
        if service.poll() is None:
            service.kill()
            service.wait()
    seconds = time.monotonic() - started
    full = sum(1 for busy, wal, moved in checkpoints if not busy and wal == moved and wal > 0)
    log = err_path.read_text()
    assert "one writing process" not in log and "WAL-reset" not in log and "Traceback" not in log, log

    assert integrity(db) == "ok"
    runs = query(home, "SELECT id, workflow, status, ended FROM runs ORDER BY id")
    assert sorted(w for _, w, _, _ in runs) == ["bg"] * ROUNDS + ["fg"] * ROUNDS
    assert {(s, e is not None) for _, _, s, e in runs} == {("succeeded", True)}, runs
    # each task of each run executed once and has one attempt, which succeeded
    expected = sorted((run_id, task, 1) for run_id, *_ in runs for task in ("talk", "after"))
    executed = sorted((int(r), t, int(a)) for r, t, a in (line.split() for line in marks.read_text().splitlines()))
    assert executed == expected
    attempts = query(home, "SELECT run_id, task_id, number, status FROM attempts")
    assert sorted((r, t, n) for r, t, n, _ in attempts) == expected and {s for *_, s in attempts} == {"succeeded"}
    states = query(home, "SELECT status, attempts, count(*) FROM task_states GROUP BY status, attempts")
    assert states == [("succeeded", 1, 2 * len(runs))]
    # every log line of every run, every version, every secret
    for run_id, *_ in runs:
        lines = [line for (line,) in query(home, "SELECT line FROM logs WHERE run_id = ? AND task_id = 'talk'"
                                                 " AND stream = 'stdout' ORDER BY id", run_id)]
        assert lines == [f"line {i} of run {run_id}" for i in range(CHATTER)], run_id
    assert versions(home, "imp") == list(range(1, ROUNDS + 1))
    store_db = connect(db)
    try:
        assert SecretStore(store_db, home).values() == {f"TOKEN_{n}": f"value-{n}" for n in range(1, ROUNDS + 1)}
        linked = store_db.execute("SELECT sqlite_version()").fetchone()[0]
    finally:
        store_db.conn.close()
    print(f"{ROUNDS} rounds of import + run + secrets set + trigger beside a scheduler: {seconds:.1f} s,"
          f" {len(runs)} runs, {query(home, 'SELECT count(*) FROM logs')[0][0]} log lines,"
          f" {len(checkpoints)} checkpoints from another connection ({full} complete); SQLite {linked}")
