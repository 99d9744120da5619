"""Runs: the run-log viewer.

A filterable, keyset-paginated table of runs (and of the firings that
started none); the selected run's header, actions, graph coloured by task
state, attempts timeline; the selected task's attempts, output and log
lines (searched and paged in SQL). The page never runs tasks: re-runs and
resumes are queued for the scheduler.
"""

from __future__ import annotations

import streamlit as st

from taskloom.ui.web.runlog.detail import SELECTED, render_detail, select_run
from taskloom.ui.web.runlog.table import render_table
from taskloom.ui.web.state import show_flashes, workspace

S = st.session_state
QP_SEEN = "runs_qp_seen"

st.title("Runs")
show_flashes()
ws = workspace()

# ?run=ID opens that run (once per value, so the picker can move away from it)
wanted = st.query_params.get("run")
if wanted and wanted != S.get(QP_SEEN):
    S[QP_SEEN] = wanted
    if wanted.isdigit():
        select_run(int(wanted))

ids = render_table(ws)
selected = S.get(SELECTED)
options = [None, *ids]
if selected is not None and selected not in options:
    options.insert(1, selected)
if S.get("runs_pick") not in options:
    S["runs_pick"] = selected if selected in options else None


def _picked() -> None:
    select_run(S.get("runs_pick"))


st.selectbox("Run", options, key="runs_pick", on_change=_picked,
             format_func=lambda i: "(choose a run)" if i is None else f"run {i}")
selected = S.get(SELECTED)
if selected is not None:
    if st.query_params.get("run") != str(selected):
        st.query_params["run"] = str(selected)
        S[QP_SEEN] = str(selected)
    st.divider()
    render_detail(ws, int(selected))
elif "run" in st.query_params:
    del st.query_params["run"]
    S.pop(QP_SEEN, None)
