"""Issue 10, log safety: hostile and chatty task output is stored escaped and capped, shown escaped, and
neither starves the scheduler's heartbeat nor grows the runner's memory.

Real processes throughout: shell tasks, python tasks in the warm pool and in a one-shot interpreter, a
Dask LocalCluster, the ``taskloom`` command and a ``taskloom scheduler`` process. Figures the slow tests
measure are printed (``pytest -s``) for the guarantees page.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from taskloom.core.attemptlog import AttemptLog
from taskloom.core.logtext import LogLimits, cap_line, cut_bytes, escape_line
from taskloom.runtime.process import LineSplitter
from taskloom.core.registry import TaskType
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskFunction
from taskloom.storage.heartbeat import DEFAULT_INTERVAL
from taskloom.storage.sqlite import sqlite3
from taskloom.storage.store import Workspace
from taskloom.runtime.execution import execute as execute_run
from tests.clitools import TASKLOOM, env_for, start, taskloom, wait_for

MIB = 1024 * 1024

#: A program printing every kind of hostile output the issue names, then a 5 MiB line.
NASTY = r"""
import sys
w = sys.stdout.buffer.write
w(b"bad \xff\xfe utf8\n")
w(b"nul a\x00b\n")
w(b"cr 10%\r50%\r100%\r\n")
w(b"ansi \x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J\n")
w(b"markup [red]x[/] [link=http://x]y[/link]\n")
w("bidi \u202eevil c1 \u009b31m".encode() + b"\n")
w(b"x" * (5 * 1024 * 1024) + b"\n")
w(b"end")
sys.stdout.flush()
"""
NASTY_STORED = [
    "bad \\xff\\xfe utf8",
    "nul a\\x00b",
    "cr 10%\\r50%\\r100%",
    "ansi \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07 \\x1b[2J",
    "markup [red]x[/] [link=http://x]y[/link]",
    "bidi \\u202eevil c1 \\u009b31m",
    None,  # the 5 MiB line: checked on its own
    "end",
]
FIVE_MIB = 5 * MIB


def nasty_doc(name: str, kinds: tuple[str, ...] = ("shell", "python")) -> dict[str, Any]:
    """One task per kind, each printing :data:`NASTY`."""
    tasks = []
    if "shell" in kinds:
        tasks.append({"id": "sh", "type": "shell", "params": {"command": f"{sys.executable} -c '{NASTY}'"}})
    if "python" in kinds:
        tasks.append({"id": "py", "type": "python", "params": {"code": NASTY + "\ndef main():\n    return 1\n"}})
    return {"format": "taskloom/v1", "name": name, "tasks": tasks}


def stored(ws: Workspace, run_id: int, task_id: str, stream: str | None = "stdout") -> list[str]:
    sql = "SELECT line FROM logs WHERE run_id = ? AND task_id = ?" + (" AND stream = ?" if stream else "")
    args = [run_id, task_id, *([stream] if stream else [])]
    return [r[0] for r in ws.db.execute(sql + " ORDER BY id", args)]


def system_lines(ws: Workspace, run_id: int, task_id: str) -> list[str]:
    return stored(ws, run_id, task_id, "system")


def execute(ws: Workspace, doc: dict[str, Any], cwd: Path, **kwargs: Any) -> int:
    ws.save(doc)
    run_id, _ = ws.start_run(ws.target(doc["name"]), {})
    execute_run(ws, run_id, cwd=str(cwd), **kwargs)
    return run_id


def assert_nasty_stored(lines: list[str], line_cap: int) -> None:
    assert len(lines) == len(NASTY_STORED), lines[:6]
    for got, want in zip(lines, NASTY_STORED):
        if want is not None:
            assert got == want
    long = lines[NASTY_STORED.index(None)]
    assert long == "x" * line_cap + f"… [cut {FIVE_MIB - line_cap:,} bytes]"
    for line in lines:
        assert not any(ord(c) < 0x20 and c != "\t" for c in line), repr(line[:80])


class OneShot:
    """An executor without a warm pool: ``python`` tasks start a fresh interpreter per attempt."""

    name = "one-shot"

    def execute(self, task_type: TaskType, function: TaskFunction, ctx: AttemptContext) -> AttemptResult:
        return function(ctx)

    def close(self) -> None:
        pass


# -- the reader: cutting long lines without holding them ------------------------------------------


def reference_lines(data: bytes, cap: int) -> list[str]:
    """What the splitter must deliver for ``data``, computed the simple way, on whole lines."""
    def boundary(line: bytes) -> int:  # not inside a UTF-8 character when a start byte is within 3 bytes
        for at in (cap, cap - 1, cap - 2, cap - 3):
            if at > 0 and line[at] & 0xC0 != 0x80:
                return at
        return cap

    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()
    out = []
    for line in lines:
        line = line[:-1] if line.endswith(b"\r") else line
        if len(line) <= cap:
            out.append(line.decode("utf-8", "backslashreplace"))
        else:
            at = boundary(line)
            out.append(line[:at].decode("utf-8", "backslashreplace") + f"… [cut {len(line) - at:,} bytes]")
    return out


def test_splitter_cuts_long_lines_the_same_whatever_the_chunking() -> None:
    alphabet = [b"a", b"b", b"\r", b"\n", b"\xe2\x82\xac", b"\xff", b"\x00", b"\x1b[31m"]
    for seed in range(300):
        rng = random.Random(seed)
        data = b"".join(rng.choice(alphabet) * rng.choice([1, 1, 2, 7, 40]) for _ in range(rng.randint(0, 300)))
        cap = rng.choice([1, 3, 4, 5, 16, 64])
        got: list[str] = []
        splitter = LineSplitter("stdout", lambda _s, line: got.append(line), cap)
        at = 0
        while at < len(data):
            step = rng.randint(1, 50)
            splitter.feed(data[at:at + step])
            at += step
        splitter.finish()
        assert got == reference_lines(data, cap), (seed, data, cap)


def test_cap_line_and_escape_line_rules() -> None:
    assert escape_line("a\x00b\rc\nd\x1b[0m\x7f\u009b\u2028\u202e\tz") == (
        "a\\x00b\\rc\\nd\\x1b[0m\\x7f\\u009b\\u2028\\u202e\tz"
    )
    assert escape_line(escape_line("\x1b")) == "\\x1b"
    assert cap_line("é" * 10, 5) == "éé… [cut 16 bytes]"
    assert cut_bytes(cap_line("x" * 100, 10)) == 90


def test_attempt_log_caps_per_attempt_and_reports_once() -> None:
    kept: list[Any] = []
    log = AttemptLog(kept.append, 1, "t", 1, clock=time.time,
                     limits=LogLimits(max_line_bytes=8, max_lines_per_attempt=3, max_bytes_per_attempt=1000))
    for n in range(10):
        log("stdout", f"line {n} \x1b[1m")
    log.close()
    log.close()
    assert [(k.stream, k.line) for k in kept[:3]] == [
        ("stdout", "line 0 \\… [cut 6 bytes]"), ("stdout", "line 1 \\… [cut 6 bytes]"),
        ("stdout", "line 2 \\… [cut 6 bytes]"),
    ]
    notice, summary = kept[3:]
    assert notice.stream == summary.stream == "system"
    assert "log cap reached: 3 lines" in notice.line and "logs.max_lines_per_attempt is 3" in notice.line
    assert summary.line.startswith("7 lines (77 bytes) of this attempt were not stored")


# -- hostile output, stored escaped with the cut recorded -----------------------------------------


@pytest.mark.parametrize("where", ["shell", "python-pool", "python-one-shot"])
def test_hostile_output_and_a_5_mib_line_are_stored_escaped_and_cut(ws: Workspace, tmp_path: Path, where: str) -> None:
    kind = "shell" if where == "shell" else "python"
    extra = {"executor": OneShot()} if where == "python-one-shot" else {}
    run_id = execute(ws, nasty_doc(f"nasty-{where}", (kind,)), tmp_path, **extra)
    task = "sh" if kind == "shell" else "py"
    assert ws.run(run_id).tasks[task].status == "succeeded", ws.run(run_id).tasks[task].error
    assert_nasty_stored(stored(ws, run_id, task), 1_000_000)
    print(f"\n{where}: 8 lines stored; the 5 MiB line kept 1,000,000 bytes, cut {FIVE_MIB - 1_000_000:,}")


def test_the_per_line_cap_is_configurable(ws: Workspace, home: Path, tmp_path: Path) -> None:
    assert taskloom(home, "config", "set", "logs.max_line_bytes", "65536").returncode == 0
    run_id = execute(ws, nasty_doc("nasty-64k"), tmp_path)
    for task in ("sh", "py"):
        assert_nasty_stored(stored(ws, run_id, task), 65536)
    refused = taskloom(home, "config", "set", "logs.max_line_bytes", "0")
    assert refused.returncode != 0 and "at least 1" in refused.stderr + refused.stdout


def test_a_shell_task_output_longer_than_the_line_cap_is_the_cut_text(ws: Workspace, home: Path, tmp_path: Path) -> None:
    """A shell task's output is its last stdout line, as read: a longer one is cut, so it is no JSON any more."""
    assert taskloom(home, "config", "set", "logs.max_line_bytes", "100").returncode == 0
    doc = {"format": "taskloom/v1", "name": "out", "tasks": [
        {"id": "short", "type": "shell", "params": {"command": "echo '{\"rows\": 3}'"}},
        {"id": "long", "type": "shell", "params": {"command": "echo '{\"rows\": \"'$(printf %0150d 0)'\"}'"}},
    ]}
    run_id = execute(ws, doc, tmp_path)
    tasks = ws.run(run_id).tasks
    assert tasks["short"].output == {"rows": 3}
    assert tasks["long"].output == '{"rows": "' + "0" * 90 + "… [cut 62 bytes]"


