"""Relative paths resolve against the workflow's own folder, wherever the scheduler was started.

The README's format example (``"callable": "model:score"``) passed ``validate``
and then failed three attempts with ``ModuleNotFoundError`` under a scheduler
started in another folder. Now the folder of the imported file is recorded
with the version, runs resolve python modules, SQLite databases, files and
checkouts against it, ``validate --check-runtime`` finds a missing module or
secret before a run, and a missing module spends no retries.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from clitools import query, start, taskloom, wait_for
from taskloom.runtime.execution import execute

README_EXAMPLE = {
    "format": "taskloom/v1",
    "name": "hourly-scores",
    "params": {"threshold": {"type": "number", "default": 0.9}},
    "triggers": [{"id": "hourly", "type": "cron", "cron": "0 * * * *", "timezone": "Europe/Berlin"}],
    "tasks": [
        {"id": "score", "type": "python", "params": {"callable": "model:score"}, "retries": 2, "timeout": 300},
        {"id": "above", "type": "condition", "params": {"expression": "tasks.score.output.max > params.threshold"}},
        {"id": "alert", "type": "shell", "params": {"command": "echo 'score {{ tasks.score.output.max }}'"}},
    ],
    "edges": [{"from": "score", "to": "above"}, {"from": "above", "to": "alert", "on": "true"}],
}


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "hourly.json").write_text(json.dumps(README_EXAMPLE))
    (folder / "model.py").write_text("def score():\n    return {'max': 0.95}\n")
    return folder


def test_the_readme_example_runs_under_a_scheduler_started_elsewhere(home: Path, tmp_path: Path) -> None:
    folder = _project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert taskloom(home, "import", "project/hourly.json", cwd=tmp_path).returncode == 0
    proc = start(home, "scheduler", "--no-api", cwd=elsewhere)
    try:
        wait_for(lambda: query(home, "SELECT holder FROM scheduler_lease"), what="the scheduler's lease")
        assert taskloom(home, "trigger", "hourly-scores", cwd=elsewhere).returncode == 0
        status = wait_for(lambda: query(home, "SELECT status FROM runs WHERE status NOT IN ('queued', 'running')"),
                          timeout=60, what="the run's end")[0][0]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert status == "succeeded"
    run = json.loads(taskloom(home, "runs", "--json").stdout)[0]
    assert run["tasks"]["score"]["output"] == {"max": 0.95}
    assert run["tasks"]["alert"]["status"] == "succeeded"
    assert query(home, "SELECT folder FROM runs") == [(str(folder),)]


def test_databases_files_and_checkouts_resolve_against_the_workflow_folder(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    (folder / "inbox").mkdir(parents=True)
    (folder / "inbox" / "a.csv").write_text("x\n1\n")
    with sqlite3.connect(folder / "data.db") as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
        conn.execute("INSERT INTO t VALUES (41)")
    origin = tmp_path / "origin"
    origin.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@example.com", *args], cwd=origin, check=True)
    doc = {
        "format": "taskloom/v1", "name": "relative",
        "tasks": [
            {"id": "read", "type": "sql", "params": {"database": "data.db", "query": "SELECT n + 1 AS n FROM t"}},
            {"id": "copy", "type": "file",
             "params": {"action": "copy", "source": "inbox", "destination": "outbox"}},
            {"id": "clone", "type": "git", "params": {"repo": str(origin), "path": "checkout"}},
        ],
    }
    (folder / "relative.json").write_text(json.dumps(doc))
    assert taskloom(home, "import", str(folder / "relative.json")).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ran = taskloom(home, "run", "relative", "--json", cwd=elsewhere)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    tasks = json.loads(ran.stdout)["tasks"]
    assert tasks["read"]["output"]["rows"] == [{"n": 42}] or tasks["read"]["output"] == [{"n": 42}]
    assert (folder / "outbox" / "a.csv").read_text() == "x\n1\n"
    assert (folder / "checkout" / ".git").is_dir()
    assert list(elsewhere.iterdir()) == []  # nothing landed where the command was started


def test_a_missing_module_fails_once_with_where_it_looked_and_spends_no_retry(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    doc = {"format": "taskloom/v1", "name": "missing",
           "tasks": [{"id": "score", "type": "python", "params": {"callable": "nothere:score"}, "retries": 2}]}
    (folder / "missing.json").write_text(json.dumps(doc))
    ran = taskloom(home, "run", str(folder / "missing.json"), "--json", cwd=tmp_path)
    assert ran.returncode == 1
    task = json.loads(ran.stdout)["tasks"]["score"]
    assert task["status"] == "failed" and task["attempts"] == 1
    assert "No module named 'nothere'" in task["error"] and str(folder) in task["error"]
    assert "not retried" in task["error"] and "--check-runtime" in task["error"]


def test_validate_check_runtime_reports_a_missing_module_and_secret(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    doc = json.loads(json.dumps(README_EXAMPLE))
    doc["tasks"][2]["params"]["env"] = {"TOKEN": "{{ secrets.API_TOKEN }}"}
    path = folder / "hourly.json"
    path.write_text(json.dumps(doc))
    assert taskloom(home, "validate", str(path)).returncode == 0  # well formed
    checked = taskloom(home, "validate", str(path), "--check-runtime", "--json", cwd=tmp_path)
    assert checked.returncode == 1
    issues = {i["path"]: i for i in json.loads(checked.stdout)}
    assert set(issues) == {"/tasks/0/params/callable", "/tasks/2/params/env/TOKEN"}
    assert "'model'" in issues["/tasks/0/params/callable"]["message"]
    assert str(folder) in issues["/tasks/0/params/callable"]["hint"]
    assert "taskloom secrets set API_TOKEN" in issues["/tasks/2/params/env/TOKEN"]["hint"]
    (folder / "model.py").write_text("def score():\n    return {'max': 1}\n")
    assert taskloom(home, "secrets", "set", "API_TOKEN", input="value-1234").returncode == 0
    again = taskloom(home, "validate", str(path), "--check-runtime", cwd=tmp_path)
    assert again.returncode == 0, again.stdout


def test_a_version_saved_in_the_designer_keeps_the_imported_folder(ws, tmp_path: Path) -> None:
    folder = _project(tmp_path)
    info, _ = ws.import_file(folder / "hourly.json")
    assert (info.folder, info.origin) == (str(folder), f"file:{folder / 'hourly.json'}")
    doc = ws.export("hourly-scores")
    doc["title"] = "edited in the designer"
    edited, created = ws.save(doc, message="edit", origin="designer")
    assert created and edited.folder == str(folder) and edited.origin == "designer"
    assert ws.target("hourly-scores").folder == str(folder)


def test_a_workflow_with_no_folder_resolves_against_the_home_not_the_process_directory(ws, home: Path) -> None:
    doc = {"format": "taskloom/v1", "name": "where",
           "tasks": [{"id": "pwd", "type": "shell", "params": {"command": "pwd"}}]}
    ws.save(doc, origin="api")
    run_id, _ = ws.start_run(ws.target("where"), {})
    execute(ws, run_id, owner="test")
    assert ws.run(run_id).tasks["pwd"].output == str(home.resolve())
