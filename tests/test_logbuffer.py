"""The log buffer's flush: it never waits for nothing, and never returns before lines taken earlier are written."""

from __future__ import annotations

import threading
import time

from taskloom.core.journal import LogLine
from taskloom.runtime.logbuffer import LogBuffer


def line(n: int) -> LogLine:
    return LogLine(1, "t", 1, float(n), "stdout", f"line {n}")


def test_a_flush_with_nothing_to_write_does_not_wait_for_the_writer():
    """The runner holds the writer for its whole transaction; the flusher's empty wake-ups must not queue behind it
    (nor the runner behind them)."""
    written: list[LogLine] = []
    buffer = LogBuffer(written.extend, interval=60)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with buffer.writing():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        done = threading.Event()
        threading.Thread(target=lambda: (buffer.flush(), done.set()), daemon=True).start()
        assert done.wait(2), "an empty flush waited for the thread holding the writer"
    finally:
        release.set()
        holder.join()
        buffer.close()
    assert written == []


def test_a_flush_returns_only_after_lines_another_flush_took_are_written():
    """Lines reach the journal before the end they led to: a flush that finds the buffer empty because another
    thread took its lines still waits until that thread has written them."""
    entered, go = threading.Event(), threading.Event()
    written: list[LogLine] = []

    def slow_write(lines: list[LogLine]) -> None:
        entered.set()
        go.wait(10)
        written.extend(lines)

    buffer = LogBuffer(slow_write, interval=60)
    buffer.append(line(1))
    first = threading.Thread(target=buffer.flush)
    first.start()
    try:
        assert entered.wait(5)  # the first flush took the line and is writing it
        seen: list[list[LogLine]] = []
        second = threading.Thread(target=lambda: (buffer.flush(), seen.append(list(written))))
        second.start()
        time.sleep(0.2)
        assert not seen, "a flush returned while lines taken before it were still being written"
        go.set()
        second.join(5)
        assert seen == [[line(1)]]
    finally:
        go.set()
        first.join()
        buffer.close()


def test_the_flusher_thread_starts_with_the_first_line_and_writes_on_its_interval():
    """A run that logs nothing costs no thread; once a line comes, the flusher writes it without being asked."""
    written: list[LogLine] = []
    buffer = LogBuffer(written.extend, interval=0.05)
    try:
        assert buffer._thread is None, "a buffer with no lines started a thread"
        buffer.append(line(1))
        flusher = buffer._thread
        assert flusher is not None and flusher.is_alive()
        deadline = time.monotonic() + 5
        while not written and time.monotonic() < deadline:
            time.sleep(0.01)
        assert written == [line(1)], "the flusher did not write the line on its own"
    finally:
        buffer.close()
    assert not flusher.is_alive()
    idle = LogBuffer(written.extend)
    idle.close()  # closes without a thread to join
    assert idle._thread is None and written == [line(1)]
