"""``taskloom users``, ``taskloom tokens`` and ``taskloom audit``: the people of a home and what they did.

A password is never an argument (shell history, ``ps``): ``users add`` and
``users passwd`` read it from piped stdin or a hidden prompt asked twice. A
token is printed once, when it is made; the store keeps only its SHA-256.

These commands work on the store directly, as every command does: whoever can
open the database may manage it, and the command line's user is recorded as
the actor (``$TASKLOOM_USER``, else the OS user). Roles are enforced where
people come in over the network: the web app and the REST API.

``taskloom.ui.cli.main`` registers the three groups.
"""

from __future__ import annotations

import time
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from taskloom.core.access import AccessError, check_user_name, parse_role
from taskloom.storage.accounts import Accounts
from taskloom.storage.audit import entries
from taskloom.storage.db import write_txn
from taskloom.storage.runs import iso

from taskloom.ui.cli.common import _Fail, _print_json, _workspace, out, read_hidden, short_utc

__all__ = ["users", "tokens", "audit"]

_ROLE_HELP = "viewer, operator, editor or admin (from least to most allowed)"


def _accounts_call(ws: Any, action: str, target: str, call: Any) -> Any:
    """Run ``call`` and its audit row in one transaction; a mistake changes nothing and says why."""
    try:
        with write_txn(ws.db):
            value = call()
            ws.audit(action, target)
        return value
    except AccessError as exc:
        raise _Fail(str(exc)) from None


# -- users -------------------------------------------------------------------------------------------------------


@click.group("users")
def users() -> None:
    """Accounts for the web app and the REST API, each with a role.

    With no accounts, the web app and the API serve whoever reaches them on
    127.0.0.1, as one user. Once the first user exists, both ask who you are.
    Make the first one an admin.
    """


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help=_ROLE_HELP)
@click.option("--email", default="", help="Where alerts for the workflows this user owns may go.")
@click.option("--no-password", is_flag=True, help="No password: the user signs in with single sign-on or a token.")
@click.pass_context
def add(ctx: click.Context, name: str, role: str, email: str, no_password: bool) -> None:
    """Add a user; the password comes from stdin or a hidden prompt, never from an argument.

    Example: printf %s "$PASSWORD" | taskloom users add ann --role admin
    """
    try:  # before asking for a password that could not be used
        check_user_name(name)
        parse_role(role)
    except AccessError as exc:
        raise _Fail(str(exc)) from None
    password = None if no_password else read_hidden(
        f"the password of {name}", f"printf %s PASSWORD | taskloom users add {name} --role {role}",
        prompt=f"Password for {name}", kind="passwords")
    with _workspace(ctx) as ws:
        user = _accounts_call(ws, "user add", f"user {name}",
                              lambda: Accounts(ws.db).add(name, role, password, email=email))
    click.echo(f"added user {user.name} ({user.role.label})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print [{name, role, password, email, tokens, created, updated}].")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the users with their roles (never a password or a token)."""
    with _workspace(ctx) as ws:
        found = Accounts(ws.db).list()
    if as_json:
        _print_json([u.to_dict() for u in found])
        return
    if not found:
        out.print("no users: the web app and the API serve 127.0.0.1 as one user;"
                  " add the first admin with: taskloom users add NAME --role admin")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "ROLE", "PASSWORD", "TOKENS", "EMAIL", "CREATED"):
        table.add_column(column)
    for user in found:
        table.add_row(escape(user.name), user.role.label, "yes" if user.has_password else "no", str(user.tokens),
                      escape(user.email), short_utc(iso(user.created)))
    out.print(table)


@users.command("set-role")
@click.argument("name")
@click.argument("role")
@click.pass_context
def set_role(ctx: click.Context, name: str, role: str) -> None:
    """Change a user's role (it applies to the user's tokens and sessions at once)."""
    with _workspace(ctx) as ws:
        old, new = _accounts_call(ws, "user set-role", f"user {name}", lambda: Accounts(ws.db).set_role(name, role))
    click.echo(f"{name}: {old.label} -> {new.label}")


@users.command("passwd")
@click.argument("name")
@click.pass_context
def passwd(ctx: click.Context, name: str) -> None:
    """Set a user's password (from stdin or a hidden prompt)."""
    password = read_hidden(f"the password of {name}", f"printf %s PASSWORD | taskloom users passwd {name}",
                           prompt=f"New password for {name}", kind="passwords")
    with _workspace(ctx) as ws:
        _accounts_call(ws, "user passwd", f"user {name}", lambda: Accounts(ws.db).set_password(name, password))
    click.echo(f"changed the password of {name}")


