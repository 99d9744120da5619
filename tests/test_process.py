"""Tests for taskloom.runtime.process: real child processes, no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taskloom.runtime.process import ProcessResult, kill_process_group, run_process

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


class Lines:
    """An on_line callback that records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, stream: str, text: str) -> None:
        self.calls.append((stream, text))

    def of(self, stream: str) -> list[str]:
        return [text for s, text in self.calls if s == stream]


def bash(script: str, **kwargs) -> tuple[ProcessResult, Lines]:
    lines = Lines()
    kwargs.setdefault("env", ENV)
    result = run_process(["bash", "-c", script], on_line=lines, **kwargs)
    return result, lines


def is_dead(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] in (b"Z", b"X")


def wait_dead(pid: int, within: float = 1.0) -> bool:
    deadline = time.monotonic() + within
    while not is_dead(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


def test_lines_per_stream_partial_crlf_invalid_utf8_and_exit_code():
    result, lines = bash(
        r"""echo a; echo err1 >&2; echo b; echo err2 >&2
        printf 'x\r\ny\r\n'; printf '\xff\xfe\n'; printf 'caf\xc3\xa9\n'; echo; printf tail; exit 3"""
    )
    assert result == ProcessResult(3, None, False, False, result.duration, None)
    assert lines.of("stdout") == ["a", "b", "x", "y", "\\xff\\xfe", "café", "", "tail"]
    assert lines.of("stderr") == ["err1", "err2"]


def test_killed_by_signal():
    result, _ = bash("kill -9 $$")
    assert result.signal == 9
    assert result.returncode is None
    assert not result.timed_out and not result.cancelled


def test_timeout_kills_whole_group(tmp_path):
    pids: list[int] = []
    script = 'sleep 60 & echo $! > bg; sleep 60 & echo $! > fg; wait'
    result, _ = bash(script, cwd=str(tmp_path), timeout=1, grace=0.5, on_start=pids.append)
    assert result.timed_out and not result.cancelled
    assert result.duration < 1 + 0.5 + 1.0
    for pid in (pids[0], read_pid(tmp_path / "bg"), read_pid(tmp_path / "fg")):
        assert wait_dead(pid), pid


def test_grandchild_ignoring_sigterm_dies_after_grace(tmp_path):
    # The main shell dies on SIGTERM; the subshell ignores it and keeps stdout
    # open. A long drain must not let it outlive grace.
    script = '( trap "" TERM; exec sleep 100 ) & echo $! > stubborn; sleep 100'
    result, _ = bash(script, cwd=str(tmp_path), timeout=0.5, grace=1.0, drain=10)
    assert result.timed_out
    assert result.duration < 0.5 + 1.0 + 0.7
    assert wait_dead(read_pid(tmp_path / "stubborn"), within=0.5)


def test_main_child_ignoring_sigterm_is_killed_after_grace():
    result, _ = bash('trap "" TERM; sleep 100; exit 0', timeout=0.3, grace=0.5)
    assert result.timed_out
    assert result.signal == signal.SIGKILL
    assert result.duration < 0.3 + 0.5 + 0.7


def test_normal_exit_with_background_grandchild_holding_stdout(tmp_path):
    started = time.monotonic()
    result, lines = bash("sleep 60 & echo $! > bg; echo done", cwd=str(tmp_path), drain=0.5)
    assert time.monotonic() - started < 0.5 + 1.0
    assert result.returncode == 0 and not result.timed_out
    assert lines.of("stdout") == ["done"]
    assert wait_dead(read_pid(tmp_path / "bg"))


def test_cancel_from_another_thread():
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        result, _ = bash("sleep 30", cancel=cancel, timeout=20)
    finally:
        timer.cancel()
    assert result.cancelled and not result.timed_out
    assert result.signal == signal.SIGTERM
    assert result.duration < 0.5 + 0.5


def test_many_lines_fast_and_in_order():
    lines = Lines()
    code = "import sys; [sys.stdout.write(f'{i}\\n') for i in range(200000)]"
    result = run_process([sys.executable, "-c", code], env=ENV, on_line=lines)
    assert result.returncode == 0
    assert lines.of("stdout") == [str(i) for i in range(200000)]
    assert result.duration < 5


def test_missing_command():
    result = run_process(["no-such-command-taskloom-xyz"], env=ENV, on_line=Lines())
    assert result.start_error == "command not found: no-such-command-taskloom-xyz"
    assert result.returncode is None and result.signal is None


def test_missing_cwd(tmp_path):
    missing = str(tmp_path / "missing")
    result = run_process(["true"], env=ENV, cwd=missing, on_line=Lines())
    assert result.start_error == f"working directory does not exist: {missing}"
    assert result.returncode is None and result.signal is None


def test_cwd_is_a_file(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    result = run_process(["true"], env=ENV, cwd=str(afile), on_line=Lines())
    assert result.start_error == f"working directory is not a directory: {afile}"


def test_env_is_exactly_what_is_passed(monkeypatch):
    monkeypatch.setenv("TASKLOOM_TEST_LEAK", "leaked")
    lines = Lines()
    result = run_process(["env"], env={"PATH": ENV["PATH"], "FOO": "bar"}, on_line=lines)
    assert result.returncode == 0
    out = lines.of("stdout")
    assert "FOO=bar" in out
    assert not any(line.startswith("TASKLOOM_TEST_LEAK=") for line in out)


def test_on_start_gets_pid_that_leads_its_group():
    seen: list[tuple[int, int]] = []
    result, lines = bash("echo $$", on_start=lambda pid: seen.append((pid, os.getpgid(pid))))
    assert result.returncode == 0
    [(pid, pgid)] = seen
    assert pgid == pid
    assert lines.of("stdout") == [str(pid)]


def test_long_line_is_cut_at_the_cap_and_the_cut_recorded():
    lines = Lines()
    code = "import sys; sys.stdout.buffer.write(b'0123456789' * 300_000 + b'\\r\\nend\\n')"
    result = run_process([sys.executable, "-c", code], env=ENV, on_line=lines, max_line_bytes=1_000_000)
    assert result.returncode == 0
    assert lines.of("stdout") == ["0123456789" * 100_000 + "… [cut 2,000,000 bytes]", "end"]


def test_long_line_is_not_cut_inside_a_utf8_character():
    lines = Lines()
    code = "import sys; sys.stdout.buffer.write('€'.encode() * 1_000_000)"  # 3 bytes each, no newline
    result = run_process([sys.executable, "-c", code], env=ENV, on_line=lines, max_line_bytes=1_000_000)
    assert result.returncode == 0
    # 333,333 whole characters fit in 1,000,000 bytes; the 2,000,001 bytes after them are cut.
    assert lines.of("stdout") == ["€" * 333_333 + "… [cut 2,000,001 bytes]"]


def test_stdin_data_is_written_then_closed():
    lines = Lines()
    data = b"".join(b"line %d\n" % i for i in range(100_000))  # larger than a pipe buffer
    result = run_process(["cat"], env=ENV, on_line=lines, stdin_data=data + b"last")
    assert result.returncode == 0
    assert lines.of("stdout") == [f"line {i}" for i in range(100_000)] + ["last"]


def test_stdin_is_dev_null_by_default():
    result, lines = bash("cat; echo after", timeout=5)
    assert result.returncode == 0 and not result.timed_out
    assert lines.of("stdout") == ["after"]


def test_on_line_exception_kills_the_group_and_propagates():
    pids: list[int] = []

    def boom(stream: str, text: str) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_process(["bash", "-c", "echo hi; sleep 60"], env=ENV, on_line=boom, on_start=pids.append)
    assert wait_dead(pids[0])


def test_kill_process_group_term_then_kill():
    polite = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stubborn = subprocess.Popen(["bash", "-c", 'trap "" TERM; sleep 60; exit 0'], start_new_session=True)
    try:
        time.sleep(0.1)  # let bash install its trap
        started = time.monotonic()
        kill_process_group(polite.pid, grace=5)
        assert time.monotonic() - started < 1  # a zombie leader counts as gone
        assert polite.wait(timeout=1) == -signal.SIGTERM

        kill_process_group(stubborn.pid, grace=0.3)
        assert stubborn.wait(timeout=1) == -signal.SIGKILL

        kill_process_group(polite.pid, grace=1)  # already gone: no error
    finally:
        for proc in (polite, stubborn):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
