"""Workflows page: the stored workflows and what can be done with them.

* **Workflows**: a table (name, title, version, triggers, paused, next firing
  in UTC and local time, last run) and, per workflow, open in the designer,
  run now (queues a run for the scheduler), pause/resume, duplicate, delete
  (after a confirmation tick; runs are kept).
* **Import & export**: upload or paste a document (checked before anything is
  stored; problems are listed with their JSON paths); download any version's
  canonical JSON as ``NAME-vN.json``.
* **History**: the versions of a workflow, a structured diff between any two
  (:mod:`taskloom.core.diff`), and restore (a new version with an old content).
* **New from template**: the examples in ``assets/examples``.

The page never runs tasks: "run now" records a queued run that the
scheduler picks up on its next look (at the latest after its safety poll).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import streamlit as st

from taskloom.core.diff import FieldChange, Item, WorkflowDiff, diff_documents, format_value, text_diff
from taskloom.core.firing import TIME_TRIGGER_TYPES, FiringError, next_firings
from taskloom.core.importers import FORMAT_TITLES, sniff
from taskloom.core.model import Workflow, canonical_json
from taskloom.storage.db import write_txn
from taskloom.storage.runs import list_runs
from taskloom.storage.scheduling import active_runs, trigger_state, wake_scheduler
from taskloom.storage.workflows import (
    NotFound,
    VersionInfo,
    WorkflowInfo,
    delete_workflow,
    get_document,
    get_workflow,
    list_versions,
    list_workflows,
    set_paused,
)
from taskloom.storage.store import Target, UserError, Workspace
from taskloom.core.access import Action
from taskloom.core.errors import UserMistake
from taskloom.ui.web.auth import allowed, authorize
from taskloom.ui.web.state import flash, show_error, show_flashes, workspace

EXAMPLES = Path(__file__).resolve().parents[4] / "assets" / "examples"
DESIGNER_PAGE = "views/designer.py"  # relative to taskloom/ui/web/app.py, as st.switch_page resolves it


# -- small helpers -------------------------------------------------------------


def _code(text: Any) -> str:
    """``text`` as a Markdown code span, so user content is never read as Markdown."""
    text = str(text)
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _local_zone() -> tzinfo | None:
    """The browser's time zone when Streamlit knows it, else None (the server's zone)."""
    try:
        name = st.context.timezone
    except Exception:  # noqa: BLE001 - no browser context (tests, old clients)
        name = None
    if name:
        try:
            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - an unknown zone name from the browser
            return None
    return None


def _utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _local(ts: float | None, zone: tzinfo | None) -> str:
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def _issue_rows(exc: UserError) -> list[dict[str, str]]:
    return [{"path": i.path or "(document)", "problem": i.message, "hint": i.hint} for i in exc.issues]


def _store_target(ws: Workspace, name: str) -> Target:
    """The stored workflow ``name`` (never a file of that name in the working directory)."""
    try:
        return ws.stored_target(name)
    except NotFound as exc:
        raise UserError(str(exc)) from None


def create_workflow(ws: Workspace, doc: dict[str, Any], *, message: str) -> VersionInfo:
    """Store ``doc`` as version 1 of a new workflow; UserError if its name is taken or it is invalid."""
    with write_txn(ws.db):  # the check and the insert in one transaction: no race with another save
        try:
            get_workflow(ws.db, doc.get("name", ""))
        except NotFound:
            pass
        else:
            raise UserError(f"a workflow named {doc['name']!r} already exists; choose another name")
        info, _ = ws.save(doc, message=message, origin="designer")
    return info


def free_name(ws: Workspace, name: str, taken: set[str] | None = None) -> str:
    """``name`` when no workflow has it, else the first free ``name-2``, ``name-3``, … (at most 64 characters)."""
    if taken is None:
        taken = {w.name for w in list_workflows(ws.db)}
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name[: 63 - len(str(n))]}-{n}"
    return candidate


# -- the table -------------------------------------------------------------------


def next_firing(ws: Workspace, name: str, workflow: Workflow, now: float) -> tuple[float | None, str]:
    """The next instant a time trigger of ``workflow`` fires, and the trigger's id (or a problem)."""
    best: tuple[float, str] | None = None
    problem = ""
    for trigger in workflow.triggers:
        if trigger.type not in TIME_TRIGGER_TYPES:
            continue
        state = trigger_state(ws.db, name, trigger.id)
        after = now if state is None or state.last_instant is None else max(now, state.last_instant)
        try:
            upcoming = next_firings(trigger, after, 1)
        except FiringError as exc:
            problem = str(exc)
            continue
        if upcoming and (best is None or upcoming[0].instant < best[0]):
            best = (upcoming[0].instant, trigger.id)
    if best is None:
        return None, problem
    return best


