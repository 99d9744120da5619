"""What every ``taskloom`` command shares: consoles, JSON output, the workspace, user errors.

A mistake is printed in one place, :func:`print_error`: the validation issues, then
``error: message``, then the hint when there is one, on stderr, and the command exits 1 with no
traceback. Commands raise :class:`_Fail` (click's form of a user mistake); :func:`taskloom.ui.cli.main.main`
prints the user mistakes and storage errors (:mod:`taskloom.core.errors`) that get past them.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from taskloom.core.errors import StorageError, UserMistake
from taskloom.storage.home import DATABASE_URL_ENV, resolve_database
from taskloom.storage.store import UserError, Workspace

from taskloom.ui.cli import render

__all__ = ["short_utc", "read_hidden", "open_workspace", "out", "err", "_print_json", "_workspace", "_Fail", "print_error", "executor_options", "open_executor",
           "database_option"]

#: How wide output to a pipe or a file may be: wide enough that no table row is ever wrapped.
PIPE_WIDTH = 65_536


class _Console(Console):
    """A rich console that wraps only on a terminal.

    Written to a pipe or a file, rich would wrap at 80 columns, so one table
    row (one run, one firing) would become two lines for grep, cut or awk.
    There every line is printed whole instead; a terminal keeps its width.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False, soft_wrap=True)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _use_database(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Point this process, and every process it starts, at the store ``value`` names (when given)."""
    if not value:
        return
    try:
        resolve_database(Path("."), value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).split("=", 1)[-1], ctx=ctx, param=param) from None
    os.environ[DATABASE_URL_ENV] = value


def database_option(function: Any) -> Any:
    """``--database URL``: a ``postgresql://`` store (or another SQLite file) instead of the home's ``taskloom.db``.

    It sets ``TASKLOOM_DATABASE_URL`` for this process, so that everything it
    opens and every process it starts (the web app of ``serve``, a run's
    heartbeat) uses the same store; tasks never see it (their environment is minimal).
    """
    settings: dict[str, Any] = dict(
        envvar=DATABASE_URL_ENV, metavar="URL", expose_value=False, is_eager=True, callback=_use_database,
        help="The store: a postgresql://USER@HOST/DB URL, or a SQLite file (default: taskloom.db in the home;"
             " env: TASKLOOM_DATABASE_URL).",
    )
    if isinstance(function, click.Command):  # a command built already: give it the option too
        function.params.append(click.Option(["--database"], **settings))
        return function
    return click.option("--database", **settings)(function)


def _workspace(ctx: click.Context) -> Any:
    """The workspace of the command's ``--home`` (a context manager that closes it)."""
    return open_workspace(ctx.obj["home"])


@contextmanager
def open_workspace(home: str | None) -> Iterator[Workspace]:
    """The workspace of ``home``; a home that cannot be opened is the user's error, printed without a traceback."""
    try:
        ws = Workspace(home)
    except UserError as exc:
        raise _Fail(exc) from None
    try:
        yield ws
    finally:
        ws.close()


def executor_options(function: Any) -> Any:
    """``--executor local|dask`` and ``--dask-address`` (or TASKLOOM_DASK_ADDRESS)."""
    function = click.option(
        "--dask-address", envvar="TASKLOOM_DASK_ADDRESS", metavar="tcp://HOST:8786",
        help="The Dask scheduler the dask executor submits to (env: TASKLOOM_DASK_ADDRESS).",
    )(function)
    return click.option(
        "--executor", type=click.Choice(["local", "dask"]), default=None,
        help="Where task attempts run: on this machine (default), or on a Dask cluster (default when a"
        " Dask address is set).",
    )(function)


@contextmanager
def open_executor(name: str | None, dask_address: str | None) -> Iterator[Any]:
    """The chosen executor, closed on the way out; a clear error when it cannot be set up."""
    from taskloom.runtime.executors import ExecutorError, create_executor

    try:
        executor = create_executor(name, dask_address=dask_address)
    except ExecutorError as exc:
        raise _Fail(str(exc)) from None
    try:
        yield executor
    finally:
        executor.close()


def short_utc(value: str | None) -> str:
    """An ISO time as tables show it: ``2026-11-28T10:41:21.123456+00:00`` as ``2026-11-28 10:41:21 UTC``."""
    return "" if not value else value[:19].replace("T", " ") + " UTC"


def read_hidden(what: str, example: str, *, prompt: str, kind: str = "values") -> str:
    """A value that must not be an argument (a secret, a password): piped stdin with one trailing newline
    removed, else a hidden prompt asked twice. ``what`` names it in errors, ``example`` shows how to pipe it."""
    stdin = sys.stdin
    if stdin is None:
        raise _Fail(f"there is no stdin to read {what} from; pipe it in")
    if stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    # Bytes, not text: text mode would turn a "\r" inside the value into "\n".
    buffer = getattr(stdin, "buffer", None)
    try:
        value = buffer.read().decode("utf-8") if buffer is not None else stdin.read()
    except UnicodeDecodeError:
        raise _Fail(f"{what} read from stdin is not UTF-8 text; {kind} are text") from None
    value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    if not value:
        raise _Fail(f"read an empty value for {what} from stdin; pipe it in ({example})"
                    " or run in a terminal to be prompted")
    return value


def print_error(error: UserMistake | StorageError | str) -> None:
    """Report a mistake on stderr: its validation issues, ``error: message``, then its hint if it has one.

    The message is plain text: it is escaped before it goes through rich, so a
    ``[...]`` in a path, a name or a stored value is printed, not taken as markup.
    """
    render.print_issues(err, getattr(error, "issues", []))
    err.print(f"[red]error:[/] {escape(str(error))}")
    hint = getattr(error, "hint", "")
    if hint:
        err.print(f"    [dim]hint:[/] {escape(hint)}")


class _Fail(UserMistake, click.ClickException):
    """A user mistake as click's exception (exit 1), printed by :func:`print_error`.

    Made from a message or from any user mistake, whose issues and hint it keeps.
    """

    def __init__(self, error: UserMistake | str) -> None:
        if isinstance(error, UserMistake):
            super().__init__(str(error), issues=error.issues, place=error.place, hint=error.hint)
        else:
            super().__init__(str(error))

    def show(self, file: Any = None) -> None:  # noqa: ARG002 (click's signature)
        print_error(self)



