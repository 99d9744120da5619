"""Designer: draw a workflow on a canvas, edit its tasks, edges, triggers and settings, save versions.

The canvas is streamlit-flow (React Flow). The document in session state is
the source of truth; the canvas shows it (``taskloom.ui.web.designer.flowstate``) and every
change the browser reports (moves, connections, deletions, clicks) is applied
back to it. Validation runs on every rerun. The page never runs tasks:
"Run now" queues a run for the scheduler. Save, Run now and Import show only
to a role that allows them, and their callbacks check the role again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit_flow import streamlit_flow
from streamlit_flow.layouts import ManualLayout
from streamlit_flow.state import StreamlitFlowState

from taskloom.core.model import canonical_json
from taskloom.core.schema import WORKFLOW_SCHEMA
from taskloom.core.validation import validate_document
from taskloom.storage.scheduling import webhook_token
from taskloom.storage.secrets import SecretStore
from taskloom.storage.workflows import list_workflows
from taskloom.storage.store import UserError
from taskloom.ui.web.designer import alerts_panel, docops, flowstate, forms, importing, palette, session, triggers_panel
from taskloom.ui.web.designer.session import BASE, DOC, FLOW_KEY, LOADED, OPEN, QP_SEEN, REV, SELECTED, SIG
from taskloom.ui.localzone import local_zone
from taskloom.core.access import Action
from taskloom.ui.web.auth import allowed, authorize
from taskloom.ui.web.state import flash, show_flashes, workspace

ws = workspace()
registry = ws.registry
S = st.session_state

TASK_META = ("title", "description", "retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout", "join")
_TASK_PROPS = WORKFLOW_SCHEMA["$defs"]["task"]["properties"]
META_SPECS = forms.field_specs({"properties": {k: _TASK_PROPS[k] for k in TASK_META}})
_TOP = WORKFLOW_SCHEMA["properties"]
TOP_SPECS = forms.field_specs(
    {"required": ["name"], "properties": {k: _TOP[k] for k in ("name", "title", "description", "params")}}
)
SETTINGS_SPECS = forms.field_specs(WORKFLOW_SCHEMA["$defs"]["settings"], ("settings",))
UPLOAD_ISSUES = "designer_upload_issues"
IMPORT_REPORT = "designer_import_report"
IMPORT_FORMAT = "designer_import_format"


class _Plain(dict):
    """A node/edge dict that streamlit_flow() can serialise (it calls ``asdict()``)."""

    def asdict(self) -> dict[str, Any]:
        return dict(self)


def _secret_names() -> list[str]:
    try:
        return SecretStore(ws.db, ws.home).names()
    except Exception:  # a store without the table yet, or a locked database: no picker, not a crash
        return []


# -- opening -------------------------------------------------------------------

def _sync_query_param() -> None:
    loaded = S.get(LOADED)
    name = loaded[0] if loaded else None
    if st.query_params.get("workflow") != name:
        if name:
            st.query_params["workflow"] = name
        elif "workflow" in st.query_params:
            del st.query_params["workflow"]
    S[QP_SEEN] = name


requested = S.pop(OPEN, None)
if requested:
    session.load_stored(ws, str(requested))
else:
    wanted = st.query_params.get("workflow")
    if wanted and wanted != S.get(QP_SEEN):
        loaded = S.get(LOADED)
        if not (loaded and loaded[0] == wanted and S.get(DOC) is not None):
            session.load_stored(ws, wanted)
if S.get(DOC) is None:
    session.start_new(ws)
_sync_query_param()

# -- what the canvas sent ------------------------------------------------------

CANVAS_ERRORS = "designer_canvas_errors"
update = session.apply_flow_value()
if update is not None:
    if update.errors:
        # shown until the document changes: the browser's echo of the corrected graph reruns the page at once
        S[CANVAS_ERRORS] = (update.errors, canonical_json(S[DOC]))
    for message in update.notes:
        st.toast(message)

doc: dict[str, Any] = S[DOC]
issues = validate_document(doc, registry)
unsaved = session.is_unsaved()

# -- callbacks -----------------------------------------------------------------


def _add_task(type_name: str) -> None:
    current = flowstate.freeze_positions(session.get_doc())  # the others must not move
    position = flowstate.free_position(flowstate.display_positions(current).values())
    new_doc, task_id = docops.add_task(current, type_name, registry, position)
    session.set_doc(new_doc)
    S[SELECTED] = task_id
    session.force_push()


def _auto_layout() -> None:
    session.set_doc(flowstate.auto_layout(session.get_doc()))
    session.force_push()


def _save() -> None:
    current = session.get_doc()
    name = str(current.get("name", ""))
    acting = authorize("save", f"workflow {name}", workflow=name)
    if acting is None:
        return
    message = str(S.get("designer_save_msg") or "").strip()
    try:
        info, created = acting.save(current, message=message, origin="designer")
        acting.audit("save", f"workflow {name}", workflow=name, version=info.version,
                     detail=message if created else "unchanged")
    except UserError as exc:
        acting.audit("save", f"workflow {name}", workflow=name, result="failed", detail=str(exc))
        count = len(exc.issues)
        flash(f"not saved: {exc}" + (f"; {count} problem(s) are listed under the canvas" if count else ""), "error")
        return
    except Exception as exc:  # the store refused (locked database, disk full...)
        flash(f"not saved: {exc}", "error")
        return
    S[BASE] = canonical_json(current)
    S[LOADED] = (current["name"], info.version)
    S["designer_save_msg"] = ""
    if created:
        flash(f"saved '{current['name']}' as version {info.version}")
    else:
        flash(f"no changes: version {info.version} of '{current['name']}' is current", "info")


def _run_now() -> None:
    loaded = S.get(LOADED)
    if not loaded:
        flash("save the workflow first: a run uses a stored version", "warning")
        return
    name = loaded[0]
    acting = authorize("trigger", f"workflow {name}", workflow=name, version=loaded[1])
    if acting is None:
        return
    try:
        target = acting.target(name)
        run_id, _ = acting.start_run(target, {}, from_text=False, trigger="manual", started_by=acting.acting().name)
    except UserError as exc:
        flash(f"cannot start a run: {exc}", "error")
        return
    acting.audit("trigger", f"run {run_id}", workflow=name, version=target.version)
    note = " (unsaved changes are not in it)" if session.is_unsaved() else ""
    flash(f"run {run_id} queued for '{name}' version {loaded[1]}{note}; the scheduler picks it up")


def _open_stored() -> None:
    name = S.get("designer_open_pick")
    if name:
        session.load_stored(ws, name)


def _new_workflow() -> None:
    session.start_new(ws)


def _uploaded(key: str) -> None:
    file = S.get(key)
    if file is None:
        return
    source = str(S.get(IMPORT_FORMAT) or "auto")
    result = importing.load_upload(file.getvalue(), file.name, source, timezone=local_zone())
    if result.problems:
        S[UPLOAD_ISSUES] = (file.name, result.problems)
        what = "converted" if result.format != "taskloom" else "loaded"
        flash(f"{file.name} was not {what}: {len(result.problems)} problem(s), listed under the upload", "error")
        return
    S.pop(UPLOAD_ISSUES, None)
    if result.format == "taskloom":
        S.pop(IMPORT_REPORT, None)
    else:
        S[IMPORT_REPORT] = result
    _open_document(result.documents[0], file.name, result)


def _open_document(doc_in: dict[str, Any], file_name: str, result: importing.Loaded | None = None) -> None:
    base, loaded = session.stored_version(ws, str(doc_in.get("name")))
    session.replace_doc(doc_in, base, loaded)
    found = validate_document(doc_in, registry)
    converted = f" (converted from {importing.FORMAT_LABELS[result.format]})" if result and result.report else ""
    if found:
        flash(f"loaded {file_name}{converted} with {len(found)} problem(s) (listed under the canvas); nothing is "
              "stored until you save", "warning")
    else:
        flash(f"loaded {file_name}{converted}; nothing is stored until you save")


def _open_converted(index: int) -> None:
    result = S.get(IMPORT_REPORT)
    if result is not None and 0 <= index < len(result.documents):
        _open_document(result.documents[index], result.file, result)


def _dismiss_report() -> None:
    S.pop(IMPORT_REPORT, None)


def _select(key: str) -> None:
    S[SELECTED] = S.get(key) or None


def _rename(old: str, key: str) -> None:
    new = str(S.get(key) or "").strip()
    try:
        session.set_doc(docops.rename_task(session.get_doc(), old, new))
    except ValueError as exc:
        S[key + ":err"] = str(exc)
        return
    S.pop(key + ":err", None)
    if S.get(SELECTED) == old:
        S[SELECTED] = new


def _delete_task(task_id: str) -> None:
    session.set_doc(docops.delete_task(session.get_doc(), task_id))
    S[SELECTED] = None


def _set_on(edge_key: str, key: str) -> None:
    session.set_doc(docops.set_edge_condition(session.get_doc(), edge_key, S[key]))


def _delete_edge(edge_key: str) -> None:
    session.set_doc(docops.delete_edge(session.get_doc(), edge_key))
    S[SELECTED] = None


def _set_top(path: tuple[str, ...], action: str, value: Any) -> None:
    session.set_doc(forms.apply_change(session.get_doc(), path, action, value))


# -- header and toolbar ----------------------------------------------------------

# Messages go into one container: a varying number of elements before the canvas would move it in the
# page, and Streamlit would mount a new canvas (the browser re-sends its state, the view is fitted again).
with st.container():
    show_flashes()
    if S.get(CANVAS_ERRORS):
        errors, at_doc = S[CANVAS_ERRORS]
        if canonical_json(S[DOC]) == at_doc:
            for message in errors:
                st.error(message)
        else:
            del S[CANVAS_ERRORS]
stored = [w.name for w in list_workflows(ws.db)]
loaded = S.get(LOADED)

top = st.columns([3, 1, 1], vertical_alignment="bottom")
if stored:
    top[0].selectbox(
        "Stored workflows", stored, key="designer_open_pick",
        index=stored.index(loaded[0]) if loaded and loaded[0] in stored else 0,
    )
    top[1].button("Open", key="designer_open_btn", on_click=_open_stored, width="stretch")
else:
    top[0].caption("No stored workflows yet.")
top[2].button("New workflow", key="designer_new", on_click=_new_workflow, width="stretch")

title = doc.get("title") if isinstance(doc.get("title"), str) and doc.get("title") else ""
status = f"version {loaded[1]} stored" if loaded else "not saved yet"
st.markdown(f"### {flowstate.md_escape(doc.get('name', ''))}" + (f" — {flowstate.md_escape(title)}" if title else ""))
if unsaved:
    st.markdown(f":orange[● unsaved changes] · {status}")
else:
    st.markdown(f":green[✓ saved] · {status}")

bar = st.columns([3, 1, 1, 1, 1], vertical_alignment="bottom")
if allowed(Action.SAVE):  # a role that may not save or run sees no button for it
    bar[0].text_input("Version message", key="designer_save_msg", placeholder="what changed (optional)")
    bar[1].button("Save", key="designer_save", type="primary", on_click=_save, width="stretch")
else:
    bar[0].caption("Read only: your role may look and export, not save (an editor or admin saves).")
if allowed(Action.TRIGGER):
    bar[2].button("Run now", key="designer_run", on_click=_run_now, disabled=not loaded, width="stretch",
                  help="Queue a run of the stored version; the scheduler runs it")
bar[3].button("Auto layout", key="designer_layout", on_click=_auto_layout, width="stretch")
bar[4].download_button(
    "Export JSON", data=canonical_json(doc), file_name=f"{doc.get('name') or 'workflow'}.json",
    mime="application/json", key="designer_export", on_click="ignore", width="stretch",
)
report = S.get(IMPORT_REPORT)
if allowed(Action.SAVE):  # loading a file into the canvas is the first step of an import
    with st.expander("Import a workflow file", expanded=bool(report or S.get(UPLOAD_ISSUES))):
        upload_key = f"{session.prefix()}:upload"
        st.selectbox("Format", list(importing.FORMAT_LABELS), key=IMPORT_FORMAT,
                     format_func=importing.FORMAT_LABELS.__getitem__,
                     help="A Taskloom workflow, an Azure Logic Apps definition (or ARM template), an n8n export or a "
                          "crontab; converted files show what each step became")
        st.file_uploader("Workflow file", key=upload_key, on_change=_uploaded, args=(upload_key,))
        bad = S.get(UPLOAD_ISSUES)
        if bad:
            st.error(f"{bad[0]} was not loaded:")
            for issue in bad[1]:
                hint = f" — _{flowstate.md_escape(issue.hint)}_" if issue.hint else ""
                st.markdown(f"- `{issue.path or '/'}` {flowstate.md_escape(issue.message)}{hint}")
        if report is not None:
            importing.render_report(report, str(doc.get("name")), _open_converted, _dismiss_report, "designer_import")

# -- palette (sidebar), canvas, side panel ---------------------------------------------------

with st.sidebar:
    palette.render_palette(registry, _add_task)

middle, right = st.columns([3, 1.45])

with middle:
    flow = flowstate.doc_to_flow(doc, issues, registry)
    signature = flowstate.flow_signature(flow)
    raw = S.get(FLOW_KEY)
    # the browser shows something else than the document (a refused edge, a node it should not have made):
    # send the graph again even though the document did not change
    differs = update is not None and isinstance(raw, dict) and not flowstate.same_structure(raw, flow)
    if signature != S.get(SIG) or S.get(REV) is None or differs:
        S[REV] = session.next_revision(raw.get("timestamp") if isinstance(raw, dict) else None)
        S[SIG] = signature
    stamped = flowstate.stamp(flow, S[REV])
    streamlit_flow(
        FLOW_KEY,
        StreamlitFlowState(
            nodes=[_Plain(n) for n in stamped["nodes"]],
            edges=[_Plain(e) for e in stamped["edges"]],
            timestamp=S[REV],
        ),
        height=620,
        fit_view=True,
        show_controls=True,
        show_minimap=len(flow["nodes"]) > 25,
        allow_new_edges=True,
        layout=ManualLayout(),
        get_node_on_click=True,
        get_edge_on_click=True,
        enable_pane_menu=False,
        enable_node_menu=True,
        enable_edge_menu=True,
        hide_watermark=True,
    )
    st.caption(
        "Drag from a node's right handle to another node to connect them; right-click a node or an edge to delete "
        "it; click one to edit it. Edges: success green · failure red · always grey · true blue · false orange."
    )
    if issues:
        st.error(f"{len(issues)} problem{'s' if len(issues) != 1 else ''}: this workflow cannot be saved yet")
        lines = []
        for issue in issues:
            hint = f" — _{flowstate.md_escape(issue.hint)}_" if issue.hint else ""
            path = (issue.path or "/").replace("`", "'")
            lines.append(f"- `{path}` {flowstate.md_escape(issue.message)}{hint}")
        st.markdown("\n".join(lines))
    else:
        st.success("Valid: no problems found")


# -- inspector ---------------------------------------------------------------------

def _inspector() -> None:
    selected = S.get(SELECTED)
    tasks = doc.get("tasks", [])
    keys = docops.edge_keys(doc)
    task_ids = [str(t.get("id")) for t in tasks]
    if selected is not None and selected not in task_ids and selected not in keys:
        selected = S[SELECTED] = None
    options = ["", *task_ids, *keys]
    S["designer_pick"] = selected or ""
    st.selectbox(
        "Selected", options, key="designer_pick", on_change=_select, args=("designer_pick",),
        format_func=lambda o: "(nothing — click a node or an edge)" if o == "" else (
            f"edge {o.replace('->', ' → ')}" if "->" in o else f"task {o}"),
    )
    if not selected:
        st.caption("Click a node or an edge on the canvas (or pick one above) to edit it.")
        return
    prefix = session.prefix()
    if "->" in selected:
        index = keys.index(selected)
        edge = doc["edges"][index]
        choices = docops.edge_conditions(doc, str(edge.get("from")))
        current = edge.get("on", "success")
        if current not in choices:
            choices.append(current)
        key = f"{prefix}:e:{selected}:on"
        st.markdown(f"**Edge** {flowstate.md_escape(edge.get('from'))} → {flowstate.md_escape(edge.get('to'))}")
        st.selectbox("Condition", choices, index=choices.index(current), key=key, on_change=_set_on,
                     args=(selected, key), help="When the downstream task may run: success, failure, always, "
                     "or true/false after a condition task")
        for issue in flowstate.issues_by_place(issues)[1].get(index, []):
            st.warning(f"{issue.path}: {issue.message}")
        st.button("Delete edge", key=f"{prefix}:e:{selected}:delete", on_click=_delete_edge, args=(selected,))
        return
    index = task_ids.index(selected)
    task = tasks[index]
    task_type = registry.get(str(task.get("type")))
    base = f"{prefix}:t{index}:{selected}"
    icon = palette.icon_for(task_type.icon if task_type else "")
    st.markdown(f"**{icon} {flowstate.md_escape(task_type.title if task_type else task.get('type'))}**")
    if task_type:
        st.caption(task_type.description)
    id_key = f"{base}:id"
    st.text_input("Task id *", value=selected, key=id_key, on_change=_rename, args=(selected, id_key),
                  help="Unique in the workflow; edges follow a rename (templates that read tasks.ID do not)")
    if S.get(id_key + ":err"):
        st.error(S[id_key + ":err"])

    def set_meta(path: tuple[str, ...], action: str, value: Any, task_id: str = selected) -> None:
        current = session.get_doc()
        i = docops.task_index_of(current, task_id)
        if i is not None:
            current = dict(current, tasks=list(current["tasks"]))
            current["tasks"][i] = forms.apply_change(current["tasks"][i], path, action, value)
            session.set_doc(current)

    def set_param(path: tuple[str, ...], action: str, value: Any) -> None:
        set_meta(("params", *path), action, value)

    forms.render_fields(META_SPECS, task, f"{base}:m", set_meta)
    st.markdown("**Parameters**")
    params = task.get("params", {})
    if task_type is None:
        raw_spec = forms.FieldSpec("params", ("params",), "Parameters", "Unknown task type: edit the params as JSON",
                                   "json")
        forms.render_fields([raw_spec], task, f"{base}:raw", set_meta)
    elif not task_type.params_schema.get("properties"):
        st.caption("This task type has no parameters.")
    else:
        offered = [n for n in registry.names() if not registry[n].placeholder]
        specs = forms.field_specs(task_type.params_schema, type_names=offered,
                                  nested_task_param=task_type.nested_task_param)
        forms.render_fields(specs, params if isinstance(params, dict) else {}, f"{base}:p", set_param,
                            secrets=_secret_names())
    for issue in flowstate.issues_by_place(issues)[0].get(index, []):
        st.warning(f"{issue.path}: {issue.message}" + (f" ({issue.hint})" if issue.hint else ""))
    st.button("Delete task", key=f"{base}:delete", on_click=_delete_task, args=(selected,))


with right:
    tab_inspect, tab_triggers, tab_workflow = st.tabs(["Inspector", "Triggers", "Workflow"])
    with tab_inspect:
        _inspector()
    with tab_triggers:
        name = str(doc.get("name", ""))
        triggers_panel.render_triggers(
            session.get_doc, session.set_doc, f"{session.prefix()}:trg",
            secrets=_secret_names(),
            # a webhook token starts runs: shown only to whoever may start them
            token_of=(lambda trigger_id: webhook_token(ws.db, name, trigger_id)) if allowed(Action.TRIGGER)
            else (lambda trigger_id: None),
            saved=bool(loaded and loaded[0] == name),
        )
    with tab_workflow:
        forms.render_fields(TOP_SPECS, doc, f"{session.prefix()}:wf", _set_top)
        st.markdown("**Settings**")
        forms.render_fields(SETTINGS_SPECS, doc, f"{session.prefix()}:wf", _set_top)
        st.markdown("**Alerts**")
        alerts_panel.render_alerts(session.get_doc, session.set_doc, f"{session.prefix()}:al", issues=issues)
