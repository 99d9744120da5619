"""The ``git`` task end to end against real local repositories in tmp_path; and its documentation."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest


from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, NoServices
from taskloom.runtime.tasks.git import git_env, is_url, run as run_git_task, same_repository
from taskloom.core.validation import validate_document
from taskloom.storage.config import Config

from conftest import ROOT, make_doc
from test_task_file import json_blocks

GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` as a person would, with a fixed identity; its stdout."""
    argv = ["git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com",
            "-c", "commit.gpgsign=false", *args]
    return subprocess.run(argv, cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with two commits on ``main`` and a branch ``feature``."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "app.py", "VERSION = 1\n", "First version\n\nWith a body that is not the message.")
    commit(repo, "app.py", "VERSION = 2\n", "Second version")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feature.txt", "new\n", "A feature")
    git(repo, "checkout", "-q", "main")
    return repo


def git_doc(retries: int = 2, **params) -> dict:
    return make_doc([{"id": "g", "type": "git", "retries": retries, "retry_delay": 0, "params": params}])


def test_clone_checks_out_the_default_branch_head(run_doc, origin, tmp_path):
    run = run_doc(git_doc(repo=str(origin), path="checkouts/app"))
    task = run.tasks["g"]
    assert run.status == "succeeded", task.error
    assert task.output == {
        "commit": git(origin, "rev-parse", "main"), "branch": "main", "message": "Second version",
        "author": "Ada Lovelace <ada@example.com>", "updated": True, "previous": None,
    }
    assert (tmp_path / "checkouts" / "app" / "app.py").read_text() == "VERSION = 2\n"
    assert not (tmp_path / "checkouts" / "app" / "feature.txt").exists()


def test_updates_report_whether_the_commit_changed_since_the_last_run(run_doc, origin, tmp_path):
    doc = git_doc(repo="origin", path="wc")  # a relative repo path is read from the working directory
    first = run_doc(doc).tasks["g"].output
    newer = commit(origin, "app.py", "VERSION = 3\n", "Third version")

    second = run_doc(doc).tasks["g"].output
    assert second["commit"] == newer and second["message"] == "Third version"
    assert second["updated"] is True and second["previous"] == first["commit"]
    assert (tmp_path / "wc" / "app.py").read_text() == "VERSION = 3\n"

    third = run_doc(doc).tasks["g"].output
    assert third["commit"] == newer and third["updated"] is False and third["previous"] == newer


def test_an_update_discards_local_changes_to_tracked_files(run_doc, origin, tmp_path):
    doc = git_doc(repo=str(origin), path="wc")
    run_doc(doc)
    (tmp_path / "wc" / "app.py").write_text("edited by hand\n")
    (tmp_path / "wc" / "mine.txt").write_text("untracked\n")
    assert run_doc(doc).status == "succeeded"
    assert (tmp_path / "wc" / "app.py").read_text() == "VERSION = 2\n"
    assert (tmp_path / "wc" / "mine.txt").exists()  # untracked files are left alone


def test_branch_picks_another_branch_and_switches_back(run_doc, origin, tmp_path):
    out = run_doc(git_doc(repo=str(origin), path="wc", branch="feature")).tasks["g"].output
    assert out["commit"] == git(origin, "rev-parse", "feature")
    assert out["branch"] == "feature" and out["message"] == "A feature"
    assert (tmp_path / "wc" / "feature.txt").exists()
    back = run_doc(git_doc(repo=str(origin), path="wc", branch="main")).tasks["g"].output
    assert back["branch"] == "main" and back["updated"] is True
    assert not (tmp_path / "wc" / "feature.txt").exists()


def test_commit_picks_an_older_commit_detached(run_doc, origin, tmp_path):
    first = git(origin, "rev-list", "--max-parents=0", "HEAD")
    out = run_doc(git_doc(repo=str(origin), path="wc", commit=first[:10])).tasks["g"].output
    assert out["commit"] == first and out["branch"] is None
    assert out["message"] == "First version"  # the first line only
    assert (tmp_path / "wc" / "app.py").read_text() == "VERSION = 1\n"


def test_an_unknown_branch_fails_with_gits_message_and_is_not_retried(run_doc, origin):
    task = run_doc(git_doc(repo=str(origin), path="wc", branch="nosuchbranch")).tasks["g"]
    assert task.status == "failed"
    assert "couldn't find remote ref" in task.error and "nosuchbranch" in task.error
    assert len(task.attempt_list) == 1


def test_an_unknown_commit_fails_and_is_not_retried(run_doc, origin):
    task = run_doc(git_doc(repo=str(origin), path="wc", commit="0123456789abcdef")).tasks["g"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "commit '0123456789abcdef' was not found" in task.error


def test_a_missing_repository_fails_and_is_not_retried(run_doc, tmp_path):
    task = run_doc(git_doc(repo=str(tmp_path / "no-repo"), path="wc")).tasks["g"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert task.error.startswith(f"cloning {tmp_path / 'no-repo'} failed: fatal: repository")
    assert not (tmp_path / "wc").exists()


def test_path_outside_the_roots_is_refused_naming_path(run_doc, origin, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    for path in (str(outside / "wc"), "../wc"):
        task = run_doc(git_doc(repo=str(origin), path=path)).tasks["g"]
        assert task.status == "failed" and len(task.attempt_list) == 1
        assert f"path {path!r}" in task.error and "file_roots" in task.error
    assert not (outside / "wc").exists()


def test_a_configured_root_allows_a_working_copy_outside_the_working_directory(run_doc, ws, origin, tmp_path_factory):
    outside = tmp_path_factory.mktemp("checkouts")
    Config(ws.db).set("file_roots", [str(outside)])
    run = run_doc(git_doc(repo=str(origin), path=str(outside / "wc")))
    assert run.status == "succeeded" and (outside / "wc" / "app.py").exists()


def test_an_existing_folder_that_is_not_a_working_copy_is_left_alone(run_doc, origin, tmp_path):
    (tmp_path / "outer").mkdir()
    git(tmp_path / "outer", "init", "-q", "-b", "main")  # a repository around the folder does not count
    (tmp_path / "outer" / "wc").mkdir()
    (tmp_path / "outer" / "wc" / "data.txt").write_text("precious\n")
    task = run_doc(git_doc(repo=str(origin), path="outer/wc")).tasks["g"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "path 'outer/wc'" in task.error and "not a git working copy" in task.error
    assert (tmp_path / "outer" / "wc" / "data.txt").read_text() == "precious\n"


def test_a_working_copy_of_another_repository_is_left_alone(run_doc, origin, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    commit(other, "x.txt", "x", "other")
    assert run_doc(git_doc(repo=str(other), path="wc")).status == "succeeded"
    task = run_doc(git_doc(repo=str(origin), path="wc")).tasks["g"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "path 'wc'" in task.error and str(other) in task.error
    assert (tmp_path / "wc" / "x.txt").exists()


def test_an_empty_existing_folder_is_cloned_into(run_doc, origin, tmp_path):
    (tmp_path / "wc").mkdir()
    assert run_doc(git_doc(repo=str(origin), path="wc")).status == "succeeded"
    assert (tmp_path / "wc" / "app.py").exists()


def test_git_output_is_logged(run_doc, ws, origin):
    run = run_doc(git_doc(repo=str(origin), path="wc"))
    from taskloom.storage.runs import iter_logs

    lines = [(l["stream"], l["line"]) for l in iter_logs(ws.db, run.id)]
    assert any(s == "system" and t.startswith("$ git clone --no-checkout") for s, t in lines)
    assert any(s == "system" and t.startswith("$ git checkout --force -B main") for s, t in lines)


def attempt(tmp_path: Path, origin: Path, *, cancel: threading.Event, timeout: float) -> AttemptContext:
    return AttemptContext(
        run_id=1, task_id="g", attempt=1, params={"repo": str(origin), "path": "wc"}, timeout=timeout,
        cancel=cancel, log=lambda stream, line: None, on_process=lambda pid: None, env=dict(os.environ),
        cwd=str(tmp_path), services=NoServices(str(tmp_path)),
    )


def test_cancel_and_timeout_end_the_attempt(origin, tmp_path):
    cancelled = threading.Event()
    cancelled.set()
    result = run_git_task(attempt(tmp_path, origin, cancel=cancelled, timeout=60))
    assert result.status is TaskState.CANCELLED
    result = run_git_task(attempt(tmp_path, origin, cancel=threading.Event(), timeout=0))
    assert result.status is TaskState.TIMED_OUT and result.error == "timed out after 0 s"


def test_without_storage_the_commit_is_reported_but_not_kept(origin, tmp_path):
    result = run_git_task(attempt(tmp_path, origin, cancel=threading.Event(), timeout=60))
    assert result.status is TaskState.SUCCEEDED and result.output["updated"] is True


def test_git_never_prompts_and_repositories_are_compared_by_what_they_are(tmp_path):
    env = git_env({"PATH": "/usr/bin"})
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["PATH"] == "/usr/bin"
    assert is_url("https://example.com/a.git") and is_url("git@example.com:a/b.git") and is_url("file:///x")
    assert not is_url("/srv/repo") and not is_url("./a:b")
    (tmp_path / "r").mkdir()
    assert same_repository(f"{tmp_path}/./r/", str(tmp_path / "r"))
    assert same_repository("https://example.com/a.git", "https://example.com/a")
    assert not same_repository("https://example.com/a", "https://example.com/b")


# -- validation and documentation -----------------------------------------------


def test_branch_and_commit_together_are_rejected():
    issues = validate_document(git_doc(repo="r", path="wc", branch="main", commit="abc123"))
    assert [i.path for i in issues] == ["/tasks/0/params/commit"]
    assert "either 'branch' or 'commit'" in issues[0].hint
    assert validate_document(git_doc(repo="r", path="wc", branch="main", commit="")) == []


def test_repo_and_path_are_required():
    issues = validate_document(git_doc(repo="r"))
    assert [(i.path, i.message) for i in issues] == [("/tasks/0/params", "missing required parameter 'path'")]


def test_every_workflow_in_the_git_page_validates():
    blocks = json_blocks(ROOT / "docs" / "tasks" / "git.md")
    assert blocks
    for block in blocks:
        assert validate_document(json.loads(block)) == []