def _trigger_text(workflow: Workflow) -> str:
    parts = []
    for t in workflow.triggers:
        off = " off" if t.config.get("enabled", True) is False else ""
        parts.append(f"{t.id} ({t.type}{off})")
    return ", ".join(parts) or "manual only"


def workflow_rows(ws: Workspace, infos: Iterable[WorkflowInfo], now: float, zone: tzinfo | None) -> list[dict[str, Any]]:
    rows = []
    for info in infos:
        try:
            _, doc = get_document(ws.db, info.name)
            workflow = Workflow.from_document(doc)
        except (NotFound, KeyError, TypeError, ValueError) as exc:
            rows.append({"name": info.name, "title": info.title, "version": info.version, "paused": info.paused,
                         "last run": "", "next firing (UTC)": "", "next firing (local)": "",
                         "triggers": f"cannot read: {exc}"})
            continue
        instant, which = next_firing(ws, info.name, workflow, now)
        if info.paused:
            utc_text = local_text = "paused"
        elif instant is None:
            utc_text = local_text = f"cannot fire: {which}" if which else ""  # "" when no time trigger
        else:
            utc_text, local_text = f"{_utc(instant)} · {which}", _local(instant, zone)
        last = list_runs(ws.db, info.name, limit=1)
        rows.append({
            "name": info.name,
            "title": info.title,
            "version": info.version,
            "paused": info.paused,
            "last run": f"#{last[0].id} {last[0].status}" if last else "never",
            "next firing (UTC)": utc_text,
            "next firing (local)": local_text,
            "triggers": _trigger_text(workflow),
        })
    return rows


def _run_now(name: str) -> None:
    ws = authorize("trigger", f"workflow {name}", workflow=name)
    if ws is None:
        return
    try:
        target = _store_target(ws, name)
        run_id, _ = ws.start_run(target, {}, from_text=False, trigger="manual", started_by=ws.acting().name)
    except UserError as exc:
        flash(f"{name}: cannot queue a run: {exc}", "error")
        return
    ws.audit("trigger", f"run {run_id}", workflow=name, version=target.version)
    if wake_scheduler(ws.db):
        flash(f"run {run_id} of {name} queued; the scheduler is starting it")
    else:
        flash(f"run {run_id} of {name} queued; no scheduler is running here: start one with taskloom serve", "warning")


def _toggle_pause(name: str, paused: bool) -> None:
    action = "pause" if paused else "resume"
    ws = authorize(action, f"workflow {name}", workflow=name)
    if ws is None:
        return
    try:
        with write_txn(ws.db):
            set_paused(ws.db, name, paused)
            ws.audit(action, f"workflow {name}", workflow=name)
    except NotFound as exc:
        show_error(exc)
        return
    flash(f"{name} {'paused: its triggers do not fire' if paused else 'resumed: its triggers fire again'}")


def _duplicate(name: str) -> None:
    ws = authorize("save", f"workflow {name}", workflow=name)
    if ws is None:
        return
    new = (st.session_state.get(f"wf_dup_name_{name}") or "").strip() or free_name(ws, f"{name}-copy")
    try:
        info, doc = get_document(ws.db, name)
        copy = {**doc, "name": new}
        created = create_workflow(ws, copy, message=f"duplicated from {name} version {info.version}")
    except UserMistake as exc:  # no such workflow, or the copy cannot be stored
        show_error(exc)
        return
    ws.audit("save", f"workflow {created.workflow}", workflow=created.workflow, version=created.version,
             detail=f"duplicated from {name} version {info.version}")
    st.session_state[f"wf_dup_name_{name}"] = ""
    flash(f"{name} duplicated as {created.workflow} (version 1)")


