"""``taskloom import --from ...``: the report, storing only what validates, -o, --json, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from taskloom.storage.workflows import list_versions, list_workflows
from taskloom.storage.store import Workspace
from taskloom.ui.cli.main import cli

from clitools import taskloom
from conftest import ROOT, make_doc

DATA = ROOT / "tests" / "data" / "import"


@pytest.fixture
def invoke(home, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")  # the zone a crontab's schedules are read in by default
    runner = CliRunner()

    def call(*args: str):
        return runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)

    return call


def stored(home: Path) -> dict[str, int]:
    ws = Workspace(home)
    try:
        return {w.name: w.version for w in list_workflows(ws.db)}
    finally:
        ws.close()


def test_a_logic_app_is_converted_reported_and_stored(invoke, home):
    result = invoke("import", "--from", "logicapps", str(DATA / "scores.logicapp.json"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "converted" in out and "from Azure Logic Apps: 1 workflow, 4 tasks" in out
    assert "/definition/actions/Get_scores" in out and "-> http task 'Get_scores'" in out
    assert "taskloom secrets set APITOKEN" in out  # a flagged item and what to do about it
    assert "imported scores-logicapp version 1" in out and "from Azure Logic Apps" in out
    assert stored(home) == {"scores-logicapp": 1}
    ws = Workspace(home)
    try:
        (version,) = list_versions(ws.db, "scores-logicapp")
        assert version.message == "converted from Azure Logic Apps: scores.logicapp.json"
    finally:
        ws.close()
    again = invoke("import", str(DATA / "scores.logicapp.json"))  # auto; the same conversion
    assert again.exit_code == 0 and "unchanged, scores-logicapp version 1" in again.output


def test_a_file_with_placeholders_stores_nothing_and_says_what_to_replace(invoke, home):
    result = invoke("import", str(DATA / "scores.n8n.json"))
    assert result.exit_code == 1
    assert "from n8n" in result.output and "✗ /nodes/5" in result.output
    assert "replace task 'Post_to_Slack' with a notify task (channel 'webhook')" in result.output
    assert "/tasks/4/type: task 'Post_to_Slack' is a placeholder" in result.output
    assert "nothing stored" in result.output and "-o FILE.json" in result.output
    assert stored(home) == {}


def test_output_writes_the_converted_workflow_to_fix_and_import(invoke, home, tmp_path):
    target = tmp_path / "hourly.json"
    result = invoke("import", str(DATA / "scores.n8n.json"), "-o", str(target))
    assert result.exit_code == 0, result.output
    assert f"wrote hourly-scores to {target}" in result.output and "1 problem(s) to fix" in result.output
    assert stored(home) == {}
    doc = json.loads(target.read_text())
    slack = next(t for t in doc["tasks"] if t["id"] == "Post_to_Slack")
    slack.update(type="notify", params={"channel": "log", "message": "score alert"})
    target.write_text(json.dumps(doc))
    fixed = invoke("import", str(target))
    assert fixed.exit_code == 0 and "imported hourly-scores version 1" in fixed.output


def test_a_crontab_stores_one_workflow_per_job(invoke, home):
    result = invoke("import", str(DATA / "jobs.crontab"))
    assert result.exit_code == 0, result.output
    assert "from crontab: 7 workflows, 7 tasks" in result.output
    assert "line 12" in result.output and "@reboot" in result.output
    assert set(stored(home)) == {"cron-jobs-backup", "cron-jobs-manage", "cron-jobs-curl", "cron-jobs-mail",
                                 "cron-jobs-start-agent", "cron-jobs-backup-2", "cron-jobs-echo"}


def test_crontab_schedules_use_this_machines_zone_or_the_one_given(invoke, home, tmp_path):
    crontab = tmp_path / "my.cron"
    crontab.write_text("30 6 * * * /opt/report.sh\n")
    result = invoke("import", str(crontab), "-o", f"{tmp_path / 'out'}/", "--json")  # a trailing / makes a folder
    (entry,) = json.loads(result.stdout)
    assert entry["output"] == str(tmp_path / "out" / "cron-my-report.json")
    doc = json.loads(Path(entry["output"]).read_text())
    assert doc["triggers"][0]["timezone"] == "Europe/Berlin"
    invoke("import", str(crontab), "--timezone", "Asia/Tokyo", "--name", "box", "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "box-report.json").read_text())
    assert doc["triggers"][0]["timezone"] == "Asia/Tokyo"


def test_json_output_keeps_the_plain_shape_and_adds_the_report_for_converted_files(invoke, home, tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(make_doc([{"id": "a", "type": "noop"}], name="plain")))
    result = invoke("import", "--json", str(plain), str(DATA / "trycatch.logicapp.json"), str(DATA / "scores.n8n.json"))
    assert result.exit_code == 1  # the n8n file has a placeholder
    entries = json.loads(result.stdout)
    assert entries[0] == {"file": str(plain), "name": "plain", "version": 1, "created": True}
    logic = entries[1]
    assert (logic["name"], logic["version"], logic["created"], logic["format"]) == ("trycatch-logicapp", 1, True,
                                                                                 "logicapps")
    assert logic["issues"] == [] and logic["output"] is None
    assert {"path", "kind", "message", "hint", "task", "workflow"} == set(logic["report"][0])
    n8n = entries[2]
    assert (n8n["version"], n8n["created"], n8n["format"]) == (None, False, "n8n")
    assert [i["path"] for i in n8n["issues"]] == ["/tasks/4/type"]
    assert [r["task"] for r in n8n["report"] if r["kind"] == "placeholder"] == ["Post_to_Slack"]
    assert stored(home) == {"plain": 1, "trycatch-logicapp": 1}


@pytest.mark.parametrize(("content", "source", "words"), [
    ('{"nodes": [{"name": "A"}], "connections": {}}', "n8n", "/nodes/0: each node must be an object"),
    ('{"definition": {"actions": {"A": {"type": "Compose", "runAfter": {"A": 1}}, "B": 2}}}', "logicapps",
     "/definition/actions/B: action 'B' must be an object"),
    ("@daily ok\nnot a cron line\n", "crontab", "line 2: not a crontab line"),
    ('{"definition": {', "logicapps", "invalid JSON at line 1"),
])
def test_bad_input_names_the_place_and_stores_nothing(invoke, home, tmp_path, content, source, words):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    invoke("import", str(DATA / "trycatch.logicapp.json"))
    result = invoke("import", "--from", source, str(path))
    assert result.exit_code == 1
    assert words in result.output and f"{path} could not be converted" in result.output
    assert "nothing stored" in result.output and "Traceback" not in result.output
    assert stored(home) == {"trycatch-logicapp": 1}  # what was stored before is untouched


def test_unrecognised_json_keeps_the_plain_import_error_and_suggests_from(invoke, tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": "world"}')
    result = invoke("import", str(path))
    assert result.exit_code == 1
    assert 'missing "format"' in result.output and "name the format with --from" in result.output


def test_from_taskloom_is_the_plain_import(invoke, tmp_path):
    result = invoke("import", "--from", "taskloom", str(DATA / "scores.n8n.json"))
    assert result.exit_code == 1 and "is not a valid workflow" in result.output and "converted" not in result.output


def test_the_console_script_imports_a_converted_file(home, tmp_path):
    """The real command: report on stdout, problems on stderr, exit codes."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(DATA / "orders.n8n.json", work)
    shutil.copy(DATA / "trycatch.logicapp.json", work)
    bad = taskloom(home, "import", "--from", "n8n", str(work / "orders.n8n.json"))
    assert bad.returncode == 1 and "placeholder" in bad.stderr and "from n8n" in bad.stdout
    good = taskloom(home, "import", str(work / "trycatch.logicapp.json"))
    assert good.returncode == 0 and "imported trycatch-logicapp version 1" in good.stdout
    listed = taskloom(home, "list", "--json")
    assert [w["name"] for w in json.loads(listed.stdout)] == ["trycatch-logicapp"]


