"""``taskloom next``: when a stored workflow's time triggers fire next.

Registered on the group by ``taskloom.ui.cli.main`` (``cli.add_command(next_, "next")``).
The instants come from :mod:`taskloom.core.firing`, the same code the scheduler uses.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Mapping

import click
from rich.markup import escape
from rich.table import Table

from taskloom.core.firing import TIME_TRIGGER_TYPES, FiringError, next_firings, parse_instant
from taskloom.core.model import Trigger, Workflow
from taskloom.storage.store import UserError

from taskloom.ui.cli.common import _Fail, _print_json, _workspace, out

__all__ = ["next_"]


@click.command("next")
@click.argument("name")
@click.option("-n", "count", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="How many firings per trigger.")
@click.option("--after", "after_text", metavar="ISO",
              help="Start from this instant instead of now (ISO 8601; without an offset it is UTC).")
@click.option("--json", "as_json", is_flag=True,
              help="Print [{trigger, instant, wall, timezone, moved}], instant in UTC.")
@click.pass_context
def next_(ctx: click.Context, name: str, count: int, after_text: str | None, as_json: bool) -> None:
    """Show when a stored workflow's cron and interval triggers fire next.

    Each firing is shown in the trigger's time zone and in UTC; a firing that a
    daylight saving change moved (a wall time that does not exist, or that
    happens twice) is highlighted with the reason.

    Example: taskloom next nightly-report -n 5 --after 2026-03-28T12:00:00Z
    """
    if after_text is None:
        after = time.time()
    else:
        try:
            after = parse_instant(after_text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--after'") from None
    with _workspace(ctx) as ws:
        try:
            doc = ws.export(name)
        except UserError as exc:
            raise _Fail(exc) from None
    workflow = Workflow.from_document(doc)
    timed = [t for t in workflow.triggers if t.type in TIME_TRIGGER_TYPES]
    rows: list[dict[str, Any]] = []
    quiet: list[str] = []  # triggers that will not fire, and why
    for trigger in timed:
        try:
            firings = next_firings(trigger, after, count)
        except FiringError as exc:
            raise _Fail(str(exc)) from None
        zone = trigger.config.get("timezone", "UTC")
        if not firings:
            why = "is disabled" if trigger.config.get("enabled", True) is False else "has no firings after that"
            quiet.append(f"trigger '{trigger.id}' {why}")
        for firing in firings:
            rows.append({
                "trigger": trigger.id,
                "instant": _utc_iso(firing.instant),
                "wall": firing.wall,
                "timezone": zone,
                "moved": firing.moved,
            })
    if as_json:
        _print_json(rows)
        return
    if not timed:
        out.print(
            f"workflow [bold]{escape(name)}[/] has no time triggers (cron or interval); "
            "it runs only when started by hand, through the API or by its other triggers"
        )
        return
    _print_table(timed, rows, after)
    for line in quiet:
        out.print(f"[dim]{escape(line)}[/]")


def _print_table(triggers: list[Trigger], rows: list[dict[str, Any]], after: float) -> None:
    out.print(f"next firings after {_utc_iso(after)}")
    for trigger in triggers:
        mine = [r for r in rows if r["trigger"] == trigger.id]
        if not mine:
            continue
        zone = trigger.config.get("timezone", "UTC")
        out.print()
        out.print(f"[bold]{escape(trigger.id)}[/]  {escape(_describe(trigger.config, trigger.type))}  [dim]({escape(zone)})[/]")
        table = Table(box=None)
        table.add_column("local time", no_wrap=True)
        table.add_column("UTC", no_wrap=True)
        table.add_column("note")
        for row in mine:
            wall = datetime.fromisoformat(row["wall"])
            utc = datetime.fromisoformat(row["instant"])
            moved = row["moved"]
            table.add_row(
                f"{wall:%a %Y-%m-%d %H:%M:%S} {wall.isoformat()[19:]}",
                f"{utc:%Y-%m-%d %H:%M:%S}Z",
                f"DST: {escape(moved)}" if moved else "",
                style="bold yellow" if moved else None,
            )
        out.print(table)


def _describe(config: Mapping[str, Any], kind: str) -> str:
    if kind == "cron":
        return f"cron {config.get('cron', '')}"
    text = f"every {config.get('every')} {config.get('unit')}"
    if config.get("weekday"):
        text += f" on {config['weekday']}"
    if config.get("at"):
        text += f" at {config['at']}"
    return text


def _utc_iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, tz=timezone.utc).isoformat()
