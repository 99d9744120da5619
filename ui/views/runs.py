"""Runs: the latest runs and the firings that started none (the full run-log viewer builds on this)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from storage.runs import iso, list_runs
from storage.scheduling import list_firings
from ui.webstate import show_flashes, workspace

st.title("Runs")
show_flashes()
ws = workspace()
names = [r[0] for r in ws.db.execute("SELECT DISTINCT workflow FROM runs ORDER BY workflow")]
chosen = st.selectbox("Workflow", ["(all)", *names], key="runs_workflow")
workflow = None if chosen == "(all)" else chosen
records = list_runs(ws.db, workflow, limit=200)
rows = [
    {"id": r.id, "workflow": r.workflow, "version": r.version, "status": r.status, "trigger": r.trigger,
     "logical time": r.summary()["logical_time"], "started": r.summary()["started"],
     "duration s": r.summary()["duration"], "error": r.error}
    for r in records
]
rows += [
    {"id": None, "workflow": f["workflow"], "version": None, "status": f["status"], "trigger": f["trigger_id"],
     "logical time": iso(f["instant"]), "started": None, "duration s": None, "error": f["reason"]}
    for f in list_firings(ws.db, workflow, limit=200)
]
if not rows:
    st.info("No runs yet. Queue one from the Designer or the Workflows page; the scheduler runs it.")
else:
    st.dataframe(pd.DataFrame(rows).sort_values("logical time", ascending=False), hide_index=True, width="stretch")
