"""What the store hands back as it writes: a queued run's record, several configuration keys in one read."""

from __future__ import annotations

import pytest

from taskloom.storage.config import KEYS, Config
from taskloom.storage.runs import get_run, queued_run

from conftest import make_doc

pytestmark = pytest.mark.both_backends

DOC = make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], [{"from": "a", "to": "b"}])


@pytest.mark.parametrize("options", [
    {},
    {"trigger": "webhook", "trigger_id": "incoming", "trigger_payload": {"rows": [1, 2.5, None], "ok": True},
     "logical_time": 1_700_000_000.25, "source": "file", "folder": "/srv/flows", "started_by": "webhook",
     "owner": "runner-1"},
], ids=["defaults", "every-field"])
def test_a_queued_run_is_returned_as_reading_it_back_gives(ws, options):
    parent = queued_run(ws.db, DOC, at=1_700_000_000.5, params={}).id if options else None
    record = queued_run(ws.db, DOC, at=1_700_000_001.125, params={"n": 3, "name": "x"}, parent_run_id=parent,
                        **options)
    assert record == get_run(ws.db, record.id)
    assert list(record.tasks) == ["a", "b"]


def test_get_many_reads_keys_in_the_order_asked_with_defaults_for_the_unset(ws, monkeypatch):
    config = Config(ws.db)
    config.set("logs.max_line_bytes", 512)
    monkeypatch.setenv("TASKLOOM_FILE_ROOTS", "/data/in")
    values = config.get_many("logs.max_lines_per_attempt", "file_roots", "logs.max_line_bytes", "alerts.on")
    assert values == [KEYS["logs.max_lines_per_attempt"].default, ["/data/in"], 512, KEYS["alerts.on"].default]
    assert [config.get(name) for name in ("logs.max_lines_per_attempt", "file_roots", "logs.max_line_bytes")] \
        == values[:3]
