"""The Taskloom web app (Streamlit): Designer, Workflows, Runs, Dashboard, Settings, and Audit for admins.

Start it with ``taskloom ui`` (or ``taskloom serve`` with the scheduler). The
app never runs tasks itself: it reads and writes the store through
``storage`` and the engine, and asks the scheduler for runs by queueing them.
When the home has accounts every page starts behind the login (:mod:`taskloom.ui.web.auth`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run taskloom/ui/web/app.py` puts taskloom/ui/web/ first on sys.path; the project is three levels up.
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from taskloom.core.access import Action  # noqa: E402
from taskloom.ui.web import auth  # noqa: E402

PAGES = Path(__file__).resolve().parent / "views"  # not "pages": that name switches Streamlit to its legacy page mode


def main() -> None:
    st.set_page_config(page_title="Taskloom", page_icon=":material/account_tree:", layout="wide")
    who = auth.gate()  # the login form, and nothing else, until someone signs in (when the home has accounts)
    pages = [
        st.Page(PAGES / "designer.py", title="Designer", icon=":material/account_tree:", url_path="designer",
                default=True),
        st.Page(PAGES / "workflows.py", title="Workflows", icon=":material/list:", url_path="workflows"),
        st.Page(PAGES / "runs.py", title="Runs", icon=":material/play_circle:", url_path="runs"),
        st.Page(PAGES / "dashboard.py", title="Dashboard", icon=":material/dashboard:", url_path="dashboard"),
        st.Page(PAGES / "settings.py", title="Settings", icon=":material/settings:", url_path="settings"),
    ]
    if who.can(Action.AUDIT):
        pages.append(st.Page(PAGES / "audit.py", title="Audit", icon=":material/history:", url_path="audit"))
    page = st.navigation(pages)
    auth.render_identity(who)
    page.run()


main()
