"""``taskloom import --from logicapps|n8n|crontab`` (and ``-o``, ``--name``): convert, report, store or write.

What happens to a converted file:

* the import report is printed (``--json``: the ``report`` key of each entry);
* a crontab's schedules are read in this machine's time zone (cron used
  its machine's local time) unless ``--timezone`` or ``CRON_TZ`` says otherwise;
* every workflow it gives is validated; when all are valid they are stored
  together (one transaction) as new versions, like any import;
* when one is not (a placeholder to replace, a condition kept verbatim),
  nothing of the file is stored: its problems are printed and the exit
  status is 1. ``-o PATH`` writes the converted workflows instead of storing
  them (valid or not), to edit and import afterwards: to ``PATH`` when it
  names one ``.json`` file (an error when the file gives several), else
  into the folder ``PATH``, one ``NAME.json`` per workflow;
* a crontab's workflow names are made up by the importer, so it never
  replaces a stored workflow of the same name that came from elsewhere (no
  version of it came from this file) unless ``--replace`` says so; nothing
  of the file is stored then. A workflow that came from this file before
  and that it no longer gives is named in a note: it stays stored.

Input that cannot be converted prints where and why, stores nothing, exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.markup import escape

from taskloom.core.importers import FORMAT_TITLES, Content, Conversion, ConversionError, convert
from taskloom.core.model import canonical_json
from taskloom.core.validation import Issue
from taskloom.storage.db import write_txn
from taskloom.storage.workflows import NotFound, VersionInfo, list_versions, list_workflows
from taskloom.storage.store import UserError, Workspace

from taskloom.ui.cli import render
from taskloom.ui.cli.common import err, out
from taskloom.ui.localzone import local_zone

__all__ = ["import_converted", "print_report", "names_one_file"]

#: the kinds of ``VersionInfo.origin`` that are not a converted format, as a message names them
_ORIGINS = {"file": "the file", "taskloom": "the file", "upload": "the upload", "api": "the REST API",
            "designer": "the designer", "restore": "a restored version"}
_MARK = {"mapped": "[green]✓[/]", "flagged": "[yellow]![/]", "placeholder": "[red]✗[/]"}


def print_report(conversion: Conversion, file: str) -> None:
    """The import report: one line per item, with what to do under flagged items and placeholders."""
    counts = {kind: sum(1 for i in conversion.report if i.kind == kind) for kind in _MARK}
    tasks = sum(len(d.get("tasks", [])) for d in conversion.documents if isinstance(d, dict))
    workflows = len(conversion.documents)
    out.print(f"converted [bold]{escape(file)}[/] from {FORMAT_TITLES[conversion.format]}: {workflows} workflow"
              f"{'s' if workflows != 1 else ''}, {tasks} task{'s' if tasks != 1 else ''}; {counts['mapped']} mapped,"
              f" {counts['flagged']} flagged, {counts['placeholder']} placeholder"
              f"{'s' if counts['placeholder'] != 1 else ''}")
    for item in conversion.report:
        out.print(f"  {_MARK.get(item.kind, '?')} {escape(item.path or '(file)')}  {escape(item.message)}",
                  style="dim" if item.kind == "mapped" else None)
        if item.hint:
            out.print(f"      [dim]{'replace' if item.kind == 'placeholder' else 'check'}:[/] {escape(item.hint)}")


def _entry(file: str, conversion: Conversion, doc: dict[str, Any], issues: list[Issue], *,
           version: int | None = None, created: bool = False, output: str | None = None) -> dict[str, Any]:
    """One ``--json`` entry: the keys of a plain import plus what a conversion adds."""
    name = doc.get("name") if isinstance(doc, dict) else None
    return {
        "file": file, "name": name, "version": version, "created": created, "format": conversion.format,
        "report": [i.to_dict() for i in conversion.report if i.workflow in (None, name)],
        "issues": [i.to_dict() for i in issues], "output": output,
    }


def names_one_file(target: str) -> bool:
    """Whether ``-o target`` names one workflow file (``x.json``, not an existing folder) rather than a folder."""
    return target.lower().endswith(".json") and not Path(target).is_dir()


def _write(documents: list[dict[str, Any]], target: str, several_files: bool) -> list[str]:
    """Write each document as canonical JSON: to ``target``, or into it when it is (or must be) a folder."""
    path = Path(target)
    folder = path.is_dir() or len(documents) > 1 or several_files or target.endswith(os.sep)
    paths = [path / f"{d.get('name') or 'workflow'}.json" for d in documents] if folder else [path]
    if folder:
        path.mkdir(parents=True, exist_ok=True)
    for doc, where in zip(documents, paths):
        where.write_text(canonical_json(doc), encoding="utf-8")
    return [str(p) for p in paths]


def _describe(origin: str) -> str:
    """``file:/x.json`` -> ``the file /x.json``: where a stored version came from, for a message."""
    if not origin:
        return "an unknown source (stored before Taskloom recorded where versions come from)"
    kind, _, where = origin.partition(":")
    what = _ORIGINS.get(kind) or f"the {FORMAT_TITLES.get(kind, kind)} file"
    return f"{what} {where}".strip()


def _came_from(versions: list[VersionInfo], origin: str) -> bool:
    return any(v.origin == origin for v in versions)


def _conflicts(ws: Workspace, documents: list[dict[str, Any]], origin: str, file: str) -> dict[str, Issue]:
    """The stored workflows of the documents' names that no version of came from ``origin``, each as an issue."""
    found = {}
    for doc in documents:
        try:
            versions = list_versions(ws.db, str(doc.get("name")))
        except NotFound:
            continue
        if not _came_from(versions, origin):
            found[str(doc.get("name"))] = Issue(
                "/name", f"workflow {doc.get('name')!r} is stored already (version {versions[-1].version}) and came"
                f" from {_describe(versions[-1].origin)}, not from {file}",
                "import with --replace to store this file's workflow as its next version, or with --name PREFIX to"
                " name this file's workflows apart")
    return found


