"""Every shipped example validates and runs to success."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.json"))


def test_there_are_at_least_three_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_runs(path: Path, ws, tmp_path):
    doc = ws.read_file(path)
    params = {}
    if "port" in doc.get("params", {}):
        params["port"] = str(free_port())
    if doc["name"] == "daily-copy":
        params = {"source": str(tmp_path / "a.db"), "target": str(tmp_path / "b.db")}
    target = ws.target(str(path))
    run_id, _ = ws.start_run(target, params)
    ws.execute(run_id, cwd=str(tmp_path))
    run = ws.run(run_id)
    assert run.status == "succeeded", {k: (v.status, v.error) for k, v in run.tasks.items()}
