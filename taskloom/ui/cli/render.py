"""Terminal rendering for the CLI with rich: tables, issues, logs and live run progress."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from taskloom.core.logtext import escape_line, escape_text
from taskloom.core.model import Workflow
from taskloom.core.journal import RunEvent
from taskloom.core.validation import Issue
from taskloom.storage.runs import RunRecord

__all__ = [
    "print_issues", "print_workflows", "print_runs", "print_logs", "print_run_result",
    "RunProgress", "STATE_STYLES", "state_text",
]

STATE_STYLES = {
    "missed": "magenta", "skipped_overlap": "bright_black",
    "pending": "dim", "queued": "dim", "running": "cyan", "retrying": "yellow",
    "succeeded": "green", "failed": "red", "timed_out": "red", "crashed": "magenta",
    "skipped": "bright_black", "cancelled": "yellow",
}


def state_text(status: str) -> Text:
    return Text(status, style=STATE_STYLES.get(status, ""))


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _local(iso_text: str | None) -> str:
    if not iso_text:
        return ""
    return datetime.fromisoformat(iso_text).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_issues(console: Console, issues: Sequence[Issue]) -> None:
    for issue in issues:
        where = issue.path or "(document)"
        console.print(f"[bold]{escape(where)}[/]: {escape(issue.message)}")
        if issue.hint:
            console.print(f"    [dim]hint:[/] {escape(issue.hint)}")


def print_workflows(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    # Cells are Text, not str: rich would read a str cell as markup and eat a "[...]" in a title.
    if not rows:
        console.print("no workflows stored; import one with [bold]taskloom import FILE[/]")
        return
    table = Table("name", "title", "version", "paused", "last run", "updated", box=None)
    for row in rows:
        last = row["last_run"]
        table.add_row(
            Text(row["name"]), Text(row["title"] or ""), str(row["version"]), "yes" if row["paused"] else "",
            state_text(last["status"]) if last else Text("never", style="dim"), _local(row["updated"]),
        )
    console.print(table)


def print_runs(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        console.print("no runs yet; start one with [bold]taskloom run NAME[/]")
        return
    table = Table("id", "workflow", "version", "status", "trigger", "by", "started", "duration", box=None)
    for row in rows:
        duration = "" if row["duration"] is None else f"{row['duration']:.2f}s"
        if row["id"] is None:  # a firing that started no run
            table.add_row(
                "-", Text(row["workflow"]), "", state_text(row["status"]), Text(row.get("trigger_id") or ""), "",
                _local(row["logical_time"]), Text(row["error"] or "", style="dim"),
            )
            continue
        table.add_row(
            str(row["id"]), Text(row["workflow"]), "file" if row["version"] is None else str(row["version"]),
            state_text(row["status"]), Text(row["trigger"]), Text(row.get("started_by") or ""), _local(row["started"]),
            duration,
        )
    console.print(table)


def print_logs(console: Console, run: RunRecord, lines: Iterable[dict[str, Any]], task_id: str | None) -> None:
    """Print a run's log lines as plain text: never as rich markup, never letting a line drive the terminal.

    Lines are stored escaped; they are escaped again here (a no-op on those)
    for lines stored before escaping existed, and so are errors and reasons,
    which may quote a task's output.
    """
    console.print(f"run {run.id} of [bold]{escape(run.workflow)}[/]: ", state_text(run.status))
    for line in lines:
        stamp = datetime.fromtimestamp(line["ts"], tz=timezone.utc).astimezone().strftime("%H:%M:%S.%f")[:-3]
        style = {"stderr": "red", "system": "yellow"}.get(line["stream"], "")
        prefix = Text(f"{stamp} {line['task']}#{line['attempt']} {line['stream']:<6} ", style="dim")
        console.print(prefix + Text(escape_line(line["line"]), style=style))
    for tid, task in run.tasks.items():
        if task_id not in (None, tid):
            continue
        if task.status == "skipped":
            console.print(Text(escape_text(f"{tid} skipped: {task.skip_reason}"), style="bright_black"))
        elif task.error:
            console.print(Text(escape_text(f"{tid} {task.status}: {task.error}"), style="red"))


def print_run_result(console: Console, run: RunRecord) -> None:
    table = Table("task", "status", "attempts", "output / reason", box=None)
    for tid, task in run.tasks.items():
        if task.status == "skipped":
            detail = Text(task.skip_reason or "", style="bright_black")
        elif task.error:
            detail = Text(escape_text(task.error), style="red")
        else:
            detail = Text("" if task.output is None else escape_line(_short(task.output)))
        table.add_row(Text(tid), state_text(task.status), str(task.attempts), detail)
    console.print(table)
    summary = run.summary()
    duration = f" in {summary['duration']:.2f}s" if summary["duration"] is not None else ""
    console.print(Text.assemble(f"run {run.id} ", state_text(run.status), duration))
    if run.error:
        console.print(Text(escape_text(run.error), style="red"))
    console.print(Text(f"logs: taskloom logs {run.id}", style="dim"))


class RunProgress:
    """Live view of a run: a table of task states on a terminal, one line per change otherwise."""

    def __init__(self, console: Console, workflow: Workflow, run_id: int, *, quiet: bool = False) -> None:
        self.console = console
        self.workflow = workflow
        self.run_id = run_id
        self.quiet = quiet
        self.states: dict[str, tuple[str, int, str]] = {tid: ("pending", 0, "") for tid in workflow.tasks}
        self._live: Live | None = None

    def __enter__(self) -> "RunProgress":
        if not self.quiet:
            self.console.print(f"run {self.run_id} of [bold]{escape(self.workflow.name)}[/]")
            if self.console.is_terminal:
                self._live = Live(self._table(), console=self.console, transient=True, refresh_per_second=8)
                self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self) -> Table:
        done = sum(1 for s, _, _ in self.states.values() if s not in ("pending", "running", "retrying"))
        table = Table("task", "status", "attempt", "", box=None, title=f"{done}/{len(self.states)} tasks ended")
        for tid, (status, attempt, detail) in self.states.items():
            table.add_row(Text(tid), state_text(status), str(attempt or ""), Text(escape_line(_short(detail)), style="dim"))
        return table

    def update(self, event: RunEvent) -> None:
        if event.kind != "task" or self.quiet:
            return
        self.states[event.task_id] = (event.status, event.attempt, event.detail)  # type: ignore[index]
        if self._live is not None:
            self._live.update(self._table())
        else:
            detail = f"  {escape_text(event.detail)}" if event.detail else ""
            self.console.print(Text.assemble(f"  {event.task_id} ", state_text(event.status), detail))
