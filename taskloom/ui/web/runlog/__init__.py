"""The Runs page (run-log viewer): run table, run detail, task attempts and logs, actions."""