# -- the per-attempt cap --------------------------------------------------------------------------


FLAT = "import sys\nw = sys.stdout.write\nfor i in range({n}):\n    w(f'line {{i}}\\n')\n"


def test_per_attempt_line_cap_from_config_keeps_the_first_lines_and_counts_the_rest(
    ws: Workspace, home: Path, tmp_path: Path
) -> None:
    assert taskloom(home, "config", "set", "logs.max_lines_per_attempt", "1000").returncode == 0
    script = tmp_path / "flat.py"
    script.write_text(FLAT.format(n=200_000))
    doc = {"format": "taskloom/v1", "name": "capped", "tasks": [
        {"id": "s", "type": "shell", "params": {"command": f"{sys.executable} {script}"}},
        {"id": "p", "type": "python", "params": {"code": FLAT.format(n=200_000) + "def main():\n    return 2\n"}},
    ]}
    started = time.monotonic()
    run_id = execute(ws, doc, tmp_path)
    seconds = time.monotonic() - started
    run = ws.run(run_id)
    for task in ("s", "p"):
        assert run.tasks[task].status == "succeeded"  # the cap neither fails nor stops the task
        assert stored(ws, run_id, task) == [f"line {i}" for i in range(1000)]
        notice, summary = system_lines(ws, run_id, task)
        assert "log cap reached: 1,000 lines (7,890 bytes) stored, logs.max_lines_per_attempt is 1,000" in notice
        dropped_bytes = sum(len(f"line {i}") for i in range(1000, 200_000))
        assert summary.startswith(f"199,000 lines ({dropped_bytes:,} bytes) of this attempt were not stored")
    assert run.tasks["p"].output == 2
    print(f"\nper-attempt cap 1,000 lines: 2 x 200,000 lines printed, 1,000 stored each, 199,000 counted and"
          f" dropped each, run took {seconds:.2f} s")


