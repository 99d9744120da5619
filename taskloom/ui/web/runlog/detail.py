"""One run: header, actions, its graph coloured by task state, the attempts timeline, a task's attempts and logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from streamlit_flow import streamlit_flow
from streamlit_flow.layouts import ManualLayout
from streamlit_flow.state import StreamlitFlowState

from taskloom.storage.outputs import SPILL_KEY, OutputCodec, is_spilled
from taskloom.storage.runs import RunRecord, attempt_numbers, iso, log_page, request_resume, reused_from
from taskloom.storage.scheduling import wake_scheduler
from taskloom.storage.workflows import document_by_hash
from taskloom.storage.store import UserError, Workspace
from taskloom.core.access import Action
from taskloom.ui.web.auth import allowed, authorize
from taskloom.ui.web.state import flash

from taskloom.ui.web.runlog.style import STATUS_EMOJI, badge, duration, flow_timestamp, log_cell, run_flow, timeline_rows

__all__ = ["SELECTED", "FLOW_KEY", "TASK", "LOG_PAGE", "render_detail", "select_run"]

S = st.session_state
SELECTED = "runs_selected"  # the run shown
FLOW_KEY = "runs_flow"  # streamlit-flow's value (inject {"selectedId": task} in tests)
TASK = "runs_task"  # the task shown (a selectbox; a click on a node sets it)
FLOW_SEEN = "runs_flow_seen"
LOG_CURSOR = "runs_log_cursor"  # None | ("after", id) | ("before", id)
LOG_PAGE = 200
ACTIVE = ("queued", "running")


class _Plain(dict):
    def asdict(self) -> dict[str, Any]:
        return dict(self)


def select_run(run_id: int | None) -> None:
    """Show ``run_id`` (from a callback or before the picker is drawn)."""
    S[SELECTED] = run_id
    S["runs_pick"] = run_id
    S[LOG_CURSOR] = None
    S.pop(TASK, None)
    S.pop(FLOW_KEY, None)
    S.pop(FLOW_SEEN, None)


# -- actions -----------------------------------------------------------------


def _queued(ws: Workspace, new_id: int, what: str) -> None:
    woke = wake_scheduler(ws.db)
    if woke:
        flash(f"{what}: run {new_id} queued; the scheduler runs it")
    else:
        flash(f"{what}: run {new_id} queued, but no scheduler answered; start one with 'taskloom serve'"
              " (or 'taskloom scheduler')", "warning")
    select_run(new_id)


def _run_of(ws: Workspace, run_id: int) -> tuple[str | None, int | None]:
    """The workflow and version of ``run_id`` (for its audit row), or (None, None)."""
    try:
        run = ws.run(run_id)
    except UserError:
        return None, None
    return run.workflow, run.version


def _authorized(ws: Workspace, action: str, run_id: int) -> Workspace | None:
    workflow, version = _run_of(ws, run_id)
    return authorize(action, f"run {run_id}", workflow=workflow, version=version)


def _cancel(ws: Workspace, run_id: int) -> None:
    acting = _authorized(ws, "cancel", run_id)
    if acting is None:
        return
    try:
        outcome = acting.request_cancel(run_id, owner="ui")
    except UserError as exc:
        flash(f"cannot cancel run {run_id}: {exc}", "error")
        return
    workflow, version = _run_of(acting, run_id)
    acting.audit("cancel", f"run {run_id}", workflow=workflow, version=version, detail=outcome)
    if outcome == "requested":
        wake_scheduler(ws.db)
        flash(f"cancel of run {run_id} requested; its runner (the scheduler's) ends it cancelled")
    elif outcome == "cancelled":
        flash(f"run {run_id} cancelled")
    else:
        flash(f"run {run_id} had already ended", "info")
    S[LOG_CURSOR] = None


def _rerun(ws: Workspace, run_id: int, from_task: str | None = None, failed: bool = False) -> None:
    acting = _authorized(ws, "rerun", run_id)
    if acting is None:
        return
    try:
        new_id = acting.rerun(run_id, owner=None, from_task=from_task, failed=failed, started_by=acting.acting().name)
    except UserError as exc:
        flash(f"cannot re-run run {run_id}: {exc}", "error")
        return
    what = (f"re-run of {run_id} from task {from_task}" if from_task else
            f"re-run of the failed tasks of {run_id}" if failed else f"re-run of {run_id}")
    workflow, version = _run_of(acting, run_id)
    acting.audit("rerun", f"run {run_id}", workflow=workflow, version=version, detail=f"{what}: run {new_id}")
    _queued(ws, new_id, what)


def _resume(ws: Workspace, run_id: int) -> None:
    acting = _authorized(ws, "resume run", run_id)
    if acting is None:
        return
    if not request_resume(acting.db, run_id):
        flash(f"run {run_id} is not crashed (any more); nothing to resume", "warning")
        return
    workflow, version = _run_of(acting, run_id)
    acting.audit("resume run", f"run {run_id}", workflow=workflow, version=version)
    _queued(ws, run_id, f"resume of {run_id}")


def _actions(ws: Workspace, run: RunRecord, task: str | None) -> None:
    failed = any(t.status in ("failed", "timed_out", "crashed", "cancelled") for t in run.tasks.values())
    ended = run.status not in ACTIVE
    if not (allowed(Action.CANCEL) or allowed(Action.RERUN)):
        return  # a viewer: nothing to do here
    cols = st.columns(5)
    cols[0].button("Cancel", key="runs_act_cancel", icon=":material/stop_circle:",
                   disabled=run.status not in (*ACTIVE, "crashed"), on_click=_cancel, args=(ws, run.id))
    cols[1].button("Re-run", key="runs_act_rerun", icon=":material/replay:", disabled=not ended,
                   on_click=_rerun, args=(ws, run.id))
    cols[2].button(f"Re-run from {task}" if task else "Re-run from task", key="runs_act_from",
                   icon=":material/fast_forward:", disabled=not ended or task is None,
                   on_click=_rerun, args=(ws, run.id, task))
    cols[3].button("Re-run failed", key="runs_act_failed", icon=":material/restart_alt:",
                   disabled=not ended or not failed, on_click=_rerun, args=(ws, run.id, None, True))
    cols[4].button("Resume", key="runs_act_resume", icon=":material/play_arrow:",
                   disabled=run.status != "crashed", on_click=_resume, args=(ws, run.id),
                   help="put the crashed run back in the queue; the scheduler takes it up where it stopped")


# -- header, graph, timeline -----------------------------------------------------


def _header(run: RunRecord) -> None:
    st.subheader(f"Run {run.id} · {run.workflow}" + (f" v{run.version}" if run.version is not None else ""))
    c = st.columns(5)
    c[0].markdown(f"**Status**  \n{badge(run.status)}")
    c[1].markdown(f"**Trigger**  \n{run.trigger}")
    c[2].markdown(f"**Started**  \n{iso(run.started) or '—'}")
    c[3].markdown(f"**Ended**  \n{iso(run.ended) or '—'}")
    d = duration(run.started, run.ended)
    c[4].markdown(f"**Duration**  \n{'—' if d is None else f'{d} s'}")
    st.caption(f"logical time {iso(run.logical_time)} · created {iso(run.created)} · source {run.source}"
               + (f" · started by {run.started_by}" if run.started_by else "")
               + (f" · params {json.dumps(run.params)}" if run.params else ""))
    if run.parent_run_id is not None:
        st.button(f"↩ re-run of run {run.parent_run_id}", key="runs_parent", on_click=select_run,
                  args=(run.parent_run_id,))
    if run.error:
        st.error(run.error)


def _graph(ws: Workspace, run: RunRecord) -> str | None:
    """Draw the workflow as it ran; returns the task a click selected (None when no new click)."""
    try:
        doc = document_by_hash(ws.db, run.document)
    except Exception as exc:  # a document missing from the store
        st.warning(f"cannot draw the graph: {exc}")
        return None
    flow = run_flow(doc, run, S.get(TASK))
    streamlit_flow(
        FLOW_KEY,
        StreamlitFlowState(nodes=[_Plain(n) for n in flow["nodes"]], edges=[_Plain(e) for e in flow["edges"]],
                           timestamp=flow_timestamp(flow, run.id)),
        height=360, fit_view=True, allow_new_edges=False, get_node_on_click=True, enable_pane_menu=False,
        enable_node_menu=False, enable_edge_menu=False, layout=ManualLayout(), hide_watermark=True,
    )
    raw = S.get(FLOW_KEY)
    selected = raw.get("selectedId") if isinstance(raw, dict) else None
    if selected and selected != S.get(FLOW_SEEN):
        S[FLOW_SEEN] = selected
        task_of = {n["id"]: n["data"].get("task") for n in flow["nodes"]}
        return task_of.get(selected)
    return None


def _timeline(run: RunRecord) -> None:
    rows = timeline_rows(run)
    if not rows:
        st.caption("no attempts yet")
        return
    frame = pd.DataFrame(rows)
    frame["start"] = pd.to_datetime(frame["start"], unit="ms", utc=True)
    frame["end"] = pd.to_datetime(frame["end"], unit="ms", utc=True)
    states = ["succeeded", "failed", "timed_out", "crashed", "cancelled", "running", "skipped"]
    colours = ["#43a047", "#e53935", "#c62828", "#d500f9", "#fdd835", "#1e88e5", "#9e9e9e"]
    chart = alt.Chart(frame).mark_bar(cornerRadius=2).encode(
        x=alt.X("start:T", title="time (UTC)"),
        x2="end:T",
        y=alt.Y("label:N", title=None, sort=list(frame["label"])),
        color=alt.Color("status:N", scale=alt.Scale(domain=states, range=colours)),
        tooltip=["task", "attempt", "status", "seconds", "exit", "error"],
    ).properties(height=max(80, 26 * len(rows)))
    st.altair_chart(chart, width="stretch")


# -- task panel -------------------------------------------------------------------


def _output(ws: Workspace, value: Any, key: str) -> None:
    if value is None:
        st.caption("no output")
        return
    if is_spilled(value):
        ref = value[SPILL_KEY]
        where = "the database" if ref.get("stored") == "database" else ref.get("path")
        st.caption(f"large output ({ref.get('bytes')} bytes) stored in {where}; preview:")
        st.code(str(ref.get("preview", "")), language="json")
        data = OutputCodec.for_store(ws.db, Path(ws.home)).whole(ref)
        if data is not None:
            st.download_button("Download output", data=data, file_name=Path(str(ref.get("path", ""))).name,
                               mime="application/json", key=f"runs_dl_{key}")
        else:
            st.warning(f"the large output {ref.get('path')} is missing from {where}")
        return
    st.json(value, expanded=False)


def _attempts(ws: Workspace, run: RunRecord, task_id: str) -> None:
    task = run.tasks[task_id]
    line = f"**{task_id}**: {badge(task.status)} · {task.attempts} attempt(s)"
    st.markdown(line)
    if task.skip_reason:
        st.info(f"skipped: {task.skip_reason}")
    if task.error:
        st.error(task.error)
    reused = reused_from(ws.db, run.id, task_id)
    if reused is not None:
        st.caption(f"result reused from run {reused}")
    for a in reversed(task.attempt_list):
        label = f"{STATUS_EMOJI.get(a.status, '')} attempt {a.number} · {a.status}"
        with st.expander(label, expanded=a.number == task.attempts):
            d = duration(a.started, a.ended)
            how = (f"exit code {a.exit_code}" if a.exit_code is not None else
                   f"signal {a.signal}" if a.signal is not None else "")
            st.markdown(f"started {iso(a.started)} · ended {iso(a.ended) or '—'} · "
                        f"{'—' if d is None else f'{d} s'}" + (f" · {how}" if how else ""))
            if a.error:
                st.error(a.error)
            st.markdown("Parameters")
            st.json(a.params if a.params is not None else {}, expanded=False)
            st.markdown("Output")
            _output(ws, a.output, f"{task_id}_{a.number}")


def _set_cursor(value: Any) -> None:
    S[LOG_CURSOR] = value


def _logs(ws: Workspace, run_id: int, task_id: str) -> None:
    attempts: list[int | None] = [None, *attempt_numbers(ws.db, run_id, task_id)]
    c1, c2 = st.columns([1, 3])
    attempt = c1.selectbox("Attempt", attempts, key="runs_log_attempt",
                           format_func=lambda n: "all" if n is None else f"#{n}", on_change=_set_cursor,
                           args=(None,))
    search = c2.text_input("Search the log", key="runs_log_search", on_change=_set_cursor, args=(None,))
    cursor = S.get(LOG_CURSOR)
    after = cursor[1] if cursor and cursor[0] == "after" else None
    before = cursor[1] if cursor and cursor[0] == "before" else None
    page = log_page(ws.db, run_id, task_id=task_id, attempt=attempt, search=search or None,
                    after_id=after, before_id=before, limit=LOG_PAGE)
    if not page.lines:
        st.caption("no log lines" + (" match" if search else ""))
    else:
        frame = pd.DataFrame([
            {"time": iso(r["ts"]), "attempt": r["attempt"], "stream": r["stream"], "line": log_cell(r["line"])}
            for r in page.lines
        ])
        st.dataframe(frame, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(frame)),
                     key="runs_log_df")
    b1, b2, b3 = st.columns([1, 1, 4])
    b1.button("◀ Older", key="runs_log_older", disabled=not page.has_older, on_click=_set_cursor,
              args=(("before", page.first_id) if page.lines else None,))
    b2.button("Newer ▶", key="runs_log_newer", disabled=not page.has_newer, on_click=_set_cursor,
              args=(("after", page.last_id) if page.lines else None,))
    b3.caption(f"{len(page.lines)} lines" + (f" · ids {page.first_id}–{page.last_id}" if page.lines else ""))


def _task_panel(ws: Workspace, run: RunRecord) -> None:
    tasks = list(run.tasks)
    if not tasks:
        return
    if S.get(TASK) not in tasks:
        S[TASK] = tasks[0]
    task_id = st.selectbox("Task", tasks, key=TASK, on_change=_set_cursor, args=(None,),
                           format_func=lambda t: f"{STATUS_EMOJI.get(run.tasks[t].status, '')} {t}")
    _attempts(ws, run, task_id)
    st.markdown("#### Log")
    if run.status in ACTIVE:
        st.fragment(run_every=2)(_logs)(ws, run.id, task_id)
    else:
        _logs(ws, run.id, task_id)


def render_detail(ws: Workspace, run_id: int) -> None:
    try:
        run = ws.run(run_id, attempts=True)
    except UserError as exc:
        st.warning(str(exc))
        return
    _header(run)
    clicked = None
    st.markdown("#### Graph")
    clicked = _graph(ws, run)
    if clicked and clicked in run.tasks and clicked != S.get(TASK):
        S[TASK] = clicked  # before the task picker is drawn
        S[LOG_CURSOR] = None
    if run.tasks and S.get(TASK) not in run.tasks:
        S[TASK] = next(iter(run.tasks))
    _actions(ws, run, S.get(TASK) if S.get(TASK) in run.tasks else None)
    st.markdown("#### Timeline")
    _timeline(run)
    st.markdown("#### Task")
    _task_panel(ws, run)
    if run.status in ACTIVE:
        st.caption("the run is active: the log refreshes every 2 s; refresh for the graph and task states")
        st.button("Refresh", key="runs_refresh", icon=":material/refresh:")
