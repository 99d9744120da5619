"""The web app (Streamlit): designer, workflows, runs, dashboard and settings pages.

Pages read and write the store and ask for runs, cancels and re-runs through its request
rows; the scheduler does the work. No page runs a task or sends a signal.

May import: core, storage and the shared ``taskloom.ui`` modules. Never runtime or api.
"""