def _delete(name: str) -> None:
    ws = authorize("delete", f"workflow {name}", workflow=name)
    if ws is None:
        return
    if not st.session_state.get(f"wf_del_confirm_{name}"):
        flash(f"tick 'yes, delete {name}' first", "warning")
        return
    db = ws.db
    active = active_runs(db, name)
    try:
        removed = delete_workflow(db, name)
    except NotFound as exc:
        show_error(exc)
        return
    ws.audit("delete", f"workflow {name}", workflow=name, detail=f"{removed} version(s)")
    still = f" ({len(active)} queued or running run(s) go on to their end)" if active else ""
    flash(f"deleted {name} and its {removed} version(s); its runs are kept{still}")


def render_table(ws: Workspace) -> None:
    infos = list_workflows(ws.db)
    if not infos:
        st.info("No workflows yet: import one, start from a template, or draw one in the Designer.")
        return
    zone = _local_zone()
    now = datetime.now(timezone.utc).timestamp()
    st.dataframe(workflow_rows(ws, infos, now, zone), hide_index=True)
    zone_name = getattr(zone, "key", None) or datetime.now().astimezone().tzname()
    st.caption(f"Local times are in {zone_name}. Runs started here are queued; the scheduler runs them.")

    taken = {i.name for i in infos}
    may_trigger, may_pause, may_save = allowed(Action.TRIGGER), allowed(Action.PAUSE), allowed(Action.SAVE)
    for info in infos:
        name = info.name
        with st.container(border=True):
            label, open_col, run_col, pause_col, more_col = st.columns([4, 1.3, 1.3, 1.3, 1.6])
            label.markdown(f"**{_code(name)}** · version {info.version}" + (" · paused" if info.paused else ""))
            if info.title:
                label.caption(info.title)
            if open_col.button("Open", key=f"wf_open_{name}", help="Edit it in the Designer"):
                st.session_state["designer_open"] = name
                st.switch_page(DESIGNER_PAGE)
            if may_trigger:
                run_col.button("Run now", key=f"wf_run_{name}", on_click=_run_now, args=(name,),
                               help="Queue a manual run; the scheduler runs it")
            if may_pause and info.paused:
                pause_col.button("Resume", key=f"wf_pause_{name}", on_click=_toggle_pause, args=(name, False))
            elif may_pause:
                pause_col.button("Pause", key=f"wf_pause_{name}", on_click=_toggle_pause, args=(name, True),
                                 help="Stop firing its triggers (runs started by hand still run)")
            if not may_save:
                continue
            with more_col.popover("Duplicate / delete", key=f"wf_more_{name}"):
                st.text_input("Name of the copy", key=f"wf_dup_name_{name}",
                              placeholder=free_name(ws, f"{name}-copy", taken),
                              help="Left empty, the copy gets the name shown")
                st.button("Duplicate", key=f"wf_dup_{name}", on_click=_duplicate, args=(name,))
                st.divider()
                confirmed = st.checkbox(f"yes, delete {name}", key=f"wf_del_confirm_{name}",
                                        help="Removes the workflow and its versions; its runs stay in Runs")
                st.button("Delete", key=f"wf_del_{name}", type="primary", disabled=not confirmed,
                          on_click=_delete, args=(name,))


# -- import and export -----------------------------------------------------------


