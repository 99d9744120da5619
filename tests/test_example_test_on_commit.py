"""The shipped example "run the tests when new commits land", run for real, several times."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from taskloom.storage.runs import iter_logs

from conftest import ROOT

EXAMPLE = ROOT / "assets" / "examples" / "test-on-commit.json"


def git(repo: Path, *args: str) -> str:
    argv = ["git", "-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com",
            "-c", "commit.gpgsign=false", *args]
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    return subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def statuses(run) -> dict[str, str]:
    return {task_id: task.status for task_id, task in run.tasks.items()}


def test_first_run_clones_and_tests_then_only_new_commits_are_tested(run_doc, ws, tmp_path):
    doc = json.loads(EXAMPLE.read_text())
    params = {"repo": str(tmp_path / "repos" / "demo")}  # the checkout keeps its default, in the home's files

    first = run_doc(doc, params)
    assert first.status == "succeeded", {k: (v.status, v.error) for k, v in first.tasks.items()}
    assert set(statuses(first).values()) == {"succeeded"}
    commit = first.tasks["git"].output["commit"]
    assert first.tasks["git"].output["updated"] is True
    assert (Path(ws.home) / "files" / "checkouts" / "example" / "test_calc.py").exists()
    logs = [line["line"] for line in iter_logs(ws.db, first.id)]
    assert any(line.startswith("Ran 1 test") for line in logs) and "OK" in logs
    author = "Taskloom Example <example@taskloom.invalid>"
    assert first.tasks["notify"].output == f"tests passed at {commit} (Add calc.add with a test) by {author}"

    second = run_doc(doc, params)
    assert second.status == "succeeded"
    assert second.tasks["git"].output["updated"] is False
    assert statuses(second) == {
        "paths": "succeeded", "demo_repo": "succeeded", "git": "succeeded", "new_commit": "succeeded", "test": "skipped", "notify": "skipped",
    }

    repo = tmp_path / "repos" / "demo"
    # same size, most likely the same second as the first checkout: stale bytecode would hide the change
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    git(repo, "commit", "-q", "-am", "Break add")
    third = run_doc(doc, params)
    assert third.tasks["git"].output["message"] == "Break add"
    assert third.tasks["test"].status == "failed"  # the new commit was tested, and its test fails
    assert third.tasks["notify"].status == "skipped"
    assert third.status == "failed"


def test_the_checkout_parameter_is_checked_against_the_allowed_roots(run_doc, tmp_path, tmp_path_factory):
    doc = json.loads(EXAMPLE.read_text())
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    run = run_doc(doc, {"repo": str(tmp_path / "demo"), "checkout": str(elsewhere / "wc")})
    assert run.tasks["git"].status == "failed"
    assert "path " in run.tasks["git"].error and "file_roots" in run.tasks["git"].error
    assert run.tasks["test"].status == "skipped"


def test_without_a_repo_the_demo_repository_is_made_in_the_taskloom_home(run_doc, ws, tmp_path):
    """Not in a /tmp path shared by every user and every home of the machine."""
    run = run_doc(json.loads(EXAMPLE.read_text()))
    assert run.status == "succeeded", {k: (v.status, v.error) for k, v in run.tasks.items()}
    files = Path(os.path.abspath(ws.home)) / "files"
    repo, checkout = files / "example-repo", files / "checkouts" / "example"
    assert run.tasks["paths"].output == {"repo": str(repo), "checkout": str(checkout)}
    assert (repo / ".git").is_dir() and run.tasks["git"].attempt_list[-1].params["repo"] == str(repo)
    assert (checkout / "calc.py").exists()
    assert not (tmp_path / "checkouts").exists()  # nothing beside the workflow file, in the source tree