def test_per_attempt_byte_cap(ws: Workspace, home: Path, tmp_path: Path) -> None:
    assert taskloom(home, "config", "set", "logs.max_bytes_per_attempt", "10000").returncode == 0
    doc = {"format": "taskloom/v1", "name": "bytes", "tasks": [
        {"id": "s", "type": "shell", "params": {"command": "for i in $(seq 1 3000); do echo 0123456789; done"}}]}
    run_id = execute(ws, doc, tmp_path)
    assert ws.run(run_id).tasks["s"].status == "succeeded"
    assert stored(ws, run_id, "s") == ["0123456789"] * 1000
    notice, summary = system_lines(ws, run_id, "s")
    assert "logs.max_bytes_per_attempt is 10,000" in notice
    assert summary.startswith("2,000 lines (20,000 bytes) of this attempt were not stored")


# -- Dask: the runner applies the caps to lines that arrive from the workers ------------------------


@pytest.mark.timeout(180)
def test_dask_lines_are_escaped_and_capped_on_the_runner(ws: Workspace, home: Path, tmp_path: Path) -> None:
    """On Dask the worker cuts at its reading cap (1,000,000 bytes); the runner applies the configured caps."""
    import distributed

    from taskloom.runtime.executors.on_dask import DaskExecutor

    assert taskloom(home, "config", "set", "logs.max_line_bytes", "65536").returncode == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        executor = DaskExecutor(cluster.scheduler_address)
        try:
            line_run = execute(ws, nasty_doc("nasty-dask"), tmp_path, executor=executor)
            assert taskloom(home, "config", "set", "logs.max_lines_per_attempt", "5").returncode == 0
            capped_run = execute(ws, nasty_doc("nasty-dask-capped"), tmp_path, executor=executor)
        finally:
            executor.close()
    for task in ("sh", "py"):
        assert ws.run(line_run).tasks[task].status == "succeeded", ws.run(line_run).tasks[task].error
        # cut twice (worker, then runner), recorded once: the marker gives the sum
        assert_nasty_stored(stored(ws, line_run, task), 65536)
        assert ws.run(capped_run).tasks[task].status == "succeeded"
        assert stored(ws, capped_run, task) == NASTY_STORED[:5]
        notice, summary = system_lines(ws, capped_run, task)
        assert "log cap reached: 5 lines" in notice and summary.startswith("3 lines (")