def _import(source: str) -> None:
    ws = authorize("import", "upload")
    if ws is None:
        return
    if source == "file":
        uploaded = st.session_state.get("import_file")
        if uploaded is None:
            st.session_state["_import_result"] = {"error": "choose a file to upload first", "issues": []}
            return
        raw: str | bytes = uploaded.getvalue()
        where = uploaded.name
    else:
        raw = st.session_state.get("import_text") or ""
        where = "the pasted JSON"
        if not raw.strip():
            st.session_state["_import_result"] = {"error": "paste a workflow's JSON first", "issues": []}
            return
    message = (st.session_state.get("import_message") or "").strip() or f"imported from {where}"
    try:
        checked = ws.check(raw, source=where)  # validated once: save does not validate it again
        with write_txn(ws.db):
            try:
                before: int | None = get_workflow(ws.db, checked.document["name"]).version
            except NotFound:
                before = None
            info, created = ws.save(checked, message=message, origin=f"upload:{where}")
            ws.audit("import", f"workflow {info.workflow}", workflow=info.workflow, version=info.version,
                     detail=f"from {where}" + ("" if created else "; unchanged"))
    except UserError as exc:
        error = str(exc)
        kind = sniff(raw, where)
        if kind not in (None, "taskloom"):
            error = (f"{where} is {FORMAT_TITLES[kind]}, not a Taskloom workflow: convert it with the Designer's"
                     " Import (it shows what maps and what to replace), or run: taskloom import FILE")
        st.session_state["_import_result"] = {"error": error, "issues": [] if kind not in (None, "taskloom")
                                              else _issue_rows(exc)}
        return
    if before is None:
        text = f"created workflow {info.workflow} (version 1) from {where}"
    elif created:
        text = f"stored {where} as version {info.version} of {info.workflow} (was version {before})"
    else:
        text = f"{info.workflow} unchanged: {where} is identical to version {info.version}"
    st.session_state["_import_result"] = {"ok": text, "new": before is None, "created": created}


def render_import(ws: Workspace) -> None:
    if allowed(Action.SAVE):
        _render_import_form()
    render_export(ws)


def _render_import_form() -> None:
    st.subheader("Import")
    st.caption("A document is checked completely before anything is stored. A new name becomes a new workflow; "
               "an existing name becomes its next version (nothing changes when the content is identical).")
    up, paste = st.columns(2)
    with up:
        st.file_uploader("Upload a workflow file", type=["json"], key="import_file")
        st.button("Import the uploaded file", key="import_file_go", on_click=_import, args=("file",))
    with paste:
        st.text_area("…or paste its JSON", key="import_text", height=180,
                     placeholder='{"format": "taskloom/v1", "name": "my-workflow", "tasks": [...]}')
        st.button("Import the pasted JSON", key="import_text_go", on_click=_import, args=("text",))
    st.text_input("Version message (optional)", key="import_message")
    result = st.session_state.get("_import_result")
    if result:
        if "ok" in result:
            (st.success if result["created"] else st.info)(result["ok"])
        else:
            st.error(f"Nothing was stored: {result['error']}")
            if result["issues"]:
                st.dataframe(result["issues"], hide_index=True)


def render_export(ws: Workspace) -> None:
    st.subheader("Export")
    infos = list_workflows(ws.db)
    if not infos:
        st.caption("Nothing to export yet.")
        return
    names = [i.name for i in infos]
    name = st.selectbox("Workflow", names, key="export_wf")
    versions = list_versions(ws.db, name)
    by_number = {v.version: v for v in versions}
    number = st.selectbox(
        "Version", list(by_number), index=len(versions) - 1, key=f"export_version__{name}",
        format_func=lambda n: " · ".join(x for x in (f"v{n}", _utc(by_number[n].created), by_number[n].message) if x),
    )
    doc = get_document(ws.db, name, number)[1]
    body = canonical_json(doc)
    st.download_button(
        f"Download {name}-v{number}.json", body.encode("utf-8"), file_name=f"{name}-v{number}.json",
        mime="application/json", key="export_download", on_click="ignore",
    )
    with st.expander("Preview"):
        st.code(body, language="json")


# -- history and diff ------------------------------------------------------------


def _change_line(change: FieldChange) -> str:
    path = _code(change.path or "(value)")
    if change.kind == "added":
        return f"{path} set to {_code(format_value(change.new))}"
    if change.kind == "removed":
        return f"{path} removed (was {_code(format_value(change.old))})"
    return f"{path}: {_code(format_value(change.old))} → {_code(format_value(change.new))}"


