"""Pure helpers of the run-log viewer: status badges, the run's graph coloured by task state, timeline rows."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Mapping

from taskloom.core.logtext import escape_line
from taskloom.storage.runs import RunRecord
from taskloom.ui.web.designer.flowstate import doc_to_flow, md_escape

__all__ = [
    "STATUS_EMOJI", "TASK_COLORS", "LOG_CELL_CHARS", "badge", "duration", "log_cell", "run_flow", "flow_timestamp",
    "timeline_rows",
]

STATUS_EMOJI = {
    "queued": "⏳", "running": "🔵", "succeeded": "🟢", "failed": "🔴", "timed_out": "⏱️", "crashed": "🟣",
    "cancelled": "🟡", "skipped": "⚪", "pending": "⬜", "missed": "⚫", "skipped_overlap": "⏭️",
}

# node fill per task state (succeeded green, failed red, crashed magenta, skipped grey, cancelled yellow,
# running blue, pending white)
TASK_COLORS = {
    "succeeded": "#a5d6a7",
    "failed": "#ef9a9a",
    "timed_out": "#ef9a9a",
    "crashed": "#ea80fc",
    "skipped": "#d6d6d6",
    "cancelled": "#fff59d",
    "running": "#90caf9",
    "pending": "#ffffff",
}


#: The longest log line the viewer's table shows whole; `taskloom logs` prints the stored line whole.
LOG_CELL_CHARS = 10_000


def log_cell(line: str) -> str:
    """A stored log line as the viewer shows it: escaped (never interpreted) and at most LOG_CELL_CHARS long.

    Lines are stored escaped; escaping again is a no-op on them and covers lines stored before.

    >>> log_cell("\\x1b[31m[red]x[/]")
    '\\\\x1b[31m[red]x[/]'
    """
    text = escape_line(line)
    if len(text) <= LOG_CELL_CHARS:
        return text
    return f"{text[:LOG_CELL_CHARS]}… [{len(text) - LOG_CELL_CHARS:,} more characters: taskloom logs shows them]"


def badge(status: str | None) -> str:
    return f"{STATUS_EMOJI.get(str(status), '❔')} {status}"


def duration(started: float | None, ended: float | None, now: float | None = None) -> float | None:
    if started is None:
        return None
    end = ended if ended is not None else (now if now is not None else time.time())
    return round(end - started, 3)


def run_flow(doc: Mapping[str, Any], run: RunRecord, selected: str | None = None) -> dict[str, Any]:
    """The workflow drawn read-only, each node filled with its task's state colour and showing the state."""
    flow = doc_to_flow(doc)
    for node in flow["nodes"]:
        task_id = node["data"].get("task")
        record = run.tasks.get(task_id)
        status = record.status if record else "pending"
        lines = [node["data"]["content"], f"{badge(status)}" + (f" · {record.attempts} attempts"
                                                                  if record and record.attempts > 1 else "")]
        if record and record.skip_reason:
            lines.append(f"_{md_escape(record.skip_reason)}_")
        node["data"] = {**node["data"], "content": "\n\n".join(lines), "status": status}
        node["style"] = {**node["style"], "background": TASK_COLORS.get(status, "#ffffff"),
                         "border": "3px solid #1565c0" if task_id == selected else "1px solid #607d8b"}
        node.update(draggable=False, connectable=False, deletable=False, selectable=True)
    for edge in flow["edges"]:
        edge["deletable"] = False
    return flow


def flow_timestamp(flow: Mapping[str, Any], run_id: int) -> int:
    """A timestamp that changes whenever what is drawn changes (so the browser takes the new graph)."""
    digest = hashlib.sha256(json.dumps([run_id, flow], sort_keys=True, default=str).encode()).hexdigest()
    return int(digest[:12], 16)


def timeline_rows(run: RunRecord, now: float | None = None) -> list[dict[str, Any]]:
    """One row per attempt (retries are separate bars), for the Gantt chart."""
    now = time.time() if now is None else now
    rows = []
    for task_id, task in run.tasks.items():
        for attempt in task.attempt_list:
            end = attempt.ended if attempt.ended is not None else now
            rows.append({
                "task": task_id,
                "attempt": attempt.number,
                "label": f"{task_id} #{attempt.number}",
                "status": attempt.status,
                "start": attempt.started * 1000.0,
                "end": max(end, attempt.started + 0.001) * 1000.0,
                "seconds": round(end - attempt.started, 3),
                "exit": attempt.exit_code,
                "error": attempt.error or "",
            })
    return rows
