"""The ``taskloom`` command line.

Each command is a thin shell over :class:`taskloom.storage.store.Workspace` and the
engine. ``--json`` outputs are a stable interface for scripts: keys are only
ever added, never renamed or removed. Mistakes print a message (and the
validation issues) and exit 1; usage errors exit 2; no traceback reaches the
user for a mistake they made.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from taskloom.core.importers import FORMATS, Content
from taskloom.core.model import canonical_json
from taskloom.core.params import ParamError, parse_assignments
from taskloom.storage.plugins import load_registry
from taskloom.core.schema import schema_json
from taskloom.core.states import RunState
from taskloom.core.validation import Issue, parse_document, validate_document
from taskloom.storage.runs import iso
from taskloom.storage.scheduling import list_firings
from taskloom.storage.workflows import list_workflows
from taskloom.storage.runs import iter_logs, list_runs
from taskloom.storage.store import UserError, Workspace

from taskloom.ui.cli import render
from taskloom.ui.cli.common import _Fail, _print_json, _workspace, database_option, err, out
from taskloom.ui.cli.importing import import_converted, names_one_file

__all__ = ["main", "cli"]

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="TASKLOOM_HOME",
    type=click.Path(file_okay=False),
    help="Folder for the database and files (default ~/.taskloom, or $TASKLOOM_HOME).",
)
@database_option
@click.version_option(package_name="taskloom")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Taskloom: design, run and schedule workflows of tasks."""
    ctx.obj = {"home": home}


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the issues as a JSON list of {path, message, hint}.")
@click.option("--check-runtime", is_flag=True,
              help="Also check what a run will need here: python modules (found from the file's folder) and secrets.")
@click.pass_context
def validate(ctx: click.Context, file: str, as_json: bool, check_runtime: bool) -> None:
    """Check a workflow file and list every problem, with its JSON path and a hint.

    Exit status 0 when the file is valid, 1 when it is not. With
    --check-runtime, a python callable that cannot be imported from the file's
    folder and a secret that is not set in the Taskloom home are problems too.

    Example: taskloom validate assets/examples/hello.json
    """
    try:
        raw = Path(file).read_bytes()
    except OSError as exc:
        raise _Fail(f"cannot read {file}: {exc.strerror or exc}") from None
    doc, issues = parse_document(raw)
    if not issues:
        issues = validate_document(doc, load_registry())
    if not issues and check_runtime:
        issues = _runtime_issues(ctx, doc, file)
    if as_json:
        _print_json([i.to_dict() for i in issues])
    elif issues:
        render.print_issues(out, issues)
        out.print(f"[red]{escape(file)}: {len(issues)} problem(s)[/]")
    else:
        out.print(f"[green]{escape(file)}: valid[/]")
    sys.exit(1 if issues else 0)