def _render_changes(changes: Iterable[FieldChange], header: str = "", where: str = "") -> None:
    """Field changes as a Markdown list (under ``header`` when given); long texts also as a line diff."""
    changes = list(changes)
    indent = "    " if header else ""
    lines = [header] if header else []
    texts = []
    for c in changes:
        diff_lines = text_diff(c)
        if diff_lines:
            texts.append((c, diff_lines))
            lines.append(f"{indent}- {_code(c.path)} {c.kind} (line by line below)")
        else:
            lines.append(f"{indent}- {_change_line(c)}")
    st.markdown("\n".join(lines))
    for c, diff_lines in texts:
        st.caption(f"{where}{c.path}, line by line:")
        st.code("\n".join(diff_lines), language="diff")


def _item_text(item: Item, kind: str) -> str:
    value = item.value if isinstance(item.value, dict) else {}
    if kind == "task":
        extra = f" ({value.get('type', '?')})" + (f" · {value['title']}" if isinstance(value.get("title"), str) else "")
    elif kind == "trigger":
        config = {k: v for k, v in value.items() if k not in ("id", "type")}
        extra = f" ({value.get('type', '?')})" + (f" {_code(format_value(config))}" if config else "")
    else:
        extra = f" {_code(format_value(item.value))}"
    return f"{_code(item.key)}{extra}"


def render_diff(diff: WorkflowDiff) -> None:
    if diff.is_empty:
        st.info("The two versions are identical.")
        return
    st.markdown(f"**{diff.summary()}**")
    if diff.layout_only:
        st.caption("Only the layout differs: nothing changes how the workflow runs.")
    if diff.document:
        st.markdown("**Workflow**")
        _render_changes(diff.document)
    for kind, added, removed, changed in (
        ("task", diff.tasks_added, diff.tasks_removed, diff.tasks_changed),
        ("trigger", diff.triggers_added, diff.triggers_removed, diff.triggers_changed),
        ("param", diff.params_added, diff.params_removed, diff.params_changed),
    ):
        if not (added or removed or changed or (kind == "task" and (diff.tasks_moved or diff.task_order_changed))):
            continue
        st.markdown(f"**{kind.capitalize()}s**")
        lines = [f"- **added** {kind} {_item_text(i, kind)}" for i in added]
        lines += [f"- **removed** {kind} {_item_text(i, kind)}" for i in removed]
        if lines:
            st.markdown("\n".join(lines))
        for item in changed:
            _render_changes(item.changes, header=f"- **changed** {kind} {_code(item.key)}:",
                            where=f"{kind} {item.key} · ")
        if kind == "task" and diff.tasks_moved:
            n = len(diff.tasks_moved)
            st.caption(f"{n} task{'s' if n != 1 else ''} moved on the canvas: {', '.join(diff.tasks_moved)}")
        if kind == "task" and diff.task_order_changed:
            st.caption("The order of the tasks in the file changed.")
    if diff.edges_added or diff.edges_removed or diff.edges_changed:
        st.markdown("**Edges**")
        lines = [f"- **added** edge {_code(e)}" for e in diff.edges_added]
        lines += [f"- **removed** edge {_code(e)}" for e in diff.edges_removed]
        lines += [f"- **changed** edge {_code(f'{e.source} → {e.target}')}: on {_code(e.old_on)} → {_code(e.new_on)}"
                  for e in diff.edges_changed]
        st.markdown("\n".join(lines))
    if diff.settings:
        st.markdown("**Settings**")
        _render_changes(diff.settings)
    if diff.other:
        st.markdown("**Other fields**")
        _render_changes(diff.other)


def _restore(name: str) -> None:
    number = st.session_state.get(f"restore_version__{name}")
    ws = authorize("restore", f"workflow {name}", workflow=name, version=number)
    if ws is None or number is None:
        return
    try:
        doc = get_document(ws.db, name, number)[1]
        with write_txn(ws.db):
            info, created = ws.save(doc, message=f"restored version {number}", origin="restore")
            ws.audit("restore", f"workflow {name}", workflow=name, version=info.version,
                     detail=f"version {number}" + ("" if created else "; unchanged"))
    except NotFound as exc:
        show_error(exc)
        return
    except UserError as exc:
        show_error(exc, f"version {number} of {name} cannot be restored")
        return
    if created:
        flash(f"restored version {number} of {name} as version {info.version}")
    else:
        flash(f"{name} unchanged: version {number} has the same content as the current version {info.version}", "info")


