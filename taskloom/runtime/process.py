"""Run one task's child process in its own process group.

A task is a process group: the child is started as a session leader
(``start_new_session=True``), so its pid is also its process-group id and
everything it spawns stays in that group unless it deliberately escapes.
Signalling the group rather than the pid is what lets a timeout or a cancel
take down shell pipelines and background grandchildren too.

:func:`run_process` reads stdout and stderr in the calling thread with
:mod:`selectors`, so neither pipe can fill up and stall the child, and splits
the bytes into lines (cut at ``max_line_bytes``, the cut recorded, so memory
stays bounded whatever the child writes). It enforces the timeout, the cancel event
and a short drain period after the child exits. When it returns, the child
has been reaped and no process of its group is left alive.
"""

from __future__ import annotations

import itertools
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable

from taskloom.core.logtext import DEFAULT_MAX_LINE_BYTES, cut_marker, utf8_boundary

__all__ = ["ProcessResult", "LineSplitter", "run_process", "kill_process_group", "group_members", "kill_leftover_group"]

_CHUNK = 64 * 1024
_POLL_INTERVAL = 0.05  # how often the cancel event (and exit, without pidfd) is checked
_GROUP_POLL_INTERVAL = 0.02

# Selector keys carry a LineSplitter for the output pipes; these mark the others.
_STDIN = "stdin"
_EXIT = "exit"


@dataclass
class ProcessResult:
    """How one run of a child process ended."""

    returncode: int | None  # exit status (>= 0) when it exited normally, else None
    signal: int | None  # the signal that killed the main child, else None
    timed_out: bool  # we killed it because the timeout passed
    cancelled: bool  # we killed it because the cancel event was set
    duration: float  # seconds, monotonic
    start_error: str | None  # why the process could not be started, else None


def run_process(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str | None = None,
    timeout: float | None = None,
    on_line: Callable[[str, str], None],
    cancel: threading.Event | None = None,
    grace: float = 5.0,
    on_start: Callable[[int], None] | None = None,
    stdin_data: bytes | None = None,
    drain: float = 0.5,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ProcessResult:
    """Run ``argv`` in a new process group and deliver its output line by line.

    ``on_line(stream, text)`` gets ``"stdout"`` or ``"stderr"`` and one line
    without its line ending (``\\n`` or ``\\r\\n``), decoded as UTF-8 with
    ``backslashreplace``. A line longer than ``max_line_bytes`` bytes is cut:
    its start arrives ending with ``… [cut N bytes]`` (N the bytes not
    delivered), and the rest is counted, never held in memory.

    When ``timeout`` passes or ``cancel`` is set, the group gets SIGTERM, then
    SIGKILL after ``grace`` seconds if the main child is still running. After
    the main child exits, pipes still held open by leftover processes are read
    for at most ``drain`` seconds; then the whole group is killed.

    Start failures (missing command, missing working directory...) are
    reported in ``start_error`` rather than raised. An exception from
    ``on_line`` or ``on_start`` kills the group and is re-raised.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    started = time.monotonic()
    proc_or_error = _start(argv, env=env, cwd=cwd, with_stdin=stdin_data is not None)
    if isinstance(proc_or_error, str):
        return ProcessResult(None, None, False, False, time.monotonic() - started, proc_or_error)
    proc = proc_or_error
    supervisor: _Supervisor | None = None
    try:
        if on_start is not None:
            on_start(proc.pid)
        supervisor = _Supervisor(
            proc,
            on_line=on_line,
            deadline=None if timeout is None else started + timeout,
            cancel=cancel,
            grace=grace,
            drain=drain,
            stdin_data=stdin_data,
            max_line_bytes=max_line_bytes,
        )
        supervisor.run()
    finally:
        # A finished task's leftovers die with it. The main child is not reaped
        # yet (alive or a zombie), so its pid, the pgid, cannot have been reused.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        if supervisor is not None:
            supervisor.close()
        _close_pipes(proc)
    code = proc.returncode
    return ProcessResult(
        returncode=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        timed_out=supervisor.stop_reason == "timeout",
        cancelled=supervisor.stop_reason == "cancel",
        duration=time.monotonic() - started,
        start_error=None,
    )


def kill_process_group(pgid: int, *, grace: float, sig_first: int = signal.SIGTERM) -> None:
    """SIGTERM the group, wait up to `grace` seconds for it to be gone, then SIGKILL it.

    ESRCH (already gone) is fine. A group whose only members are zombies
    counts as gone. ``sig_first`` replaces SIGTERM as the first signal.
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pgid}")
    try:
        os.killpg(pgid, sig_first)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            _signal_group(pgid, signal.SIGKILL)
            return
        time.sleep(_GROUP_POLL_INTERVAL)


