"""``taskloom config``: settings kept in the database (SMTP server, file roots...)."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from taskloom.storage.config import Config, ConfigError

from taskloom.ui.cli.common import _Fail, _print_json, _workspace, out

__all__ = ["config"]


@click.group("config")
def config() -> None:
    """Settings kept in the database: SMTP for email notifications, extra file roots, ...

    Examples: taskloom config set smtp.host mail.example.com;
    taskloom config set file_roots '["/data/incoming"]'
    """


@config.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print [{key, value, set, type, description}].")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every known key with its value (default when not set)."""
    with _workspace(ctx) as ws:
        items = Config(ws.db).items()
    if as_json:
        _print_json(items)
        return
    for item in items:  # values and descriptions are text, never markup ("... [cut N bytes]")
        marker = "" if item["set"] else "  (default)"
        out.print(f"[bold]{escape(item['key'])}[/] = {escape(json.dumps(item['value']))}{marker}")
        out.print(f"    [dim]{escape(item['description'])}[/]")


@config.command("get")
@click.argument("key")
@click.pass_context
def get(ctx: click.Context, key: str) -> None:
    """Print one value as JSON."""
    with _workspace(ctx) as ws:
        try:
            click.echo(json.dumps(Config(ws.db).get(key)))
        except ConfigError as exc:
            raise _Fail(str(exc)) from None


@config.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_context
def set_(ctx: click.Context, key: str, value: str) -> None:
    """Set KEY to VALUE (JSON when it parses, e.g. 587, true, ["/data"]; else the text)."""
    with _workspace(ctx) as ws:
        try:
            stored = Config(ws.db).set_text(key, value)
            ws.audit("config set", f"config {key}", detail=json.dumps(stored)[:200])
        except ConfigError as exc:
            raise _Fail(str(exc)) from None
    out.print(escape(f"{key} = {json.dumps(stored)}"))


@config.command("unset")
@click.argument("key")
@click.pass_context
def unset(ctx: click.Context, key: str) -> None:
    """Go back to KEY's default."""
    with _workspace(ctx) as ws:
        try:
            Config(ws.db).unset(key)
            ws.audit("config unset", f"config {key}")
        except ConfigError as exc:
            raise _Fail(str(exc)) from None
    out.print(escape(f"{key} unset"))
