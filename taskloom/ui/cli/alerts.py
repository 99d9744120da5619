"""``taskloom alerts``: the journal of the alerts workflows sent (failure, recovery, late), newest first."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from taskloom.storage.alerts import list_alerts
from taskloom.storage.runs import iso

from taskloom.ui.cli.common import _print_json, _workspace, out

__all__ = ["alerts"]


@click.command("alerts")
@click.argument("workflow", required=False)
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print [{id, workflow, run_id, trigger_id, instant, kind, channel, status, error, created, sent}].")
@click.pass_context
def alerts(ctx: click.Context, workflow: str | None, limit: int, as_json: bool) -> None:
    """The alerts sent, one row per alert and channel: sent, failed (with the error) or sending.

    What a workflow alerts about is its alerts section (docs/alerts.md);
    home-wide defaults: taskloom config set alerts.on / alerts.to.
    """
    with _workspace(ctx) as ws:
        rows = list_alerts(ws.db, workflow, limit=limit)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no alerts" + (f" of {escape(workflow)}" if workflow else "") + " yet")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("CREATED", "WORKFLOW", "RUN", "KIND", "CHANNEL", "STATUS", "ERROR"):
        table.add_column(column)
    for row in rows:
        run = str(row["run_id"]) if row["run_id"] is not None else f"{row['trigger_id']} @ {iso(row['instant'])}"
        table.add_row(str(iso(row["created"]))[:19], escape(row["workflow"]), escape(run), row["kind"],
                      escape(row["channel"]), row["status"], escape(row["error"] or ""))
    out.print(table)