def render_history(ws: Workspace) -> None:
    infos = list_workflows(ws.db)
    if not infos:
        st.caption("No workflows yet.")
        return
    name = st.selectbox("Workflow", [i.name for i in infos], key="hist_wf")
    current = next(i.version for i in infos if i.name == name)
    versions = list_versions(ws.db, name)
    st.dataframe(
        [{"version": v.version, "saved (UTC)": _utc(v.created), "message": v.message,
          "current": v.version == current, "document": v.document[:12]} for v in reversed(versions)],
        hide_index=True,
    )
    numbers = [v.version for v in versions]
    if len(numbers) < 2:
        st.caption("Only one version so far: nothing to compare or restore.")
        return

    st.subheader("Compare versions")
    left, right = st.columns(2)
    old = left.selectbox("From", numbers, index=len(numbers) - 2, key=f"diff_old__{name}", format_func=lambda n: f"v{n}")
    new = right.selectbox("To", numbers, index=len(numbers) - 1, key=f"diff_new__{name}", format_func=lambda n: f"v{n}")
    old_doc = get_document(ws.db, name, old)[1]
    new_doc = get_document(ws.db, name, new)[1]
    st.caption(f"Changes from v{old} to v{new}:")
    render_diff(diff_documents(old_doc, new_doc))

    if not allowed(Action.RESTORE):
        return
    st.subheader("Restore")
    older = [n for n in numbers if n != current]
    st.selectbox("Version to restore", older, index=len(older) - 1, key=f"restore_version__{name}",
                 format_func=lambda n: f"v{n}")
    st.caption("Restoring stores the old content as a new version; no version is ever changed or removed.")
    st.button("Restore as a new version", key=f"restore_go__{name}", on_click=_restore, args=(name,))


# -- templates -------------------------------------------------------------------


def load_templates() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            out.append((path.stem, doc))
    return out


def render_templates(ws: Workspace) -> None:
    templates = load_templates()
    if not templates:
        st.caption(f"No templates found in {EXAMPLES}.")
        return
    st.caption("Each template is stored as a new workflow (version 1) and opened in the Designer.")
    columns = st.columns(2)
    for index, (stem, doc) in enumerate(templates):
        with columns[index % 2].container(border=True):
            st.markdown(f"**{doc.get('title') or doc.get('name', stem)}**")
            if doc.get("description"):
                st.caption(str(doc["description"]))
            triggers = ", ".join(
                f"{t.get('id')} ({t.get('type')})" for t in doc.get("triggers", []) if isinstance(t, dict))
            st.caption(f"{len(doc.get('tasks', []))} tasks · triggers: {triggers or 'manual only'}")
            suggested = free_name(ws, str(doc.get("name", stem)))
            if suggested != doc.get("name"):
                st.caption(f"A workflow named {doc.get('name')} exists: this one is stored as {suggested} "
                           "unless you enter another name.")
            if not allowed(Action.SAVE):
                continue
            typed = st.text_input("Name", key=f"tpl_name_{stem}", placeholder=suggested)
            if st.button("Use this template", key=f"tpl_use_{stem}"):
                name = (typed or "").strip() or suggested
                acting = authorize("save", f"workflow {name}", workflow=name)
                if acting is None:
                    show_flashes()
                    continue
                try:
                    created = create_workflow(acting, {**doc, "name": name}, message=f"from template {stem}")
                except UserError as exc:
                    show_error(exc, now=True)
                else:
                    acting.audit("save", f"workflow {name}", workflow=name, version=created.version,
                                 detail=f"from template {stem}")
                    st.session_state["designer_open"] = name
                    flash(f"created {name} from the template {stem}")
                    st.switch_page(DESIGNER_PAGE)


# -- the page --------------------------------------------------------------------


def main() -> None:
    ws = workspace()
    st.title("Workflows")
    show_flashes()
    table, port, history, gallery = st.tabs(["Workflows", "Import & export", "History", "New from template"])
    with table:
        render_table(ws)
    with port:
        render_import(ws)
    with history:
        render_history(ws)
    with gallery:
        render_templates(ws)


main()