@users.command("remove")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Remove a user and its tokens; the audit trail keeps what it did."""
    with _workspace(ctx) as ws:
        gone = _accounts_call(ws, "user remove", f"user {name}", lambda: Accounts(ws.db).remove(name))
    click.echo(f"removed user {name}" + (f" and {gone} token{'s' if gone != 1 else ''}" if gone else ""))


# -- tokens ------------------------------------------------------------------------------------------------------


@click.group("tokens")
def tokens() -> None:
    """Bearer tokens for the REST API, each acting as its user with the user's role."""


@tokens.command("create")
@click.option("--user", "user", required=True, help="The user the token acts as.")
@click.option("--name", "label", default="", help="A label saying what the token is for.")
@click.option("--expires-in", "days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Days until it stops working (default: never).")
@click.option("--json", "as_json", is_flag=True, help="Print {id, user, label, token, expires}.")
@click.pass_context
def create(ctx: click.Context, user: str, label: str, days: float | None, as_json: bool) -> None:
    """Make a token and print it once: it is stored hashed and cannot be shown again.

    Example: curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8321/runs
    """
    now = time.time()
    expires = None if days is None else now + days * 86400
    with _workspace(ctx) as ws:
        token_id, token = _accounts_call(ws, "token create", f"user {user}", lambda: Accounts(ws.db).create_token(
            user, label=label, expires=expires, now=now))
    if as_json:
        _print_json({"id": token_id, "user": user, "label": label, "token": token, "expires": iso(expires)})
        return
    click.echo(token)
    click.echo(f"token {token_id} for {user}: keep it now, it is not shown again"
               + (f"; it expires {short_utc(iso(expires))}" if expires else ""), err=True)


@tokens.command("list")
@click.option("--user", "user", default=None, help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print [{id, user, label, state, created, expires, last_used, revoked}].")
@click.pass_context
def list_tokens(ctx: click.Context, user: str | None, as_json: bool) -> None:
    """List tokens (never the tokens themselves) with their state: active, expired or revoked."""
    now = time.time()
    with _workspace(ctx) as ws:
        found = Accounts(ws.db).tokens(user)
    if as_json:
        _print_json([t.to_dict(now) for t in found])
        return
    if not found:
        out.print("no tokens; make one with: taskloom tokens create --user NAME")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "USER", "LABEL", "STATE", "CREATED", "LAST USED", "EXPIRES"):
        table.add_column(column)
    for t in found:
        table.add_row(str(t.id), escape(t.user), escape(t.label), t.state(now), short_utc(iso(t.created)),
                      short_utc(iso(t.last_used)), short_utc(iso(t.expires)))
    out.print(table)


@tokens.command("revoke")
@click.argument("token_id", type=int)
@click.pass_context
def revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke a token by its id (from taskloom tokens list); it stops working at once."""
    with _workspace(ctx) as ws:
        info = _accounts_call(ws, "token revoke", f"token {token_id}", lambda: Accounts(ws.db).revoke_token(token_id))
    click.echo(f"revoked token {info.id} of {info.user}")


# -- audit -------------------------------------------------------------------------------------------------------


@click.command("audit")
@click.option("--user", default=None, help="Only what this user did.")
@click.option("--workflow", default=None, help="Only what was done to this workflow.")
@click.option("--action", default=None, help="Only this action (save, trigger, login, ...).")
@click.option("--since", default=None, help="Only from this time on: ISO 8601 (2026-12-01T09:00) or an age (2h, 3d).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print [{id, at, actor, via, action, target, workflow, version, result, source, detail}].")
@click.pass_context
def audit(ctx: click.Context, user: str | None, workflow: str | None, action: str | None, since: str | None,
          limit: int, as_json: bool) -> None:
    """Who did what and when, newest first: logins, saves, runs started, cancels, secrets, users."""
    start = None if since is None else _since(since, time.time())
    with _workspace(ctx) as ws:
        found = entries(ws.db, user=user, workflow=workflow, action=action, since=start, limit=limit)
    if as_json:
        _print_json([e.to_dict() for e in found])
        return
    if not found:
        out.print("nothing in the audit trail" + (" matches" if any((user, workflow, action, since)) else " yet"))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("AT", "ACTOR", "ACTION", "TARGET", "RESULT", "SOURCE", "DETAIL"):
        table.add_column(column)
    for e in found:
        target = e.target + (f" v{e.version}" if e.version is not None else "")
        table.add_row(short_utc(iso(e.at)), escape(e.actor), e.action, escape(target), e.result, escape(e.source),
                      escape(e.detail))
    out.print(table)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _since(text: str, now: float) -> float:
    """``2h`` / ``3d`` (ago) or an ISO 8601 time (UTC unless it says otherwise) as an instant."""
    from datetime import datetime, timezone

    value = text.strip()
    if value[:-1].replace(".", "", 1).isdigit() and value[-1:] in _UNITS:
        return now - float(value[:-1]) * _UNITS[value[-1]]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Fail(f"--since {text!r} is neither a time (2026-12-01T09:00) nor an age (30m, 2h, 3d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()

