"""Parse once: one import reads, parses and validates its file once; one firing reads and parses its document once.

What travels between the steps is the parsed value, never the text again: the
file's content with what it parsed to (:class:`taskloom.core.importers.Content`),
a validated document (:class:`taskloom.storage.store.Checked`, which ``save``
stores without validating again), and the scheduler's parsed ``Workflow``, which
its run is built from (``execute(..., workflow=)``).

The counts come from wrappers around ``parse_document``, ``validate_document``,
``Workflow.from_document``, the read of the stored document's text
(``document_by_hash``) and the read of the file, patched in every Taskloom module
that looks them up. Real CLI (click's runner), real SQLite files in tmp_path,
a real scheduler's firing path and a real run.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

import taskloom.core.importers as importers
import taskloom.core.validation as validation
import taskloom.runtime.execution  # noqa: F401  (loaded, so that its look-ups are patched too)
import taskloom.runtime.scheduler as scheduler_module
import taskloom.storage.workflows as workflows
from taskloom.core.model import Workflow
from taskloom.storage.store import Workspace
from taskloom.ui.cli.main import cli

from conftest import make_doc

#: counter key -> (module the original lives in, its name there)
_FUNCTIONS = {
    "parse": (validation, "parse_document"),
    "validate": (validation, "validate_document"),
    "crontab": (importers, "convert_crontab"),
    "document_read": (workflows, "document_by_hash"),
}


def _wrap(counts: Counter, key: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return original(*args, **kwargs)

    return counted


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often each step ran since the test began (absent: never)."""
    found: Counter = Counter()
    for key, (home, name) in _FUNCTIONS.items():
        original = getattr(home, name)
        counted = _wrap(found, key, original)
        for module in list(sys.modules.values()):  # patched where it is looked up, not only where it lives
            if getattr(module, "__name__", "").startswith("taskloom") and getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counted)
    build = Workflow.__dict__["from_document"].__func__
    monkeypatch.setattr(Workflow, "from_document", classmethod(_wrap(found, "from_document", build)))
    return found


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, counts: Counter) -> Callable[[Path], None]:
    """``reads(file)``: count each read of ``file``'s bytes as ``counts["read"]``."""
    watched: list[Path] = []
    read_bytes = pathlib.Path.read_bytes

    def counted(self: Path) -> bytes:
        if any(self.absolute() == w for w in watched):
            counts["read"] += 1
        return read_bytes(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", counted)
    return lambda file: watched.append(file.absolute())


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


# -- one import ---------------------------------------------------------------------------------------


def test_a_plain_import_reads_parses_and_validates_its_file_once(home, tmp_path, counts, reads):
    """It used to read it twice (recognising the format, then storing), parse it twice and validate it
    twice (``check_document``, then ``save``): {read: 2, parse: 2, validate: 2}."""
    file = tmp_path / "hello.json"
    file.write_text(json.dumps(make_doc([{"id": "a", "type": "noop"}], name="hello")))
    reads(file)
    result = invoke(home, "import", str(file))
    assert result.exit_code == 0, result.output
    assert f"imported hello version 1  ({file})" in result.output
    assert dict(counts) == {"read": 1, "parse": 1, "validate": 1}


def test_an_invalid_file_is_read_and_parsed_once_and_still_names_its_problem(home, tmp_path, counts, reads):
    file = tmp_path / "broken.json"
    file.write_text('{"format": "taskloom/v1", "name": "broken", "tasks": [}')
    reads(file)
    result = invoke(home, "import", "--json", str(file))
    assert result.exit_code == 1
    assert "invalid JSON at line 1" in result.output and "not a valid workflow (1 problem(s)); nothing stored" \
        in result.output
    assert json.loads(result.stdout) == []
    assert dict(counts) == {"read": 1, "parse": 1}


def test_a_converted_n8n_export_is_read_parsed_and_validated_once(home, tmp_path, counts, reads):
    """It used to be read twice, parsed twice (recognising it, converting it) and validated twice
    (before storing, then in ``save``): {read: 2, parse: 2, validate: 2}."""
    export = {
        "name": "Nightly echo",
        "nodes": [
            {"name": "Run by hand", "type": "n8n-nodes-base.manualTrigger", "parameters": {}, "position": [0, 0]},
            {"name": "Say hi", "type": "n8n-nodes-base.executeCommand", "parameters": {"command": "echo hi"},
             "position": [200, 0]},
        ],
        "connections": {"Run by hand": {"main": [[{"node": "Say hi", "type": "main", "index": 0}]]}},
    }
    file = tmp_path / "nightly.n8n.json"
    file.write_text(json.dumps(export))
    reads(file)
    result = invoke(home, "import", "--json", str(file))
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert (entry["name"], entry["version"], entry["created"], entry["format"]) == ("nightly-echo", 1, True, "n8n")
    assert dict(counts) == {"read": 1, "parse": 1, "validate": 1}


def test_a_converted_crontab_is_read_converted_and_validated_once(home, tmp_path, counts, reads):
    """A crontab is not JSON: converting it is its parse. It used to be read twice and each of its
    workflows validated twice: {read: 2, crontab: 1, validate: 2}."""
    file = tmp_path / "nightly.crontab"
    file.write_text("0 3 * * * echo hi\n")
    reads(file)
    result = invoke(home, "import", "--timezone", "UTC", str(file))
    assert result.exit_code == 0, result.output
    assert "imported cron-nightly-echo version 1" in result.output
    assert dict(counts) == {"read": 1, "crontab": 1, "validate": 1}


# -- one firing ---------------------------------------------------------------------------------------


def test_one_firing_reads_and_parses_its_stored_document_once_to_the_end_of_its_run(home, counts):
    """From the scheduler's look at the stored workflow to the end of the run it started. It used to
    read and parse the document three times: the tick's ``target()``, ``_start_firing``'s ``target()``
    again, and the runner's ``ws.workflow_of(run)``: {document_read: 3, from_document: 3}."""
    ws = Workspace(home)
    doc = make_doc([{"id": "a", "type": "noop"}], name="ticker",
                   triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}])
    ws.save(doc)
    ws.close()
    counts.clear()  # from here: the scheduler's firing path

    now = [math.floor(time.time()) + 0.5]  # one whole second later, exactly one instant is due
    scheduler = scheduler_module.Scheduler(home, clock=lambda: now[0], lease_ttl=60, safety_poll=60)
    scheduler.ws = Workspace(home)
    with scheduler.ws.session() as heartbeat:
        scheduler.owner = heartbeat.id
        _, renew_at = scheduler._step(0.0)  # holds the lease; a new trigger starts now, nothing is due yet
        assert not scheduler._active.threads
        now[0] += 1.0
        scheduler._step(renew_at)  # the instant is claimed and its run created and started
        threads = list(scheduler._active.threads.values())
        assert len(threads) == 1
        for thread in threads:
            thread.join(timeout=60)
        runs = scheduler.ws.db.execute("SELECT status, trigger_id FROM runs WHERE workflow = 'ticker'").fetchall()
        scheduler._shutdown()
    assert runs == [("succeeded", "tick")]
    assert dict(counts) == {"document_read": 1, "from_document": 1}
