"""The designer's Alerts form on the Workflow tab: pure edits of the section, and the page driven with AppTest."""

from __future__ import annotations

import json
from typing import Any

from streamlit.testing.v1 import AppTest

from taskloom.core.model import canonical_json
from taskloom.core.validation import validate_document
from taskloom.storage.store import Workspace
from taskloom.storage.workflows import list_versions
from taskloom.ui.web.designer import alerts_panel as ap
from taskloom.ui.web.designer import palette

from test_ui_designer import app, doc_of, home, key, open_stored, run, store, texts  # noqa: F401 - fixtures

TIMED = {
    "format": "taskloom/v1", "name": "nightly", "tasks": [{"id": "t", "type": "noop"}],
    "triggers": [{"id": "daily", "type": "cron", "cron": "0 2 * * *"}],
}


def test_each_edit_changes_only_its_part_of_the_section():
    doc = ap.set_enabled(TIMED, True)
    assert doc["alerts"] == {"on": ["failure", "recovery"]} and "alerts" not in TIMED
    doc = ap.set_kind(ap.set_kind(doc, "late", True), "recovery", False)
    assert doc["alerts"]["on"] == ["failure", "late"]
    doc = ap.set_late(ap.set_late(doc, "start_within", 300.0), "finish_within", 90.5)
    assert doc["alerts"]["late"] == {"start_within": 300, "finish_within": 90.5}
    assert ap.set_late(ap.set_late(doc, "start_within", None), "finish_within", None)["alerts"].get("late") is None
    doc = ap.use_default_channels(doc, False)
    assert doc["alerts"]["to"] == [{"log": True}]
    doc = ap.add_channel(ap.add_channel(doc, "email", "ops@example.com, dev@example.com"), "webhook",
                         "{{ secrets.SLACK_URL }}")
    assert doc["alerts"]["to"][1:] == [{"email": ["ops@example.com", "dev@example.com"]},
                                       {"webhook": "{{ secrets.SLACK_URL }}"}]
    assert validate_document(doc) == []
    one = {**TIMED, "alerts": {"to": [{"email": "ops@example.com"}, {"log": True}]}}
    assert ap.set_channel(one, 0, "oncall@example.com")["alerts"]["to"][0] == {"email": "oncall@example.com"}
    assert ap.remove_channel(ap.remove_channel(one, 0), 0)["alerts"] == {}  # no channel left: the home's defaults
    assert ap.set_enabled(one, False) == TIMED
    assert ap.channel_text({"email": ["a@b.co", "c@d.co"]}) == ("email", "a@b.co, c@d.co")


def test_the_form_edits_the_alerts_section(app: AppTest):
    run(app.button(key=palette.palette_key("noop")).click())
    run(app.checkbox(key=key(app, "al:enabled")).check())
    assert doc_of(app)["alerts"] == {"on": ["failure", "recovery"]}
    run(app.checkbox(key=key(app, "al:on:late")).check())
    assert "Late alerts watch cron and interval triggers" in texts(app)  # said on the form
    run(app.number_input(key=key(app, "al:late:finish_within")).set_value(600))
    assert "/alerts/late: alerts.late watches the instants of cron and interval triggers" in texts(app)
    run(app.checkbox(key=key(app, "al:default_to")).uncheck())
    run(app.selectbox(key=key(app, "al:new_kind")).select("email"))
    run(app.text_input(key=key(app, "al:new_text")).input("ops@example.com"))
    run(app.button(key=key(app, "al:add")).click())
    run(app.text_input(key=key(app, "al:to:1:email")).input("ops@example.com, dev@example.com"))
    assert doc_of(app)["alerts"] == {
        "on": ["failure", "recovery", "late"], "late": {"finish_within": 600},
        "to": [{"log": True}, {"email": ["ops@example.com", "dev@example.com"]}],
    }
    run(app.button(key=key(app, "al:to:0:remove")).click())
    assert doc_of(app)["alerts"]["to"] == [{"email": ["ops@example.com", "dev@example.com"]}]
    run(app.checkbox(key=key(app, "al:enabled")).uncheck())
    assert "alerts" not in doc_of(app)


def test_a_stored_alerts_section_round_trips_through_the_designer_without_loss(app: AppTest, store: Workspace,
                                                                              tmp_path):
    doc: dict[str, Any] = {**TIMED, "alerts": {
        "on": ["late", "failure"], "late": {"start_within": 120, "finish_within": 3600},
        "to": [{"webhook": "{{ secrets.SLACK_URL }}"}, {"email": "ops@example.com"}, {"log": True}]}}
    path = tmp_path / "nightly.json"
    path.write_text(json.dumps(doc))
    store.import_file(path)
    open_stored(app, "nightly")
    assert app.checkbox(key=key(app, "al:on:late")).value and not app.checkbox(key=key(app, "al:on:recovery")).value
    assert app.number_input(key=key(app, "al:late:start_within")).value == 120
    assert app.text_input(key=key(app, "al:to:1:email")).value == "ops@example.com"
    assert canonical_json(doc_of(app)) == canonical_json(doc)
    run(app.button(key="designer_save").click())
    assert len(list_versions(store.db, "nightly")) == 1  # nothing changed: no new version
