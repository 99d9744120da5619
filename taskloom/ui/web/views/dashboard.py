"""Dashboard: runs per day by status, per-workflow success rate and median duration, the next firings,
the runs going on now (each linked to the Runs page) and the recent failures.

The numbers come from :mod:`taskloom.ui.web.runlog.dashboard` (bounded queries, fast with 100,000 runs).
"""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import streamlit as st

from taskloom.ui.web.runlog.dashboard import (
    DAYS, MEDIAN_WINDOW, active_runs, iso_utc, recent_failures, runs_per_day, upcoming_firings, workflow_stats,
)
from taskloom.ui.web.runlog.style import STATUS_EMOJI, badge
from taskloom.ui.web.state import show_flashes, workspace

STATUS_COLORS = {
    "succeeded": "#66bb6a", "failed": "#e53935", "crashed": "#ab47bc", "cancelled": "#fdd835",
    "running": "#42a5f5", "queued": "#90a4ae",
}

st.title("Dashboard")
show_flashes()
ws = workspace()
db = ws.db
now = time.time()

# -- runs per day ----------------------------------------------------------------
st.subheader(f"Runs per day (last {DAYS} days, UTC)")
per_day = runs_per_day(db, now)
if per_day:
    frame = pd.DataFrame(per_day)
    statuses = [s for s in STATUS_COLORS if s in set(frame["status"])] + sorted(
        set(frame["status"]) - set(STATUS_COLORS))
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="day", timeUnit="utcyearmonthdate"),
            y=alt.Y("sum(runs):Q", title="runs", stack="zero"),
            color=alt.Color("status:N", scale=alt.Scale(domain=statuses,
                                                        range=[STATUS_COLORS.get(s, "#bdbdbd") for s in statuses])),
            tooltip=["day:N", "status:N", "runs:Q"],
        )
    )
    st.altair_chart(chart, width="stretch")
    totals = frame.groupby("status")["runs"].sum().to_dict()
    st.caption(" · ".join(f"{STATUS_EMOJI.get(s, '')} {s}: {int(n)}" for s, n in sorted(totals.items())))
else:
    st.caption(f"No runs in the last {DAYS} days.")

# -- per workflow ----------------------------------------------------------------
st.subheader("Workflows")
stats = workflow_stats(db)
if stats:
    st.dataframe(
        [{"workflow": s["workflow"], "runs": s["runs"], "succeeded": s["succeeded"], "failed": s["failed"],
          "cancelled": s["cancelled"], "active": s["active"],
          "success rate": None if s["success_rate"] is None else f"{s['success_rate'] * 100:.1f}%",
          "median duration (s)": s["median_seconds"]} for s in stats],
        hide_index=True, key="dash_stats",
    )
    st.caption(f"Success rate over finished runs (failed and crashed count as failed); "
               f"median over the last {MEDIAN_WINDOW} ended runs of each workflow.")
else:
    st.caption("No runs yet.")

left, right = st.columns(2)

# -- next firings ----------------------------------------------------------------
with left:
    st.subheader("Next firings")
    firings = upcoming_firings(db, now)
    if firings:
        st.dataframe(
            [{"when (UTC)": f["when"], "wall time": f["wall"], "workflow": f["workflow"], "trigger": f["trigger"],
              "DST": "⚠️ moved" if f["dst_moved"] else "", "note": f["moved"] or ""} for f in firings],
            hide_index=True, key="dash_firings",
        )
    else:
        st.caption("No time triggers will fire (none stored, all paused or disabled).")

# -- running now -----------------------------------------------------------------
with right:
    st.subheader("Running now")
    running = active_runs(db, now)
    if running:
        for r in running:
            st.page_link("views/runs.py", query_params={"run": str(r["id"])},
                         label=f"run {r['id']} · {r['workflow']} · {badge(r['status'])} · {r['seconds']:g} s")
    else:
        st.caption("No run is queued or running.")

# -- recent failures -------------------------------------------------------------
st.subheader("Recent failures")
failures = recent_failures(db)
if failures:
    st.dataframe(
        [{"run": f"runs?run={f['id']}", "id": f["id"], "workflow": f["workflow"], "status": badge(f["status"]),
          "ended": iso_utc(f["ended"] or f["created"]), "error": f["error"] or ""} for f in failures],
        hide_index=True, key="dash_failures",
        column_config={"run": st.column_config.LinkColumn("run", display_text=r"runs\?run=(\d+)")},
    )
else:
    st.caption("No failed or crashed runs.")