def _left_behind(ws: Workspace, documents: list[dict[str, Any]], origin: str) -> list[str]:
    """Stored workflows that came from ``origin`` before and that it no longer gives (a job removed or renamed)."""
    names = {d.get("name") for d in documents}
    return [w.name for w in list_workflows(ws.db) if w.name not in names and _came_from(list_versions(ws.db, w.name),
                                                                                         origin)]


def import_converted(
    ws: Workspace, file: str, source: str, *, message: str, as_json: bool, output: str | None,
    name: str | None, timezone: str | None, several_files: bool, replace: bool = False,
    user_column: bool | None = None, content: Content | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Convert ``file`` from ``source`` and store (or write) it; returns (``--json`` entries, ok).

    ``replace`` lets a crontab's workflows become new versions of stored
    workflows of the same names that came from elsewhere; ``user_column``
    says whether the crontab is a system one (None: recognised). ``content``
    is the file's, read (and recognised) already: it is not read or parsed
    again, and each workflow it gives is validated once, here.
    """
    if content is None:
        try:
            content = Content(Path(file).read_bytes(), file)
        except OSError as exc:
            err.print(f"[red]error:[/] cannot read {escape(file)}: {escape(exc.strerror or str(exc))}; nothing stored")
            return [], False
    zone = timezone or local_zone()
    try:
        conversion = convert(content, source, filename=file, name=name, timezone=zone, user_column=user_column)
    except ConversionError as exc:
        render.print_issues(err, exc.issues)
        what = FORMAT_TITLES.get(source, "a known format") if source != "auto" else "a known format"
        err.print(f"[red]error:[/] {escape(file)} could not be converted from {escape(what)}; nothing stored")
        return [], False
    if not as_json and conversion.format != "taskloom":
        print_report(conversion, file)
        if conversion.format == "crontab":
            why = "given with --timezone" if timezone else "this machine's, as cron did; --timezone to change"
            out.print(f"  [dim]schedules are read in {escape(zone or 'UTC')} ({why}) unless CRON_TZ says"
                      " otherwise[/]")
    # each workflow is validated once: a valid one is stored as checked here (save does not validate it again)
    vetted = [ws.validate(doc) for doc in conversion.documents]
    checked = [(doc, issues) for doc, (_, issues) in zip(conversion.documents, vetted)]
    if output:
        if names_one_file(output) and len(conversion.documents) > 1:
            err.print(f"[red]error:[/] {escape(file)} gives {len(conversion.documents)} workflows and -o"
                      f" {escape(output)} names one file: give a folder (-o {escape(output[:-5] or 'out')}/) to write"
                      " one NAME.json per workflow; nothing written")
            return [], False
        try:
            written = _write(conversion.documents, output, several_files)
        except OSError as exc:
            err.print(f"[red]error:[/] cannot write {escape(output)}: {escape(exc.strerror or str(exc))}")
            return [], False
        entries = []
        for (doc, issues), where in zip(checked, written):
            entries.append(_entry(file, conversion, doc, issues, output=where))
            if not as_json:
                state = "valid" if not issues else f"{len(issues)} problem(s) to fix before importing it"
                out.print(f"wrote [bold]{escape(str(doc.get('name')))}[/] to {escape(where)} ({state})")
                render.print_issues(out, issues)
        return entries, True
    if any(issues for _, issues in checked):
        for doc, issues in checked:
            if issues:
                render.print_issues(err, issues)
                err.print(f"[red]{escape(str(doc.get('name')))}:[/] {len(issues)} problem(s)")
        err.print(f"[red]error:[/] {escape(file)}: nothing stored. Replace what the problems name, or write the"
                  f" converted workflow with -o FILE.json, fix it there and import that file")
        return [_entry(file, conversion, doc, issues) for doc, issues in checked], False
    note = message if message or conversion.format == "taskloom" else (
        f"converted from {FORMAT_TITLES[conversion.format]}: {Path(file).name}")
    entries = []
    origin = f"{conversion.format}:{os.path.abspath(file)}"
    conflicts: dict[str, Issue] = {}
    try:
        with write_txn(ws.db):  # one transaction: the check holds for what is stored
            if conversion.format == "crontab" and not replace:
                conflicts = _conflicts(ws, conversion.documents, origin, file)
            if conflicts:
                raise UserError(f"{file}: {len(conflicts)} of its workflows would replace workflows stored from"
                                " elsewhere", list(conflicts.values()))
            folder = os.path.dirname(os.path.abspath(file))
            saved = [(doc, *ws.save(valid, message=note, origin=origin, folder=folder))
                     for doc, (valid, _) in zip(conversion.documents, vetted)]
            for _, info, created in saved:
                if created:
                    ws.audit("import", f"workflow {info.workflow}", workflow=info.workflow, version=info.version,
                             detail=f"{file} ({conversion.format})")
            behind = _left_behind(ws, conversion.documents, origin) if conversion.format == "crontab" else []
    except UserError as exc:
        render.print_issues(err, exc.issues)
        err.print(f"[red]error:[/] {escape(str(exc))}; nothing stored")
        if conflicts:
            return [_entry(file, conversion, doc, [conflicts[doc["name"]]] if doc.get("name") in conflicts else [])
                    for doc, _ in checked], False
        return [], False
    for doc, info, created in saved:
        entries.append(_entry(file, conversion, doc, [], version=info.version, created=created))
        if not as_json:
            verb = "imported" if created else "unchanged,"
            source = "" if conversion.format == "taskloom" else f", from {FORMAT_TITLES[conversion.format]}"
            out.print(f"{verb} [bold]{escape(info.workflow)}[/] version {info.version}  ({escape(file)}{source})")
    for gone in behind if not as_json else []:
        out.print(f"  [yellow]![/] {escape(gone)} came from {escape(file)} before and is not in it now (a job removed"
                  f" or renamed); it stays stored and scheduled: 'taskloom pause {escape(gone)}', or delete it on the"
                  " Workflows page")
    return entries, True