def _start(
    argv: list[str], *, env: dict[str, str], cwd: str | None, with_stdin: bool
) -> subprocess.Popen[bytes] | str:
    """Start the child as the leader of a new session; return it, or an error message."""
    if not argv:
        return "empty command"
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return _start_error_message(exc, argv[0], cwd)
    except ValueError as exc:  # e.g. an embedded NUL byte in argv or env
        return f"cannot start {argv[0]}: {exc}"


def _start_error_message(exc: OSError, command: str, cwd: str | None) -> str:
    """A clear message naming the command or directory that made Popen fail."""
    # subprocess reports a failed chdir in the child with filename == cwd.
    if cwd is not None and exc.filename == cwd:
        if isinstance(exc, FileNotFoundError):
            return f"working directory does not exist: {cwd}"
        if isinstance(exc, NotADirectoryError):
            return f"working directory is not a directory: {cwd}"
        if isinstance(exc, PermissionError):
            return f"permission denied for working directory: {cwd}"
        return f"cannot enter working directory {cwd}: {exc.strerror or exc}"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {command}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {command}"
    return f"cannot start {command}: {exc.strerror or exc}"


class _Supervisor:
    """The read loop for one started child: pipes, timeout, cancel and drain."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        on_line: Callable[[str, str], None],
        deadline: float | None,
        cancel: threading.Event | None,
        grace: float,
        drain: float,
        stdin_data: bytes | None,
        max_line_bytes: int,
    ) -> None:
        self.stop_reason: str | None = None  # "timeout" or "cancel" once we started killing
        self._proc = proc
        self._pgid = proc.pid
        self._deadline = deadline
        self._cancel = cancel
        self._grace = grace
        self._drain = drain
        self._term_sent_at: float | None = None
        self._kill_sent = False
        self._exited_at: float | None = None
        self._sel = selectors.DefaultSelector()
        self._readers = 0
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            splitter = LineSplitter(stream, on_line, max_line_bytes)
            self._sel.register(pipe.fileno(), selectors.EVENT_READ, splitter)
            self._readers += 1
        self._stdin = memoryview(stdin_data or b"")
        if proc.stdin is not None:
            self._start_stdin()
        self._pidfd = self._open_pidfd()

    def run(self) -> None:
        """Pump the pipes until the child has exited and the pipes are done or drained."""
        while True:
            now = time.monotonic()
            if self._exited_at is None and self._has_exited():
                self._on_exit(now)
            self._check_stop(now)
            if self._exited_at is not None and (not self._readers or now >= self._exited_at + self._drain):
                return
            self._pump(self._next_wakeup(now) - now)

    def close(self) -> None:
        """Release the selector and the pidfd (the pipes belong to the Popen)."""
        self._sel.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _open_pidfd(self) -> int | None:
        """Get told of the child's exit through the selector, where the kernel allows it."""
        try:
            pidfd = os.pidfd_open(self._proc.pid)
        except (AttributeError, OSError):
            return None  # fall back to polling every _POLL_INTERVAL
        self._sel.register(pidfd, selectors.EVENT_READ, _EXIT)
        return pidfd

    def _start_stdin(self) -> None:
        assert self._proc.stdin is not None
        fd = self._proc.stdin.fileno()
        if not self._stdin:
            self._close_stdin()
            return
        os.set_blocking(fd, False)
        self._sel.register(fd, selectors.EVENT_WRITE, _STDIN)

    def _has_exited(self) -> bool:
        """Whether the main child has exited, without reaping it.

        Leaving the zombie in place keeps its pid, which is the pgid, from
        being reused before the final SIGKILL to the group.
        """
        try:
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _on_exit(self, now: float) -> None:
        self._exited_at = now
        if self._pidfd is not None:
            self._sel.unregister(self._pidfd)
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._close_stdin()

    def _check_stop(self, now: float) -> None:
        """Start the kill sequence on timeout or cancel; escalate to SIGKILL after grace.

        Escalation goes on after the main child has exited, so a leftover
        that ignores SIGTERM and holds a pipe dies after `grace`, not `drain`.
        """
        if self._term_sent_at is None:
            if self._exited_at is not None:
                return  # it ended on its own; leftovers are killed at the end
            if self._cancel is not None and self._cancel.is_set():
                self.stop_reason = "cancel"
            elif self._deadline is not None and now >= self._deadline:
                self.stop_reason = "timeout"
            else:
                return
            self._term_sent_at = now
            _signal_group(self._pgid, signal.SIGTERM)
        elif not self._kill_sent and now >= self._term_sent_at + self._grace:
            self._kill_sent = True
            _signal_group(self._pgid, signal.SIGKILL)

    def _next_wakeup(self, now: float) -> float:
        wakeups = [now + _POLL_INTERVAL]
        if self._exited_at is not None:
            wakeups.append(self._exited_at + self._drain)
        elif self._term_sent_at is None and self._deadline is not None:
            wakeups.append(self._deadline)
        if self._term_sent_at is not None and not self._kill_sent:
            wakeups.append(self._term_sent_at + self._grace)
        return min(wakeups)

    def _pump(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for I/O or exit and handle what is ready."""
        for key, _events in self._sel.select(max(timeout, 0.0)):
            if key.data is _STDIN:
                self._write_stdin(key.fd)
            elif key.data is not _EXIT:
                self._read(key)

    def _read(self, key: selectors.SelectorKey) -> None:
        data = os.read(key.fd, _CHUNK)
        if data:
            key.data.feed(data)
            return
        self._sel.unregister(key.fd)
        self._readers -= 1
        key.data.finish()

    def _write_stdin(self, fd: int) -> None:
        try:
            written = os.write(fd, self._stdin[:_CHUNK])
        except BlockingIOError:
            return
        except BrokenPipeError:  # the child closed its stdin; the rest is not wanted
            written = len(self._stdin)
        self._stdin = self._stdin[written:]
        if not self._stdin:
            self._close_stdin()

    def _close_stdin(self) -> None:
        assert self._proc.stdin is not None
        try:
            self._sel.unregister(self._proc.stdin.fileno())
        except KeyError:
            pass
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass


class LineSplitter:
    """Turns one stream's chunks into on_line calls, holding at most ``max_line_bytes`` of the current line.

    A longer line is cut: its first ``max_line_bytes`` bytes are delivered
    with :func:`taskloom.core.logtext.cut_marker` saying how many bytes followed, and
    those bytes are counted, never held, however long the line goes on.
    """

    def __init__(self, stream: str, on_line: Callable[[str, str], None], max_line_bytes: int) -> None:
        self._stream = stream
        self._on_line = on_line
        self._max = max_line_bytes
        self._partial = b""  # the start of the current line, at most max_line_bytes
        self._cut = 0  # bytes of the current line past the cap
        self._cut_last = b""  # the last byte cut: a CRLF's CR is not counted as cut

    def feed(self, data: bytes) -> None:
        """Deliver every complete line in `data`; keep (the start of) the rest for later."""
        lines = data.split(b"\n")
        rest = lines.pop()
        if lines:
            self._add(lines[0])
            self._end_line()
            for line in itertools.islice(lines, 1, None):
                if len(line) <= self._max:
                    self._emit(line)
                else:
                    self._add(line)
                    self._end_line()
        self._add(rest)

    def finish(self) -> None:
        """At EOF, deliver the last line even though it has no newline."""
        if self._partial or self._cut:
            self._end_line()

    def _add(self, data: bytes) -> None:
        if not data:
            return
        if self._cut:
            self._cut += len(data)
            self._cut_last = data[-1:]
            return
        if self._partial:
            data = self._partial + data
        if len(data) > self._max:
            at = utf8_boundary(data, self._max)
            self._cut, self._cut_last = len(data) - at, data[-1:]
            data = data[:at]
        self._partial = data

    def _end_line(self) -> None:
        line, cut = self._partial, self._cut
        self._partial, self._cut = b"", 0
        if not cut:
            self._emit(line)
            return
        if self._cut_last == b"\r":  # the line ending's CR, already gone
            cut -= 1
        text = line.decode("utf-8", "backslashreplace")
        self._on_line(self._stream, text + cut_marker(cut) if cut else text)

    def _emit(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        self._on_line(self._stream, line.decode("utf-8", "backslashreplace"))


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in process group ``pgid``, from /proc."""
    members = []
    for name in _proc_pids():
        fields = _stat_fields(name)
        if fields and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def kill_leftover_group(pgid: int, marker: str, *, grace: float) -> bool:
    """Kill what is left of a task's process group after its runner died.

    Only a group one of whose members carries ``marker`` (``KEY=VALUE``) in its
    environment is ours: the pid may have been reused by an unrelated process.
    Returns whether a group was found and killed.
    """
    wanted = marker.encode() + b"\0"
    for pid in group_members(pgid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read() + b"\0"
        except OSError:
            continue
        if b"\0" + wanted in b"\0" + environ:
            if pgid <= 1 or pgid == os.getpgrp():
                return False
            kill_process_group(pgid, grace=grace)
            return True
    return False


def _proc_pids() -> list[str]:
    try:
        return [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []


def _stat_fields(pid: str) -> list[bytes] | None:
    """The /proc/PID/stat fields after the command name: state, ppid, pgrp, ..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields if len(fields) > 2 else None


def _signal_group(pgid: int, sig: int) -> None:
    """Signal our child's group; a group already gone, or not ours to signal, is ignored."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group exists and is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _group_has_live_member(pgid)


def _group_has_live_member(pgid: int) -> bool:
    """Whether the group has a non-zombie member (True when /proc is unavailable)."""
    if not os.path.isdir("/proc"):
        return True
    return bool(group_members(pgid))


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            try:
                pipe.close()
            except OSError:
                pass
