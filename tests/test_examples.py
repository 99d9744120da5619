"""Every shipped example validates and runs to success, writing only below its Taskloom home and run folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from conftest import ROOT
from taskloom.runtime.execution import execute


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.json"))
#: Where the examples once kept their files, shared by every user and every home of the machine.
SHARED_TMP = Path("/tmp")
SHARED_PREFIX = "taskloom-example"


def test_there_are_at_least_three_examples():
    assert len(EXAMPLES) >= 3


def _shared_paths() -> set[Path]:
    return set(SHARED_TMP.glob(f"{SHARED_PREFIX}*"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_runs(path: Path, ws, tmp_path):
    """With its default params: its files go to the Taskloom home (``{{ run.home }}``), none to /tmp."""
    folder = tmp_path / "flows"  # relative paths (the git checkout) resolve against the file's folder
    folder.mkdir()
    copy = folder / path.name
    shutil.copy(path, copy)
    doc = ws.read_file(copy)
    params = {}
    if "port" in doc.get("params", {}):
        params["port"] = str(free_port())
    before = _shared_paths()
    target = ws.target(str(copy))
    run_id, _ = ws.start_run(target, params)
    execute(ws, run_id, cwd=str(tmp_path))
    run = ws.run(run_id)
    assert run.status == "succeeded", {k: (v.status, v.error) for k, v in run.tasks.items()}
    assert _shared_paths() - before == set()
    rendered = json.dumps([a.to_dict() for t in run.tasks.values() for a in t.attempt_list])
    assert f"{SHARED_TMP}/{SHARED_PREFIX}" not in rendered


def test_no_example_names_a_shared_tmp_path():
    for path in EXAMPLES:
        assert f"{SHARED_TMP}/{SHARED_PREFIX}" not in path.read_text(), f"{path.name} writes to a shared /tmp path"


def test_daily_copy_keeps_its_databases_in_the_taskloom_home(ws, tmp_path):
    path = tmp_path / "daily-copy.json"
    shutil.copy(ROOT / "assets" / "examples" / "daily-copy.json", path)
    for expected in (3, 3):  # each run seeds three rows and copies only those
        run_id, _ = ws.start_run(ws.target(str(path)), {})
        execute(ws, run_id, cwd=str(tmp_path))
        run = ws.run(run_id)
        assert run.status == "succeeded" and run.tasks["copy"].output["rows_copied"] == expected
    home = Path(os.path.abspath(ws.home)) / "files"
    assert run.tasks["paths"].output == {"source": str(home / "example-source.db"),
                                         "target": str(home / "example-target.db")}
    assert (home / "example-source.db").is_file() and (home / "example-target.db").is_file()
    assert f"into {home / 'example-target.db'}" in run.tasks["report"].output
    given = {"source": str(tmp_path / "a.db"), "target": str(tmp_path / "b.db")}
    run_id, _ = ws.start_run(ws.target(str(path)), given)
    execute(ws, run_id, cwd=str(tmp_path))
    assert ws.run(run_id).tasks["paths"].output == given  # the params still choose the files
