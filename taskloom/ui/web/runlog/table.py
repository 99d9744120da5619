"""The run table: filters, keyset pages of runs (newest first), firings that started no run."""

from __future__ import annotations

from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Any

import pandas as pd
import streamlit as st

from taskloom.core.states import RunState
from taskloom.storage.runs import RunRecord, iso, run_triggers, run_workflow_names, search_firings, search_runs
from taskloom.storage.store import Workspace

from taskloom.ui.web.runlog.style import badge, duration

__all__ = ["PAGE_SIZE", "FIRING_STATUSES", "render_table"]

PAGE_SIZE = 50
FIRING_STATUSES = ("missed", "skipped_overlap")
ALL = "(all)"
S = st.session_state
CURSORS = "runs_cursors"  # stack of before_id values of the pages shown before this one


def _reset_paging() -> None:
    S[CURSORS] = []


def _epoch(day: date | None, *, next_day: bool = False) -> float | None:
    if not isinstance(day, date):
        return None
    if next_day:
        day = day + timedelta(days=1)
    return datetime.combine(day, dtime(0), tzinfo=timezone.utc).timestamp()


def _filters(ws: Workspace) -> dict[str, Any]:
    names = run_workflow_names(ws.db)
    statuses = [s.value for s in RunState] + list(FIRING_STATUSES)
    triggers = run_triggers(ws.db)
    c1, c2, c3, c4, c5, c6 = st.columns([2, 1.4, 1.2, 1.2, 1.2, 2])
    workflow = c1.selectbox("Workflow", [ALL, *sorted(set(names))], key="runs_workflow", on_change=_reset_paging)
    status = c2.selectbox("Status", [ALL, *statuses], key="runs_status", on_change=_reset_paging,
                          format_func=lambda s: s if s == ALL else badge(s))
    trigger = c3.selectbox("Trigger", [ALL, *triggers], key="runs_trigger", on_change=_reset_paging)
    since = c4.date_input("From", value=None, key="runs_from", on_change=_reset_paging)
    until = c5.date_input("To", value=None, key="runs_to", on_change=_reset_paging)
    text = c6.text_input("Search", key="runs_text", on_change=_reset_paging,
                         placeholder="run id, workflow, error text")
    return {
        "workflow": None if workflow == ALL else workflow,
        "status": None if status == ALL else status,
        "trigger": None if trigger == ALL else trigger,
        "since": _epoch(since),
        "until": _epoch(until, next_day=True),
        "text": text.strip() or None,
    }


def _row(r: RunRecord) -> dict[str, Any]:
    return {
        "run": r.id,
        "workflow": r.workflow,
        "version": r.version,
        "status": badge(r.status),
        "trigger": r.trigger,
        "created": iso(r.created),
        "started": iso(r.started),
        "duration s": duration(r.started, r.ended),
        "parent": r.parent_run_id,
        "error": r.error,
    }


def render_table(ws: Workspace) -> list[int]:
    """Filters and the current page of runs; returns the page's run ids (newest first)."""
    filters = _filters(ws)
    cursors: list[int] = S.setdefault(CURSORS, [])
    before = cursors[-1] if cursors else None
    status = filters["status"]
    runs: list[RunRecord] = []
    more = False
    if status not in FIRING_STATUSES:
        found = search_runs(ws.db, **filters, before_id=before, limit=PAGE_SIZE + 1)
        more = len(found) > PAGE_SIZE
        runs = found[:PAGE_SIZE]
    if runs:
        st.dataframe(pd.DataFrame([_row(r) for r in runs]), hide_index=True, width="stretch", key="runs_df")
    elif status not in FIRING_STATUSES:
        st.info("No runs match." if any(filters.values()) or cursors else
                "No runs yet. Queue one from the Designer or the Workflows page; the scheduler runs it.")
    p1, p2, p3 = st.columns([1, 1, 4])
    if p1.button("◀ Newer", key="runs_newer", disabled=not cursors):
        cursors.pop()
        st.rerun()
    if p2.button("Older ▶", key="runs_older", disabled=not more):
        cursors.append(runs[-1].id)
        st.rerun()
    p3.caption(f"page {len(cursors) + 1} · {len(runs)} runs · newest first")

    if status is None or status in FIRING_STATUSES:
        firings = search_firings(
            ws.db, workflow=filters["workflow"], statuses=(status,) if status else FIRING_STATUSES,
            since=filters["since"], until=filters["until"], text=filters["text"], limit=PAGE_SIZE,
        )
        if firings:
            with st.expander(f"Firings that started no run ({len(firings)}{'+' if len(firings) == PAGE_SIZE else ''})",
                             expanded=status in FIRING_STATUSES):
                st.dataframe(pd.DataFrame([
                    {"workflow": f["workflow"], "trigger": f["trigger_id"], "instant": iso(f["instant"]),
                     "status": badge(f["status"]), "reason": f["reason"]} for f in firings
                ]), hide_index=True, width="stretch", key="runs_firings_df")
        elif status in FIRING_STATUSES:
            st.info(f"No {status} firings match.")
    return [r.id for r in runs]