def _runtime_issues(ctx: click.Context, doc: dict[str, Any], file: str) -> list[Issue]:
    from taskloom.runtime.preflight import check_runtime
    from taskloom.storage.secrets import SecretStore

    with _workspace(ctx) as ws:
        names = SecretStore(ws.db, ws.home).names()
    return check_runtime(doc, folder=os.path.dirname(os.path.abspath(file)), secret_names=names)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the taskloom/v1 workflow format."""
    click.echo(schema_json(load_registry()), nl=False)


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-m", "--message", default="", help="A note stored with the new version.")
@click.option("--json", "as_json", is_flag=True,
              help="Print [{file, name, version, created}] (converted files add format, report, issues, output).")
@click.option("--from", "source", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="The files' format; auto recognises each of them.")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Write the (converted) workflows to this FILE.json, or into this folder (one NAME.json each),"
                   " instead of storing them.")
@click.option("--name", default=None, help="Store the workflow under this name (a crontab's name prefix).")
@click.option("--timezone", default=None,
              help="Time zone of a crontab's schedules (default: this machine's, as cron did).")
@click.option("--user-column/--no-user-column", "user_column", default=None,
              help="A crontab has (or has not) a user before each command, as /etc/crontab and /etc/cron.d files"
                   " do (default: recognised).")
@click.option("--replace", is_flag=True,
              help="Let a crontab's workflows become new versions of stored workflows of the same name that came"
                   " from elsewhere (refused otherwise).")
@click.pass_context
def import_(ctx: click.Context, files: tuple[str, ...], message: str, as_json: bool, source: str,
            output: str | None, name: str | None, timezone: str | None, user_column: bool | None,
            replace: bool) -> None:
    """Store workflow files; each becomes a new version of the workflow it names.

    Taskloom files are stored as they are. Azure Logic Apps definitions, n8n
    exports and crontabs are converted first (--from, or recognised with
    auto) and the import report says what each step became; a converted file
    is stored only when all its workflows validate (a placeholder for what
    could not be converted never does). With -o the converted workflows are
    written to files instead, to fix and import.

    An invalid file is reported with its problems and stores nothing. A file
    identical to the current version stores nothing new. A crontab's
    workflows (cron-FILE-JOB) do not replace stored workflows that came from
    elsewhere unless --replace is given.

    \b
    Examples:
      taskloom import assets/examples/*.json
      taskloom import --from n8n flow.json -o converted.json
      crontab -l > my.crontab && taskloom import my.crontab
      taskloom import /etc/crontab /etc/cron.d/*
    """
    if output and len(files) > 1 and names_one_file(output):
        raise click.UsageError(f"-o {output} names one file but {len(files)} files are given: give a folder"
                               f" (-o {output[:-5] or 'out'}/) to write one NAME.json per workflow")
    results, failed = [], False
    with _workspace(ctx) as ws:
        for file in files:
            # read once, parsed once (when first asked): recognising, converting and storing share it
            content = _content(file)
            kind = source
            if source == "auto":
                # a file that cannot be read: the plain import says so
                kind = (content.format if content is not None else None) or "taskloom"
            if kind != "taskloom" or output or name:
                entries, ok = import_converted(
                    ws, file, kind, message=message, as_json=as_json, output=output, name=name, timezone=timezone,
                    several_files=len(files) > 1, replace=replace, user_column=user_column, content=content,
                )
                results += entries
                failed = failed or not ok
                continue
            try:
                info, created = ws.import_file(file, message=message, raw=None if content is None else content.raw,
                                               parsed=None if content is None else content.parsed)
                if created:
                    ws.audit("import", f"workflow {info.workflow}", workflow=info.workflow, version=info.version,
                             detail=str(file))
            except UserError as exc:
                failed = True
                render.print_issues(err, exc.issues)
                err.print(f"[red]error:[/] {escape(str(exc))}; nothing stored")
                if source == "auto" and any(i.path == "" or i.path == "/format" for i in exc.issues):
                    err.print("[dim](not recognised as a Logic Apps definition, an n8n export or a crontab either;"
                              " name the format with --from)[/]")
                continue
            results.append({"file": file, "name": info.workflow, "version": info.version, "created": created})
            if not as_json:
                verb = "imported" if created else "unchanged,"
                out.print(f"{verb} [bold]{escape(info.workflow)}[/] version {info.version}  ({escape(file)})")
    if as_json:
        _print_json(results)
    sys.exit(1 if failed else 0)


def _content(file: str) -> Content | None:
    """The file's content, read once; None when it cannot be read (the import that follows says why)."""
    try:
        return Content(Path(file).read_bytes(), file)
    except OSError:
        return None


@cli.command()
@click.argument("name")
@click.option("--version", "version", type=int, help="Export this version (default: the current one).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.pass_context
def export(ctx: click.Context, name: str, version: int | None, output: str | None) -> None:
    """Write a stored workflow as canonical JSON (stable key order, two-space indent)."""
    with _workspace(ctx) as ws:
        try:
            text = canonical_json(ws.export(name, version))
        except UserError as exc:
            raise _Fail(exc) from None
    if output:
        Path(output).write_text(text, encoding="utf-8")
        err.print(f"wrote {escape(output)}")
    else:
        click.echo(text, nl=False)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print [{name, title, version, paused, ...}].")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List stored workflows."""
    with _workspace(ctx) as ws:
        rows = []
        for info in list_workflows(ws.db):
            last = list_runs(ws.db, info.name, limit=1)
            row = info.to_dict()
            row["created"], row["updated"] = iso(info.created), iso(info.updated)
            row["last_run"] = last[0].summary() if last else None
            rows.append(row)
    if as_json:
        _print_json(rows)
    else:
        render.print_workflows(out, rows)


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--status", type=click.Choice([s.value for s in RunState] + ["missed", "skipped_overlap"]),
    help="Only runs (or firings) in this state.",
)
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print [{id, workflow, version, status, trigger, ...}].")
@click.pass_context
def runs(ctx: click.Context, name: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first, optionally of one workflow, with the firings that started none.

    Instants the scheduler missed (it was down) or skipped (a run was still
    active) show as status 'missed' or 'skipped_overlap' with the reason.
    """
    with _workspace(ctx) as ws:
        keyed = []
        for record in list_runs(ws.db, name, limit=limit, status=status):
            row = record.summary()
            if as_json:
                row["tasks"] = {k: v.to_dict() for k, v in ws.run(record.id).tasks.items()}
            keyed.append((record.created, row))
        statuses = (status,) if status else ("missed", "skipped_overlap", "queued")
        keyed += [(f["created"], _firing_row(f)) for f in list_firings(ws.db, name, statuses=statuses, limit=limit)]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    rows = [row for _, row in keyed[:limit]]
    if as_json:
        _print_json(rows)
    else:
        render.print_runs(out, rows)


def _firing_row(firing: dict) -> dict:
    """A firing that started no run, in the ``runs --json`` shape (``id`` is null)."""
    return {
        "id": None, "workflow": firing["workflow"], "version": None, "status": firing["status"],
        "trigger": "schedule", "trigger_id": firing["trigger_id"], "logical_time": iso(firing["instant"]),
        "started": None, "ended": None, "duration": None, "params": None, "error": firing["reason"],
        "parent_run_id": None, "started_by": "schedule",
    }


@cli.command()
@click.argument("run_id", type=int)
@click.option("--task", "task_id", help="Only this task's lines.")
@click.pass_context
def logs(ctx: click.Context, run_id: int, task_id: str | None) -> None:
    """Print a run's captured log lines, and why skipped tasks did not run."""
    with _workspace(ctx) as ws:
        try:
            run = ws.run(run_id)
        except UserError as exc:
            raise _Fail(exc) from None
        if task_id is not None and task_id not in run.tasks:
            raise _Fail(f"run {run_id} has no task {task_id!r}; its tasks: {', '.join(run.tasks)}")
        render.print_logs(out, run, iter_logs(ws.db, run_id, task_id=task_id), task_id)


from taskloom.ui.cli.runs import cancel, rerun, resume, run  # noqa: E402  (they register on the group)
from taskloom.ui.cli.config import config  # noqa: E402
from taskloom.ui.cli.dask import dask_demo  # noqa: E402
from taskloom.ui.cli.firings import next_  # noqa: E402
from taskloom.ui.cli.service import pause, scheduler, serve, trigger, webhooks  # noqa: E402
from taskloom.ui.cli.secrets import secrets  # noqa: E402
from taskloom.ui.cli.webapp import ui  # noqa: E402

from taskloom.ui.cli.database import db  # noqa: E402
from taskloom.ui.cli.accounts import audit, tokens, users  # noqa: E402
from taskloom.ui.cli.alerts import alerts  # noqa: E402

for _command in (run, resume, rerun, cancel, secrets, config, scheduler, serve, trigger, pause, webhooks, ui, dask_demo, db,
                 users, tokens, audit, alerts):
    cli.add_command(_command)
cli.add_command(next_, "next")


def _every_command(group: click.Group) -> Any:
    for command in group.commands.values():
        yield command
        if isinstance(command, click.Group):
            yield from _every_command(command)


# ``--database URL`` is taken after any command too (``taskloom runs --database URL``), except
# where a command has its own (``taskloom db status --database URL`` looks at that database).
for _command in _every_command(cli):
    if not any(getattr(p, "name", None) == "database" for p in _command.params):
        database_option(_command)


def main() -> None:
    """Console-script entry point.

    A database that cannot be written (a full disk, a read-only file, a lock
    held too long) is the machine's problem, not a bug: whichever command
    meets it prints the storage layer's message, which names the file and
    the fix, and exits 1 without a traceback. So does a user mistake that no
    command turned into its own message (:func:`~taskloom.ui.cli.common.print_error`
    prints both); the other families of :mod:`taskloom.core.errors` are bugs here
    and keep their traceback.
    """
    from taskloom.core.errors import StorageError, UserMistake

    from taskloom.ui.cli.common import print_error
    from taskloom.ui.logmask import mask_process_output

    mask_process_output()  # before any logging is configured: a secret never reaches this process's stderr
    try:
        cli(prog_name="taskloom")
    except (UserMistake, StorageError) as exc:
        print_error(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