def test_output_and_name_work_for_taskloom_files_too(invoke, home, tmp_path):
    written = invoke("import", str(ROOT / "assets" / "examples" / "hello.json"), "-o", str(tmp_path / "h.json"),
                     "--name", "greet")
    assert written.exit_code == 0 and "wrote greet" in written.output and "(valid)" in written.output
    assert json.loads((tmp_path / "h.json").read_text())["name"] == "greet" and stored(home) == {}
    renamed = invoke("import", str(ROOT / "assets" / "examples" / "hello.json"), "--name", "greet")
    assert renamed.exit_code == 0 and "imported greet version 1" in renamed.output
    assert stored(home) == {"greet": 1}


def test_several_workflows_of_one_file_never_share_a_name(invoke, home, tmp_path):
    template = json.loads((DATA / "arm.logicapp.json").read_text())
    template["resources"].append(json.loads(json.dumps(template["resources"][1])))
    path = tmp_path / "two.json"
    path.write_text(json.dumps(template))
    result = invoke("import", str(path), "--name", "report", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report-2.json", "report.json"]


# -- crontabs: names per file, what came from elsewhere, -o FILE.json ----------------------------------


def origins(home: Path, name: str) -> list[str]:
    ws = Workspace(home)
    try:
        return [v.origin for v in list_versions(ws.db, name)]
    finally:
        ws.close()


def test_two_system_crontabs_keep_their_own_workflows(invoke, home, tmp_path):
    """Regression: both files gave 'cron-root' (the user read as the command), the second as its version 2."""
    (tmp_path / "cron.d").mkdir()
    web, db = tmp_path / "cron.d" / "web", tmp_path / "cron.d" / "db"
    web.write_text("*/5 * * * * root /srv/web/bin/tick\n")
    db.write_text("0 3 * * * root /usr/local/bin/backup-all\n0 4 * * * postgres /usr/local/bin/vacuum-all\n")
    result = invoke("import", str(web), str(db))
    assert result.exit_code == 0, result.output
    assert stored(home) == {"cron-web-tick": 1, "cron-db-backup-all": 1, "cron-db-vacuum-all": 1}
    assert "cron ran it as user 'postgres'" in result.output and "sudo -u postgres" in result.output
    ws = Workspace(home)
    try:
        doc = ws.export("cron-db-vacuum-all")
    finally:
        ws.close()
    assert doc["tasks"][0]["params"]["command"] == "/usr/local/bin/vacuum-all"
    assert "Cron ran it as user postgres" in doc["description"]


def test_the_user_column_option_overrides_recognition(invoke, home, tmp_path):
    path = tmp_path / "jobs.txt"
    path.write_text("*/5 * * * * deploy /srv/bin/tick\n")
    result = invoke("import", "--user-column", str(path), "-o", str(tmp_path / "out.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out.json").read_text())["tasks"][0]["params"]["command"] == "/srv/bin/tick"
    system = tmp_path / "crontab"
    system.write_text("17 * * * * root /opt/x.sh\n")
    result = invoke("import", "--no-user-column", str(system), "-o", str(tmp_path / "as-is.json"))
    assert json.loads((tmp_path / "as-is.json").read_text())["tasks"][0]["params"]["command"] == "root /opt/x.sh"


def test_a_crontab_never_replaces_a_workflow_from_elsewhere_unless_asked(invoke, home, tmp_path):
    """Regression: a crontab's made-up names silently became new versions of unrelated workflows."""
    plain = tmp_path / "mine.json"
    plain.write_text(json.dumps(make_doc([{"id": "a", "type": "noop"}], name="box-report")))
    assert invoke("import", str(plain)).exit_code == 0
    crontab = tmp_path / "jobs.crontab"
    crontab.write_text("@daily /opt/backup.sh\n30 6 * * * /opt/report.sh\n")
    refused = invoke("import", str(crontab), "--name", "box")
    assert refused.exit_code == 1
    out = " ".join(refused.output.split())
    assert "workflow 'box-report' is stored already (version 1) and came from the file" in out
    assert str(plain) in out and "--replace" in out and "nothing stored" in out
    assert stored(home) == {"box-report": 1}  # one transaction: not even box-backup
    as_json = invoke("import", "--json", str(crontab), "--name", "box")
    assert as_json.exit_code == 1
    entries = {e["name"]: e for e in json.loads(as_json.stdout)}
    assert entries["box-backup"]["issues"] == [] and entries["box-backup"]["version"] is None
    (issue,) = entries["box-report"]["issues"]
    assert issue["path"] == "/name" and "--replace" in issue["hint"]
    replaced = invoke("import", "--replace", str(crontab), "--name", "box")
    assert replaced.exit_code == 0, replaced.output
    assert stored(home) == {"box-report": 2, "box-backup": 1}
    assert origins(home, "box-report") == [f"file:{plain}", f"crontab:{crontab}"]


def test_reimporting_a_crontab_updates_its_own_workflows(invoke, home, tmp_path):
    crontab = tmp_path / "jobs.crontab"
    crontab.write_text("@daily /opt/backup.sh\n30 6 * * * /opt/report.sh\n")
    assert invoke("import", str(crontab)).exit_code == 0
    again = invoke("import", str(crontab))
    assert again.exit_code == 0 and "unchanged, cron-jobs-backup version 1" in again.output
    crontab.write_text("@hourly /opt/backup.sh\n")
    edited = invoke("import", str(crontab))
    assert edited.exit_code == 0, edited.output
    assert stored(home) == {"cron-jobs-backup": 2, "cron-jobs-report": 1}
    out = " ".join(edited.output.split())
    assert f"cron-jobs-report came from {crontab} before and is not in it now" in out
    assert "taskloom pause cron-jobs-report" in out
    other = tmp_path / "elsewhere" / "jobs.crontab"  # the same name, another file: refused
    other.parent.mkdir()
    other.write_text("@daily /opt/backup.sh\n")
    refused = invoke("import", str(other))
    assert refused.exit_code == 1 and f"the crontab file {crontab}" in " ".join(refused.output.split())


def test_output_to_one_json_file_writes_a_file(invoke, home, tmp_path):
    """Regression: -o FILE.json made a folder named FILE.json for a crontab of several jobs."""
    several = invoke("import", "--from", "crontab", str(DATA / "jobs.crontab"), "-o", str(tmp_path / "all.json"))
    assert several.exit_code == 1
    out = " ".join(several.output.split())
    assert "gives 7 workflows and -o" in out and "give a folder" in out and "nothing written" in out
    assert not (tmp_path / "all.json").exists() and stored(home) == {}
    folder = invoke("import", str(DATA / "jobs.crontab"), "-o", str(tmp_path / "all"))
    assert folder.exit_code == 0 and len(list((tmp_path / "all").iterdir())) == 7
    one = tmp_path / "one.crontab"
    one.write_text("30 6 * * * /opt/report.sh\n")
    files = invoke("import", str(one), str(DATA / "jobs.crontab"), "-o", str(tmp_path / "both.json"))
    assert files.exit_code == 2 and "give a folder" in files.output and not (tmp_path / "both.json").exists()
    target = tmp_path / "report.json"
    result = invoke("import", "--from", "crontab", str(one), "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.is_file() and json.loads(target.read_text())["name"] == "cron-one-report"
