"""``taskloom db status``, ``db migrate`` and ``db copy``: the schema of a Taskloom database, on SQLite or PostgreSQL.

Without ``--database`` they look at the SQLite file of the Taskloom home (every
other command applies pending changes to it on opening). With
``--database postgresql://USER@HOST/DB`` they look at, or upgrade, a PostgreSQL
database: the same schema, written once (``docs/architecture.md``). Every
other command takes the same ``--database`` (or ``TASKLOOM_DATABASE_URL``) to
use that database as its store (``docs/deploy.md``).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from taskloom.storage.home import database_path, resolve_home
from taskloom.storage.schema_state import DatabaseUrlError, SchemaState, apply_changes, is_postgres_url, schema_state
from taskloom.ui.cli.common import _Fail, _print_json, out

__all__ = ["db"]

_DATABASE_HELP = ("The database: a postgresql:// URL, or a SQLite file (default: taskloom.db in the Taskloom"
                  " home).")


def _target(ctx: click.Context, database: str | None) -> str:
    if database is None:
        return str(database_path(resolve_home(ctx.obj.get("home") if ctx.obj else None)))
    if "://" in database and not is_postgres_url(database):
        raise _Fail(f"--database {database!r}: give a postgresql:// URL or the path of a SQLite file")
    return database


def _print_state(state: SchemaState) -> None:
    out.print(escape(f"{state.backend} database {state.location}"))
    out.print(f"  applied: {len(state.applied)} change(s)" + (f", the last {state.applied[-1]}" if state.applied
                                                             else ""))
    if state.pending:
        out.print(escape(f"  pending: {', '.join(state.pending)}; apply them with: taskloom db migrate"))
    else:
        out.print("  the schema is current")


@click.group()
def db() -> None:
    """The schema of a Taskloom database: what it has and what it lacks."""


@db.command()
@click.option("--database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print {backend, database, applied, pending, current}.")
@click.pass_context
def status(ctx: click.Context, database: str | None, as_json: bool) -> None:
    """Show the schema changes a database has and the ones it lacks (it changes nothing).

    Exit status 0 when the schema is current, 1 when changes are pending.
    """
    try:
        state = schema_state(_target(ctx, database))
    except DatabaseUrlError as exc:
        raise _Fail(str(exc)) from None
    if as_json:
        _print_json(state.to_dict())
    else:
        _print_state(state)
    ctx.exit(0 if not state.pending else 1)


@db.command()
@click.option("--database", default=None, metavar="URL", help=_DATABASE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print {backend, database, applied, pending, current, now}.")
@click.pass_context
def migrate(ctx: click.Context, database: str | None, as_json: bool) -> None:
    """Apply the schema changes a database lacks, all in one transaction (safe from several hosts at once)."""
    try:
        state, now = apply_changes(_target(ctx, database))
    except DatabaseUrlError as exc:
        raise _Fail(str(exc)) from None
    if as_json:
        _print_json({**state.to_dict(), "now": now})
        return
    out.print(escape(f"applied {len(now)} change(s){': ' + ', '.join(now) if now else ''}"))
    _print_state(state)


@db.command("copy")
@click.option("--to", "target", required=True, metavar="URL", help="The empty postgresql:// database to copy into.")
@click.option("--database", default=None, metavar="FILE", help="The SQLite file to copy (default: the home's).")
@click.option("--json", "as_json", is_flag=True, help="Print {from, to, rows: {table: count}}.")
@click.pass_context
def copy_(ctx: click.Context, target: str, database: str | None, as_json: bool) -> None:
    """Copy a SQLite home's database (every version, run, attempt, log line, secret, scheduler state) into an
    empty PostgreSQL database, in one transaction, and check the counts; a target with any row is refused.

    Secrets stay encrypted: copy the home's secret.key to the hosts that read them.
    """
    from taskloom.storage.copy import copy_to_postgres

    source = _target(ctx, database)
    if is_postgres_url(source) or not is_postgres_url(target):
        raise _Fail("db copy copies a SQLite file (--database FILE, default the home's) --to a postgresql:// URL")
    if not Path(source).is_file():
        raise _Fail(f"{source} does not exist: nothing to copy")
    try:
        rows = copy_to_postgres(source, target)
    except DatabaseUrlError as exc:
        raise _Fail(str(exc)) from None
    shown = schema_state(target).location
    if as_json:
        _print_json({"from": source, "to": shown, "rows": rows})
        return
    out.print(escape(f"copied {source} to {shown}: " + ", ".join(f"{n} {t}" for t, n in rows.items() if n)))
