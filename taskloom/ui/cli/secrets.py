"""``taskloom secrets``: store, list and delete the secrets workflows read as ``{{ secrets.NAME }}``.

A value is never taken from the command line: arguments and options end up
in shell history and in ``ps`` output for every user of the machine. ``set``
reads the value from stdin when it is piped in, or prompts for it (hidden,
twice) in a terminal. No command ever prints a value.

``taskloom.ui.cli.main`` registers this group on the ``taskloom`` command.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from taskloom.core.masking import MIN_LENGTH
from taskloom.storage.secrets import SecretError, SecretStore, validate_name

from taskloom.ui.cli.common import _Fail, _print_json, _workspace, err, out, read_hidden, short_utc

__all__ = ["secrets"]


@click.group("secrets")
def secrets() -> None:
    """Store secrets for workflows (encrypted; the key is <home>/secret.key).

    Templates read a secret as {{ secrets.NAME }}; its value is masked as ***
    in run logs and outputs. Back up secret.key with the database: without
    it the stored secrets cannot be decrypted.
    """


@secrets.command("set")
@click.argument("name")
@click.pass_context
def set_(ctx: click.Context, name: str) -> None:
    """Store a secret, reading its value from stdin or a hidden prompt.

    The value is never an argument (it would leak into shell history and ps).
    Piped input loses one trailing newline, so `echo` works. Replaces an
    existing secret of the same name.

    Example: printf %s "$TOKEN" | taskloom secrets set GITHUB_TOKEN
    """
    try:
        validate_name(name)
    except SecretError as exc:
        raise _Fail(str(exc)) from None
    value = _read_value(name)
    with _workspace(ctx) as ws:
        try:
            created = SecretStore(ws.db, ws.home).set(name, value)
            ws.audit("secret set", f"secret {name}", detail="created" if created else "replaced")
        except SecretError as exc:
            raise _Fail(str(exc)) from None
    click.echo(f"{'created' if created else 'replaced'} secret {name}")
    if len(value) < MIN_LENGTH:
        err.print(
            f"[yellow]warning:[/] {name} is shorter than {MIN_LENGTH} characters, "
            "so it is not masked in logs and outputs"
        )


@secrets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print [{name, created, updated}].")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List secret names and when they were set; never their values."""
    with _workspace(ctx) as ws:
        try:
            rows = SecretStore(ws.db, ws.home).list()
        except SecretError as exc:
            raise _Fail(str(exc)) from None
    if as_json:
        _print_json(rows)
    elif not rows:
        out.print("no secrets; add one with: taskloom secrets set NAME")
    else:
        _print_table(out, rows)


@secrets.command("delete")
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a stored secret."""
    with _workspace(ctx) as ws:
        try:
            SecretStore(ws.db, ws.home).delete(name)
            ws.audit("secret delete", f"secret {name}")
        except SecretError as exc:
            raise _Fail(str(exc)) from None
    click.echo(f"deleted secret {name}")


def _read_value(name: str) -> str:
    """The value from piped stdin (one trailing newline removed), else from a hidden, confirmed prompt."""
    return read_hidden(f"the value of {name}", f"printf %s VALUE | taskloom secrets set {name}",
                       prompt=f"Value of {name}", kind="secrets")


def _print_table(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("name", "created", "updated"):
        table.add_column(column.upper())
    for row in rows:
        table.add_row(row["name"], short_utc(row["created"]), short_utc(row["updated"]))
    console.print(table)

