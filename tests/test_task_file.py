"""The ``file`` task end to end: real files, real symlinks, a real store; and its documentation."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest

from taskloom.core.pathguard import containing_root, is_within, pattern_problem
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, NoServices
from taskloom.runtime.tasks.files import run as run_file_task
from taskloom.core.validation import validate_document
from taskloom.storage.config import Config

from conftest import ROOT, make_doc

T0 = 1_700_000_000  # a fixed modification time, in seconds


def file_doc(retries: int = 2, **params) -> dict:
    """A one-task workflow; retries show that refusals are not retried."""
    return make_doc([{"id": "f", "type": "file", "retries": retries, "retry_delay": 0, "params": params}])


def write(path: Path, text: str = "x", mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    write(folder / "a.csv", "a", T0)
    write(folder / "b.csv", "b", T0 + 10)
    write(folder / "notes.txt", "n", T0 + 20)
    write(folder / "deep" / "er" / "c.csv", "c", T0 + 30)
    return folder


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    """A folder that is not below the working directory (tmp_path)."""
    folder = tmp_path_factory.mktemp("outside")
    write(folder / "secret.txt", "top secret")
    return folder


def refused_once(task, *names: str) -> None:
    """A FAILED task, tried once only, whose error names every one of ``names`` and says how to allow it."""
    assert task.status == "failed", task.error
    assert len(task.attempt_list) == 1  # not retriable: no retry was spent
    for name in names:
        assert name in task.error
    assert "file_roots" in task.error and "TASKLOOM_FILE_ROOTS" in task.error


# -- actions --------------------------------------------------------------------


def test_copy_with_a_pattern_keeps_times_and_leaves_no_temporary_files(run_doc, src, tmp_path):
    run = run_doc(file_doc(action="copy", source="src", pattern="*.csv", destination="out"))
    task = run.tasks["f"]
    assert run.status == "succeeded", task.error
    assert task.output["files"] == ["a.csv", "b.csv"]
    assert task.output["count"] == 2 and task.output["action"] == "copy"
    assert task.output["destination"] == str(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv", "b.csv"]
    assert (tmp_path / "out" / "b.csv").read_text() == "b"
    assert (tmp_path / "out" / "b.csv").stat().st_mtime_ns == (src / "b.csv").stat().st_mtime_ns
    assert (src / "a.csv").exists()  # a copy leaves the source alone


def test_recursive_pattern_keeps_the_relative_structure(run_doc, src, tmp_path):
    run = run_doc(file_doc(action="copy", source=str(src), pattern="**/*.csv", destination="out"))
    assert run.tasks["f"].output["files"] == ["a.csv", "b.csv", "deep/er/c.csv"]
    assert (tmp_path / "out" / "deep" / "er" / "c.csv").read_text() == "c"


def test_default_pattern_matches_files_not_folders(run_doc, src):
    run = run_doc(file_doc(action="list", source="src"))
    assert run.tasks["f"].output["files"] == ["a.csv", "b.csv", "notes.txt"]  # not the folder 'deep'


def test_a_destination_inside_the_source_is_not_matched(run_doc, src):
    run = run_doc(file_doc(action="copy", source="src", pattern="**/*", destination="src/backup"))
    assert run.status == "succeeded", run.tasks["f"].error
    run = run_doc(file_doc(action="copy", source="src", pattern="**/*", destination="src/backup"))
    assert "backup/a.csv" not in run.tasks["f"].output["files"]
    assert not (src / "backup" / "backup").exists()


def test_move_renames_matching_files_and_leaves_the_rest(run_doc, src, tmp_path):
    run = run_doc(file_doc(action="move", source="src", pattern="**/*.csv", destination="moved"))
    assert run.tasks["f"].output["files"] == ["a.csv", "b.csv", "deep/er/c.csv"]
    assert not (src / "a.csv").exists() and not (src / "deep" / "er" / "c.csv").exists()
    assert (src / "notes.txt").exists()
    assert (tmp_path / "moved" / "deep" / "er" / "c.csv").read_text() == "c"
    assert (tmp_path / "moved" / "a.csv").stat().st_mtime == T0


def test_delete_removes_files_but_never_folders(run_doc, src):
    run = run_doc(file_doc(action="delete", source="src", pattern="**/*"))
    assert run.tasks["f"].output["files"] == ["a.csv", "b.csv", "deep/er/c.csv", "notes.txt"]
    assert (src / "deep" / "er").is_dir()
    assert [p for p in src.rglob("*") if p.is_file()] == []


def test_list_reports_sizes_and_times_and_changes_nothing(run_doc, src):
    run = run_doc(file_doc(action="list", source="src", pattern="*.csv"))
    out = run.tasks["f"].output
    assert out["files"] == ["a.csv", "b.csv"]
    assert out["details"] == [{"path": "a.csv", "size": 1, "mtime": T0}, {"path": "b.csv", "size": 1, "mtime": T0 + 10}]
    assert (src / "a.csv").exists()


def test_a_missing_source_folder_fails_and_says_so(run_doc):
    task = run_doc(file_doc(retries=0, action="list", source="nowhere")).tasks["f"]
    assert task.status == "failed" and "source folder 'nowhere'" in task.error and "does not exist" in task.error


def test_a_file_as_source_is_refused_with_a_hint(run_doc, src):
    task = run_doc(file_doc(action="list", source="src/a.csv")).tasks["f"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "is a file, not a folder" in task.error and "'pattern'" in task.error


def test_a_pattern_that_climbs_out_is_refused_naming_pattern(run_doc, src):
    task = run_doc(file_doc(action="list", source="src/deep", pattern="../*.csv")).tasks["f"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "pattern '../*.csv'" in task.error


# -- overwrite ------------------------------------------------------------------


def test_an_existing_destination_file_fails_naming_it_and_changes_nothing(run_doc, src, tmp_path):
    write(tmp_path / "out" / "b.csv", "older b")
    task = run_doc(file_doc(action="copy", source="src", pattern="*.csv", destination="out")).tasks["f"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "'b.csv'" in task.error and str(tmp_path / "out" / "b.csv") in task.error
    assert '"overwrite": true' in task.error
    assert not (tmp_path / "out" / "a.csv").exists()  # checked before anything was copied
    assert (tmp_path / "out" / "b.csv").read_text() == "older b"


def test_overwrite_true_replaces_the_existing_file(run_doc, src, tmp_path):
    write(tmp_path / "out" / "b.csv", "older b")
    run = run_doc(file_doc(action="copy", source="src", pattern="*.csv", destination="out", overwrite=True))
    assert run.status == "succeeded"
    assert (tmp_path / "out" / "b.csv").read_text() == "b"


def test_move_does_not_overwrite_unless_asked(run_doc, src, tmp_path):
    write(tmp_path / "out" / "a.csv", "other a")
    task = run_doc(file_doc(action="move", source="src", pattern="a.csv", destination="out")).tasks["f"]
    assert task.status == "failed" and "'a.csv'" in task.error
    assert (src / "a.csv").exists()
    run = run_doc(file_doc(action="move", source="src", pattern="a.csv", destination="out", overwrite=True))
    assert run.status == "succeeded" and (tmp_path / "out" / "a.csv").read_text() == "a"


def test_an_identical_earlier_copy_is_not_a_conflict(run_doc, src, tmp_path):
    """A retried or repeated copy finds its own earlier work (same size and time) and goes on."""
    assert run_doc(file_doc(action="copy", source="src", destination="out")).status == "succeeded"
    run = run_doc(file_doc(action="copy", source="src", destination="out"))
    assert run.status == "succeeded"
    assert run.tasks["f"].output["files"] == ["a.csv", "b.csv", "notes.txt"]


def test_copying_a_folder_onto_itself_is_refused(run_doc, src):
    task = run_doc(file_doc(action="copy", source="src", destination="src", overwrite=True)).tasks["f"]
    assert task.status == "failed" and "its own destination" in task.error


# -- only_new -------------------------------------------------------------------


def test_only_new_acts_on_each_file_once_even_within_the_same_instant(run_doc, tmp_path):
    src = tmp_path / "in"
    write(src / "a.txt", "a", T0)
    write(src / "b.txt", "b", T0 + 5)
    doc = file_doc(action="copy", source="in", destination="out", only_new=True, overwrite=True)

    assert run_doc(doc).tasks["f"].output["files"] == ["a.txt", "b.txt"]
    assert run_doc(doc).tasks["f"].output == {
        "files": [], "count": 0, "action": "copy", "source": str(src), "destination": str(tmp_path / "out"),
    }
    write(src / "c.txt", "c", T0 + 5)  # written in the same instant as the newest file acted on
    assert run_doc(doc).tasks["f"].output["files"] == ["c.txt"]
    write(src / "d.txt", "d", T0 + 9)
    os.utime(src / "a.txt", (T0 + 20, T0 + 20))  # touched: modified again
    assert run_doc(doc).tasks["f"].output["files"] == ["a.txt", "d.txt"]
    assert run_doc(doc).tasks["f"].output["files"] == []


def test_only_new_does_not_advance_the_watermark_when_the_task_fails(run_doc, tmp_path):
    src = tmp_path / "in"
    write(src / "a.txt", "a", T0)
    doc = file_doc(action="copy", source="in", destination="out", only_new=True)
    assert run_doc(doc).tasks["f"].output["files"] == ["a.txt"]

    write(src / "b.txt", "b", T0 + 1)
    write(tmp_path / "out" / "b.txt", "in the way")
    assert run_doc(doc).tasks["f"].status == "failed"  # overwrite conflict
    (tmp_path / "out" / "b.txt").unlink()
    assert run_doc(doc).tasks["f"].output["files"] == ["b.txt"]  # not skipped: the failure kept no watermark


def test_only_new_starts_over_when_the_pattern_changes(run_doc, tmp_path):
    write(tmp_path / "in" / "a.txt", "a", T0)
    write(tmp_path / "in" / "b.log", "b", T0)
    assert run_doc(file_doc(action="list", source="in", pattern="*.txt", only_new=True)).tasks["f"].output["count"] == 1
    run = run_doc(file_doc(action="list", source="in", pattern="*", only_new=True))
    assert run.tasks["f"].output["files"] == ["a.txt", "b.log"]


# -- where files may be ---------------------------------------------------------


def test_dotdot_in_source_is_refused_naming_source(run_doc, src):
    refused_once(run_doc(file_doc(action="list", source="../elsewhere")).tasks["f"], "source '../elsewhere'")


def test_an_absolute_source_outside_the_roots_is_refused(run_doc, outside):
    task = run_doc(file_doc(action="list", source=str(outside))).tasks["f"]
    refused_once(task, "source", str(outside))


def test_a_destination_outside_the_roots_is_refused_and_nothing_is_copied(run_doc, src, outside):
    task = run_doc(file_doc(action="copy", source="src", destination=str(outside / "out"))).tasks["f"]
    refused_once(task, "destination")
    assert not (outside / "out").exists()


def test_a_symlinked_file_pointing_outside_refuses_the_task(run_doc, src, outside):
    (src / "leak.csv").symlink_to(outside / "secret.txt")
    task = run_doc(file_doc(action="copy", source="src", pattern="*.csv", destination="out")).tasks["f"]
    refused_once(task, "'leak.csv'", "symbolic link", str(outside / "secret.txt"))
    assert not (Path(src).parent / "out").exists()  # refused before the other files were copied


def test_deleting_through_an_outside_link_is_refused_and_the_target_survives(run_doc, src, outside):
    (src / "leak.txt").symlink_to(outside / "secret.txt")
    refused_once(run_doc(file_doc(action="delete", source="src", pattern="*")).tasks["f"], "'leak.txt'")
    assert (outside / "secret.txt").read_text() == "top secret"
    assert (src / "a.csv").exists()


def test_a_symlinked_folder_outside_is_refused_as_source_and_inside_it(run_doc, src, outside, tmp_path):
    (tmp_path / "linked").symlink_to(outside, target_is_directory=True)
    refused_once(run_doc(file_doc(action="list", source="linked")).tasks["f"], "source 'linked'", "symbolic link")
    (src / "sub").symlink_to(outside, target_is_directory=True)
    refused_once(run_doc(file_doc(action="list", source="src", pattern="**/*")).tasks["f"], "'sub'")
    refused_once(run_doc(file_doc(action="list", source="src", pattern="sub/*")).tasks["f"], "'sub/secret.txt'")


def test_a_destination_subfolder_linked_outside_is_refused(run_doc, src, outside, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "deep").symlink_to(outside, target_is_directory=True)
    task = run_doc(file_doc(action="copy", source="src", pattern="**/*.csv", destination="out")).tasks["f"]
    refused_once(task, "destination file")
    assert not (outside / "er").exists()


def test_a_symlink_inside_the_roots_is_copied_as_its_file(run_doc, src, tmp_path):
    write(tmp_path / "elsewhere" / "real.txt", "real")
    (src / "link.txt").symlink_to(tmp_path / "elsewhere" / "real.txt")
    run = run_doc(file_doc(action="copy", source="src", pattern="link.txt", destination="out"))
    assert run.status == "succeeded"
    copied = tmp_path / "out" / "link.txt"
    assert not copied.is_symlink() and copied.read_text() == "real"


def test_a_sibling_folder_sharing_a_prefix_with_a_root_is_not_inside_it(run_doc, ws, tmp_path_factory):
    parent = tmp_path_factory.mktemp("x")
    base, base2 = parent / "base", parent / "base2"
    write(base / "ok.txt")
    write(base2 / "no.txt")
    Config(ws.db).set("file_roots", [str(base)])
    assert run_doc(file_doc(action="list", source=str(base))).tasks["f"].output["files"] == ["ok.txt"]
    refused_once(run_doc(file_doc(action="list", source=str(base2))).tasks["f"], "source", str(base2))


def test_configured_roots_and_the_environment_allow_folders_outside_the_working_directory(
    run_doc, ws, outside, tmp_path_factory, monkeypatch
):
    Config(ws.db).set("file_roots", [str(outside)])
    run = run_doc(file_doc(action="copy", source=str(outside), destination=str(outside / "copy")))
    assert run.status == "succeeded" and (outside / "copy" / "secret.txt").exists()

    other = tmp_path_factory.mktemp("other")
    write(other / "o.txt")
    monkeypatch.setenv("TASKLOOM_FILE_ROOTS", str(other))
    assert run_doc(file_doc(action="list", source=str(other))).tasks["f"].output["files"] == ["o.txt"]


def test_containment_is_decided_on_path_components():
    assert is_within("/tmp/x/base", "/tmp/x/base")
    assert is_within("/tmp/x/base/a/b", "/tmp/x/base")
    assert not is_within("/tmp/x/base2", "/tmp/x/base")
    assert not is_within("/tmp/x", "/tmp/x/base")
    assert is_within("/anything", "/")
    assert containing_root("/data2/f", ["/data", "/srv"]) is None
    assert containing_root("/srv/f", ["/data", "/srv"]) == "/srv"
    assert pattern_problem("a/../b") and pattern_problem("/etc/*") and pattern_problem("")
    assert pattern_problem("**/*.csv") is None


# -- cancel, and leftovers of interrupted copies --------------------------------


def attempt(tmp_path: Path, cancel: threading.Event, **params) -> AttemptContext:
    return AttemptContext(
        run_id=1, task_id="f", attempt=1, params=params, timeout=60, cancel=cancel,
        log=lambda stream, line: None, on_process=lambda pid: None, env={}, cwd=str(tmp_path),
        services=NoServices(str(tmp_path)),
    )


def test_a_cancelled_task_stops_before_copying(src, tmp_path):
    cancel = threading.Event()
    cancel.set()
    result = run_file_task(attempt(tmp_path, cancel, action="copy", source="src", destination="out"))
    assert result.status is TaskState.CANCELLED
    assert not (tmp_path / "out").exists()


def test_a_leftover_partial_copy_is_never_matched(src, tmp_path):
    write(src / ".taskloom-abc123.part", "half")
    result = run_file_task(attempt(tmp_path, threading.Event(), action="list", source="src"))
    assert result.status is TaskState.SUCCEEDED
    assert result.output["files"] == ["a.csv", "b.csv", "notes.txt"]


# -- validation and documentation -----------------------------------------------


def test_copy_and_move_without_destination_are_rejected_at_the_params():
    for action in ("copy", "move"):
        issues = validate_document(file_doc(action=action, source="src"))
        expected = [("/tasks/0/params", "missing required parameter 'destination'")]
        assert [(i.path, i.message) for i in issues] == expected
    assert validate_document(file_doc(action="delete", source="src")) == []


def test_an_unknown_action_is_rejected():
    issues = validate_document(file_doc(action="shred", source="src"))
    assert [i.path for i in issues] == ["/tasks/0/params/action"]
    assert "expected one of 'copy', 'move', 'delete', 'list'" in issues[0].message


def json_blocks(page: Path) -> list[str]:
    """The ```json code blocks of a Markdown page that are whole workflows."""
    blocks = re.findall(r"```json\n(.*?)```", page.read_text(), flags=re.S)
    return [b for b in blocks if re.match(r'\s*\{\s*"format"', b)]


def test_every_workflow_in_the_file_page_validates():
    blocks = json_blocks(ROOT / "docs" / "tasks" / "file.md")
    assert blocks
    for block in blocks:
        assert validate_document(json.loads(block)) == []
