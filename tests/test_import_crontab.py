"""Importing crontabs: one workflow per job, macros, settings lines, comments, and lines that are not cron."""

from __future__ import annotations

import pytest

from engine.importers import ConversionError, convert
from engine.importers.crontab import _job_name, looks_like_crontab
from engine.validation import validate_document

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "import"


def jobs(text: str, **kw):
    conversion = convert(text, "crontab", filename=kw.pop("filename", "jobs.crontab"), **kw)
    return conversion.documents, conversion.report


def test_a_crontab_gives_one_valid_workflow_per_job():
    conversion = convert((DATA / "jobs.crontab").read_text(), filename="jobs.crontab")
    assert conversion.format == "crontab"
    docs = {d["name"]: d for d in conversion.documents}
    assert list(docs) == ["cron-backup", "cron-manage", "cron-curl", "cron-mail", "cron-start-agent", "cron-backup-2",
                          "cron-echo"]
    assert [d["tasks"][0]["id"] for d in docs.values()] == ["backup", "manage", "curl", "mail", "start_agent", "backup",
                                                            "echo"]
    for doc in docs.values():
        assert validate_document(doc) == [], doc["name"]
        (task,) = doc["tasks"]
        assert task["type"] == "shell" and task["timeout"] == 86400 and "position" in task
    backup = docs["cron-backup"]
    assert backup["triggers"] == [{"id": "cron", "type": "cron", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}]
    assert backup["tasks"][0]["title"] == "Nightly database backup"
    assert backup["tasks"][0]["params"] == {"command": "/opt/scripts/backup.sh --full > /var/log/backup.log 2>&1",
                                            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin"}}
    assert backup["description"] == ("Imported from line 8 of jobs.crontab: 30 2 * * * "
                                     "/opt/scripts/backup.sh --full > /var/log/backup.log 2>&1")
    assert docs["cron-manage"]["triggers"][0]["cron"] == "0 * * * *"
    assert "title" not in docs["cron-manage"]["tasks"][0]  # the comment belongs to the line above it only
    assert docs["cron-curl"]["triggers"][0]["cron"] == "*/15 9-17 * * 1-5"
    assert docs["cron-mail"]["tasks"][0]["params"]["command"] == (
        "mail -s \"monthly\" me@example.org <<'TASKLOOM_STDIN'\nHello,\nit is the first.%\nTASKLOOM_STDIN")
    assert "triggers" not in docs["cron-start-agent"]
    weekly = docs["cron-backup-2"]["tasks"][0]["params"]
    assert weekly["command"] == "/bin/bash -c '/opt/scripts/backup.sh --weekly --to \"$BACKUP_DIR\"'"
    assert weekly["env"] == {"PATH": "/usr/local/bin:/usr/bin:/bin", "BACKUP_DIR": "/mnt/backup dir"}
    kinds = {(i.path, i.kind) for i in conversion.report}
    assert {("line 3", "flagged"), ("line 12", "flagged"), ("line 14", "mapped"), ("", "flagged")} <= kinds
    assert [i.path for i in conversion.report][-1] == ""  # the note about the whole file comes last


def test_commands_run_as_written(run_doc, tmp_path):
    text = (f"GREETING=hello {{{{ not a template }}}}\n"  # \% is a literal % for cron, a bare % starts the input
            f"* * * * * printf '\\%s\\n' \"$GREETING\" > {tmp_path}/out.txt; echo ${{#GREETING}}\n"
            "@daily cat%line one%line two\n")
    docs, _ = jobs(text)
    first = run_doc(docs[0])
    assert first.status == "succeeded"
    assert (tmp_path / "out.txt").read_text() == "hello {{ not a template }}\n"
    assert first.tasks[docs[0]["tasks"][0]["id"]].output == len("hello {{ not a template }}")
    second = run_doc(docs[1])
    assert second.status == "succeeded"
    attempt = second.tasks["cat"]
    assert attempt.output == "line two"


@pytest.mark.parametrize(
    ("macro", "cron"),
    [("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
     ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"), ("@HOURLY", "0 * * * *")],
)
def test_macros(macro, cron):
    docs, _ = jobs(f"{macro} /bin/true\n")
    assert docs[0]["triggers"][0]["cron"] == cron


def test_schedules_are_read_in_the_given_time_zone_until_cron_tz():
    docs, report = jobs("0 6 * * * a\nCRON_TZ=UTC\n0 7 * * * b\n", timezone="America/New_York")
    assert docs[0]["triggers"][0]["timezone"] == "America/New_York" and "timezone" not in docs[1]["triggers"][0]
    with pytest.raises(ConversionError, match="unknown time zone 'Mars/Base'"):
        jobs("0 6 * * * a\n", timezone="Mars/Base")


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/opt/scripts/backup.sh --full", "backup"),
        ("cd /srv/app && ./bin/sync-data.py --all", "sync-data"),
        ("python3 -u /jobs/score_model.py", "score_model"),
        ("FOO=1 nice -n 10 /usr/bin/rsync -a a b", "rsync"),
        ("flock -n /tmp/x.lock /opt/run.sh", "run"),
        ("[ -x /usr/bin/foo ] && /usr/bin/foo", "foo"),
        ("cd /tmp", "job"),
    ],
)
def test_workflow_names_come_from_what_the_command_runs(command, name):
    assert _job_name(command) == name


def test_names_are_unique_and_take_a_prefix():
    docs, _ = jobs("@daily /a/backup.sh\n@hourly /b/backup.sh\n", name="Host 1")
    assert [d["name"] for d in docs] == ["host-1-backup", "host-1-backup-2"]


def test_lines_that_are_not_cron_are_all_reported_with_their_numbers():
    text = "# fine\n0 5 * * *\nfoo bar\n61 * * * * x\n@sometimes y\nCRON_TZ=Nowhere/Land\n@daily ok\n"
    with pytest.raises(ConversionError) as caught:
        jobs(text)
    issues = caught.value.issues
    assert [i.path for i in issues] == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    assert "schedule without a command" in issues[0].message
    assert "not a crontab line" in issues[1].message and "MIN HOUR DAY MONTH WEEKDAY" in issues[1].hint
    assert "'61 * * * *'" in issues[2].message
    assert "unknown macro '@sometimes'" in issues[3].message and "@reboot" in issues[3].hint
    assert "Nowhere/Land" in issues[4].message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\nPATH=/bin\n"])
def test_a_crontab_without_jobs_is_an_error(text):
    with pytest.raises(ConversionError):
        jobs(text)


def test_recognising_a_crontab():
    assert looks_like_crontab("PATH=/bin\n*/5 * * * * x\n")
    assert looks_like_crontab("@reboot x")
    assert not looks_like_crontab("hello world\n")
    assert not looks_like_crontab("# just comments\n")
    assert looks_like_crontab("0 5 * * *\n*/5 * * * * x\n", strict=False)
    assert convert("@daily /bin/true\n", filename="crontab").format == "crontab"