# -- shown escaped: the run-log viewer and `taskloom logs` ------------------------------------------

#: A line stored before lines were escaped (or written by anything else): raw ESC, NUL, CR and rich markup.
LEGACY = "legacy \x1b[31mred\x1b[0m [bold]b[/] nul\x00 cr\rover \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"


@pytest.fixture
def shown(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A run of the hostile shell task, plus a raw legacy line, in a home the app and the CLI open."""
    monkeypatch.setenv("TASKLOOM_HOME", str(home))
    ws = Workspace(home)
    run_id = execute(ws, nasty_doc("nasty-shown", ("shell",)), tmp_path)
    ws.db.execute("INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, 'sh', 1, ?, 'stderr', ?)",
                  [run_id, time.time(), LEGACY])
    ws.db.conn.commit()
    yield ws, run_id
    ws.close()


def test_the_run_log_viewer_shows_lines_escaped_never_interpreted(shown: Any) -> None:
    from tests.test_ui_runs import frame, open_runs

    ws, run_id = shown
    at = open_runs(run_id)
    lines = list(frame(at, "line")["line"])
    long = lines[6]
    assert long == "x" * 10_000 + f"… [{1_000_023 - 10_000:,} more characters: taskloom logs shows them]"
    assert lines[:6] + lines[7:] == [*NASTY_STORED[:6], NASTY_STORED[7], escape_line(LEGACY)]
    assert lines[-1] == (
        "legacy \\x1b[31mred\\x1b[0m [bold]b[/] nul\\x00 cr\\rover \\x1b]8;;http://x\\x1b\\link\\x1b]8;;\\x1b\\"
    )
    assert not any(ord(c) < 0x20 for line in lines for c in line)
    print(f"\nviewer: {len(lines)} lines shown, all escaped; the 1,000,023-character line shown as 10,000 + a note")


def test_taskloom_logs_prints_escape_sequences_and_markup_as_text(shown: Any) -> None:
    ws, run_id = shown
    result = subprocess_logs(ws.home, run_id)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert b"\x1b" not in out and b"\x00" not in out and b"\r" not in out and b"\x07" not in out
    text = out.decode()
    for line in (*NASTY_STORED[:6], NASTY_STORED[7], escape_line(LEGACY)):
        assert line in text, line
    assert "[red]x[/] [link=http://x]y[/link]" in text and "[bold]b[/]" in text  # rich markup printed literally
    assert "x" * 1_000_000 + "… [cut 4,242,880 bytes]" in text  # the stored line, whole


def subprocess_logs(home: Path, run_id: int) -> subprocess.CompletedProcess[bytes]:
    """``taskloom logs RUN`` with its output as bytes, as a terminal would receive it."""
    return subprocess.run([TASKLOOM, "logs", str(run_id)], env=env_for(home), capture_output=True, timeout=60)


# -- a chatty task through a real scheduler: the heartbeat is never late, memory stays bounded ---------

#: A heartbeat row older than its period plus this is late. The beat may wait for the log writer's
#: burst (0.5 s at most), one write that ran SQLite's automatic checkpoint (fsyncs: up to about 0.55 s
#: seen here) and a busy-handler poll (0.1 s). Recovery declares a runner dead at 15 s.
LATE_TOLERANCE = 1.5

CHATTY = """
import sys, time
w = sys.stdout.write
start = time.perf_counter()
for tick in range(3000):  # 100 lines every 10 ms on a fixed timetable: 10,000 lines a second for 30 s
    w("".join(f"chatty {tick * 100 + j:06d} " + "." * 60 + "\\n" for j in range(100)))
    sys.stdout.flush()
    time.sleep(max(0.0, start + (tick + 1) / 100 - time.perf_counter()))
print(f"task printed 300000 lines in {time.perf_counter() - start:.2f} s", file=sys.stderr)
"""

FLOOD = """
import sys
w = sys.stdout.write
big = "y" * 999_999 + "\\n"
for _ in range(200):  # 200 lines of almost 1 MB, flat out
    w(big)
small = "".join(f"short {i}\\n" for i in range(1000))
for _ in range(1100):  # then 1,100,000 short lines, flat out: past the default cap of 1,000,000 per attempt
    w(small)
"""


def _status_kib(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise LookupError(field_name)


@dataclass
class Watch:
    """Samples a scheduler process every 50 ms: its heartbeat row's age, its lease, its resident memory."""

    home: Path
    pid: int
    heartbeat_ages: list[float] = field(default_factory=list)
    lease_slack: list[float] = field(default_factory=list)  # seconds before the lease would expire
    rss_kib: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        conn = sqlite3.connect(self.home / "taskloom.db", timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(0.05):
                now = time.time()
                row = conn.execute("SELECT heartbeat FROM runners WHERE pid = ?", [self.pid]).fetchone()
                if row is not None:
                    self.heartbeat_ages.append(now - row[0])
                lease = conn.execute("SELECT expires FROM scheduler_lease").fetchone()
                if lease is not None:
                    self.lease_slack.append(lease[0] - now)
                self.rss_kib.append(_status_kib(self.pid, "VmRSS"))
        finally:
            conn.close()


def run_through_scheduler(home: Path, tmp_path: Path, doc: dict[str, Any]) -> tuple[int, Watch, dict[str, float]]:
    """Store ``doc``, start ``taskloom scheduler``, trigger one run and watch the scheduler until the run ends."""
    ws = Workspace(home)
    ws.save(doc)
    ws.close()
    proc = start(home, "scheduler", "--no-api", cwd=tmp_path)
    try:
        wait_for(lambda: query_one(home, "SELECT holder FROM scheduler_lease"), what="the scheduler's lease")
        wait_for(lambda: query_one(home, "SELECT 1 FROM runners WHERE pid = ?", proc.pid), what="its heartbeat")
        time.sleep(1.0)
        idle_kib = _status_kib(proc.pid, "VmRSS")
        started = time.monotonic()
        with Watch(home, proc.pid) as watch:
            assert taskloom(home, "trigger", doc["name"]).returncode == 0
            run_id = wait_for(lambda: query_one(home, "SELECT id FROM runs"), what="the run")
            wait_for(lambda: query_one(home, "SELECT 1 FROM runs WHERE id = ? AND status NOT IN ('queued', 'running')",
                                       run_id), timeout=240, what="the run's end")
        figures = {"seconds": time.monotonic() - started, "idle_mib": idle_kib / 1024,
                   "peak_mib": _status_kib(proc.pid, "VmHWM") / 1024}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return run_id, watch, figures


def query_one(home: Path, sql: str, *args: Any) -> Any:
    conn = sqlite3.connect(home / "taskloom.db", timeout=30)
    try:
        row = conn.execute(sql, args).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


def assert_scheduler_kept_time(watch: Watch, label: str) -> None:
    late = DEFAULT_INTERVAL + LATE_TOLERANCE
    worst = max(watch.heartbeat_ages)
    print(f"\n{label}: {len(watch.heartbeat_ages)} heartbeat samples, oldest {worst:.3f} s (late above {late:g} s);"
          f" lease slack never below {min(watch.lease_slack):.3f} s")
    assert len(watch.heartbeat_ages) > 100
    assert worst <= late, f"the heartbeat was {worst:.2f} s old"
    assert min(watch.lease_slack) > 0, "the scheduler's lease expired"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_chatty_task_10000_lines_a_second_for_30_s_through_the_scheduler(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(CHATTY)
    doc = {"format": "taskloom/v1", "name": "chatty", "tasks": [
        {"id": "talk", "type": "shell", "params": {"command": f"{sys.executable} {script}"}, "timeout": 120}]}
    run_id, watch, figures = run_through_scheduler(home, tmp_path, doc)
    assert query_one(home, "SELECT status FROM runs WHERE id = ?", run_id) == "succeeded"
    assert_scheduler_kept_time(watch, "chatty, 10,000 lines/s for 30 s")
    count, first, last, cut = (query_one(home, sql, run_id) for sql in (
        "SELECT count(*) FROM logs WHERE run_id = ? AND stream = 'stdout'",
        "SELECT line FROM logs WHERE run_id = ? AND stream = 'stdout' ORDER BY id LIMIT 1",
        "SELECT line FROM logs WHERE run_id = ? AND stream = 'stdout' ORDER BY id DESC LIMIT 1",
        "SELECT count(*) FROM logs WHERE run_id = ? AND (line LIKE '%[cut %' OR stream = 'system')",
    ))
    assert (count, cut) == (300_000, 0)  # an ordinary chatty job loses nothing
    assert first == "chatty 000000 " + "." * 60 and last == "chatty 299999 " + "." * 60
    said = query_one(home, "SELECT line FROM logs WHERE run_id = ? AND stream = 'stderr'", run_id)
    task_seconds = float(said.split()[-2])
    assert task_seconds < 32, said  # capture kept up: the task was not slowed down
    growth = figures["peak_mib"] - figures["idle_mib"]
    print(f"chatty: {count:,} lines stored, none cut; {said}; scheduler RSS idle {figures['idle_mib']:.1f} MiB,"
          f" peak {figures['peak_mib']:.1f} MiB (+{growth:.1f}), sampled max {max(watch.rss_kib) / 1024:.1f} MiB")
    assert growth < 100


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_flood_of_long_lines_keeps_the_runner_memory_bounded_and_hits_the_default_cap(
    home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    doc = {"format": "taskloom/v1", "name": "flood", "tasks": [
        {"id": "pour", "type": "shell", "params": {"command": f"{sys.executable} {script}"}, "timeout": 240}]}
    run_id, watch, figures = run_through_scheduler(home, tmp_path, doc)
    assert query_one(home, "SELECT status FROM runs WHERE id = ?", run_id) == "succeeded"
    assert_scheduler_kept_time(watch, "flood, 200 MB of long lines then 1.1 M short lines")
    count = query_one(home, "SELECT count(*) FROM logs WHERE run_id = ? AND stream = 'stdout'", run_id)
    assert count == 1_000_000  # the default per-attempt cap
    notice, summary = [r[0] for r in sqlite3.connect(home / "taskloom.db").execute(
        "SELECT line FROM logs WHERE run_id = ? AND stream = 'system' ORDER BY id", [run_id])]
    assert "logs.max_lines_per_attempt is 1,000,000" in notice
    dropped = sum(len(f"short {i}") for i in range(1000)) * 100 + sum(len(f"short {i}") for i in range(800, 1000))
    assert summary.startswith(f"100,200 lines ({dropped:,} bytes) of this attempt were not stored")
    growth = figures["peak_mib"] - figures["idle_mib"]
    print(f"flood: {count:,} lines stored, 100,200 dropped ({dropped:,} bytes) in {figures['seconds']:.1f} s;"
          f" scheduler RSS idle {figures['idle_mib']:.1f} MiB, peak {figures['peak_mib']:.1f} MiB (+{growth:.1f})")
    # What the runner may hold: 32 Mi characters waiting in the log buffer, as many being written, one line of
    # at most 1 MB being read (a few copies while it is decoded, escaped and cut), SQLite's cache.
    assert growth < 200


def test_a_secret_cut_in_two_by_the_per_line_cap_leaves_no_part_of_it(ws, tmp_path, run_doc):
    """The reader cuts a long line before masking; the part of a secret before the cut is masked too."""
    from taskloom.storage.secrets import SecretStore

    secret = "s3cr3t-" + "k" * 40
    from taskloom.storage.config import Config
    from tests.conftest import make_doc

    SecretStore(ws.db, ws.home).set("TOKEN", secret)
    Config(ws.db).set("logs.max_line_bytes", 100)
    # 80 bytes of padding put the cut (at 100 bytes) 20 characters into the secret
    doc = make_doc([{"id": "t", "type": "shell", "params": {"command": "printf '%080d{{ secrets.TOKEN }}\\n' 0"}}])
    run = run_doc(doc)
    assert run.status == "succeeded"
    (line,) = [l for (l,) in ws.db.execute("SELECT line FROM logs WHERE run_id = ? AND stream = 'stdout'", [run.id])]
    assert "s3cr3t" not in line and "kkkk" not in line, line
    assert "***" in line and "[cut " in line
