"""Large outputs spilled to files, skip reasons, and secrets masked before anything is stored."""

from __future__ import annotations

import pytest

import hashlib
import json

from taskloom.storage.outputs import SPILL_KEY
from taskloom.storage.runs import iter_logs
from taskloom.storage.secrets import SecretStore

from clitools import taskloom, write_flow
from conftest import make_doc

pytestmark = pytest.mark.both_backends

BIG = "def main():\n    return [{'row': i, 'text': 'x' * 40} for i in range(40000)]\n"


def test_large_output_spills_to_a_file_and_still_reaches_downstream(run_doc, ws, home, store_backend):
    """On SQLite a large output goes to a file under the home; on PostgreSQL to output_blobs (no shared folder)."""
    doc = make_doc(
        [
            {"id": "big", "type": "python", "params": {"code": BIG}},
            {"id": "use", "type": "python", "params": {
                "code": "def main(rows):\n    return {'n': len(rows), 'last': rows[-1]['row']}",
                "args": {"rows": "{{ tasks.big.output }}"}}},
        ],
        [{"from": "big", "to": "use"}],
    )
    run = run_doc(doc)
    assert run.status == "succeeded"
    assert run.tasks["use"].output == {"n": 40000, "last": 39999}
    stored = json.loads(ws.db.execute(
        "SELECT output FROM task_states WHERE run_id = ? AND task_id = 'big'", [run.id]).fetchone()[0])
    ref = stored[SPILL_KEY]
    assert ref["bytes"] > 1024 * 1024
    assert ref["preview"].startswith('[{"row":0')
    if store_backend == "postgresql":
        assert ref["stored"] == "database" and not (home / ref["path"]).exists()
        (data,) = ws.db.execute("SELECT data FROM output_blobs WHERE path = ?", [ref["path"]]).fetchone()
        assert len(json.loads(data)) == 40000
    else:
        spilled = home / ref["path"]
        assert "stored" not in ref and spilled.is_file() and len(json.loads(spilled.read_text())) == 40000
    size = ws.db.execute("SELECT sum(length(output)) FROM attempts WHERE run_id = ?", [run.id]).fetchone()[0]
    assert size < 10_000  # the database holds references, not the table


def test_spilled_output_feeds_a_resumed_run(tmp_path, home):
    """After a restart the downstream task reads the spilled output back from its file."""
    doc = make_doc(
        [
            {"id": "big", "type": "python", "params": {"code": BIG}},
            {"id": "use", "type": "python", "params": {
                "code": "def main(rows):\n    return len(rows)", "args": {"rows": "{{ tasks.big.output }}"}}},
        ],
        [{"from": "big", "to": "use"}],
    )
    first = json.loads(taskloom(home, "run", write_flow(tmp_path, doc), "--json", cwd=tmp_path).stdout)
    again = taskloom(home, "rerun", str(first["run_id"]), "--from", "use", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["tasks"]["use"]["output"] == 40000


def test_skip_reasons_are_recorded_and_shown(tmp_path, home):
    doc = make_doc(
        [
            {"id": "fetch", "type": "shell", "params": {"command": "exit 1"}},
            {"id": "load", "type": "noop"},
            {"id": "report", "type": "noop"},
        ],
        [{"from": "fetch", "to": "load"}, {"from": "load", "to": "report"}],
    )
    taskloom(home, "run", write_flow(tmp_path, doc), cwd=tmp_path)
    runs = json.loads(taskloom(home, "runs", "--json").stdout)
    tasks = runs[0]["tasks"]
    assert tasks["load"]["skip_reason"] == "upstream 'fetch' failed and edge is 'success'"
    assert tasks["report"]["skip_reason"] == "upstream 'load' skipped and edge is 'success'"
    logs = taskloom(home, "logs", str(runs[0]["id"])).stdout
    assert "load skipped: upstream 'fetch' failed and edge is 'success'" in logs


SECRET = "sup3r-s3cret-t0ken"


def test_secrets_reach_tasks_and_are_masked_everywhere(run_doc, ws, home, store_backend):
    SecretStore(ws.db, home).set("API_TOKEN", SECRET)
    doc = make_doc(
        [
            # the secret printed in two writes, split in the middle, on one line
            {"id": "split", "type": "shell", "params": {
                "command": "printf '%s' \"$(echo {{ secrets.API_TOKEN }} | cut -c1-6)\"; sleep 0.2; "
                           "echo \"$(echo {{ secrets.API_TOKEN }} | cut -c7-)\"; echo {{ secrets.API_TOKEN }} >&2"}},
            {"id": "leak", "type": "python", "params": {
                "code": "import hashlib\ndef main(token):\n    assert hashlib.sha256(token.encode()).hexdigest() == %r\n"
                        "    print('token is', token)\n    raise ValueError('bad token ' + token)"
                        % hashlib.sha256(SECRET.encode()).hexdigest(),
                "args": {"token": "{{ secrets.API_TOKEN }}"}}},
            {"id": "out", "type": "python", "params": {
                "code": "def main(token):\n    return {'echo': token, token: 1}",
                "args": {"token": "{{ secrets.API_TOKEN }}"}}},
        ],
    )
    run = run_doc(doc)
    lines = [l["line"] for l in iter_logs(ws.db, run.id)]
    assert "***" in lines  # the split stdout line and the stderr line
    assert any("token is ***" in l for l in lines)
    assert any("ValueError: bad token ***" in l for l in lines)  # inside the traceback
    assert run.tasks["leak"].error == "ValueError: bad token ***"
    assert run.tasks["out"].output == {"echo": "***", "***": 1}
    assert run.tasks["leak"].attempt_list[0].params["args"]["token"] == "***"
    # nothing anywhere in the database holds the value
    tables = [row[0] for row in ws.db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        if store_backend == "postgresql" else "SELECT name FROM sqlite_master WHERE type = 'table'")]
    dump = "\n".join(repr(row) for table in tables for row in ws.db.execute(f'SELECT * FROM "{table}"'))
    assert "workflow_versions" in tables and SECRET not in dump


def test_missing_secret_fails_the_task_with_how_to_set_it(run_doc):
    doc = make_doc([{"id": "t", "type": "shell", "params": {"command": "echo {{ secrets.NOPE }}"}}])
    run = run_doc(doc)
    assert run.tasks["t"].status == "failed"
    assert "secret 'NOPE' is not set; set it with: taskloom secrets set NOPE" in run.tasks["t"].error


def test_export_never_contains_secret_values(tmp_path, home, ws):
    SecretStore(ws.db, home).set("DB_PASSWORD", "hunter2-but-longer")
    doc = make_doc([{"id": "t", "type": "shell", "params": {"command": "psql --password {{ secrets.DB_PASSWORD }}"}}],
                   name="uses-secret")
    assert taskloom(home, "import", write_flow(tmp_path, doc)).returncode == 0
    exported = taskloom(home, "export", "uses-secret").stdout
    assert "{{ secrets.DB_PASSWORD }}" in exported and "hunter2" not in exported
