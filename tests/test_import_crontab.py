"""Importing crontabs: one workflow per job, macros, settings lines, comments, and lines that are not cron."""

from __future__ import annotations

import pytest

from taskloom.core.importers import ConversionError, convert
from taskloom.core.importers.crontab import _job_name, has_user_column, looks_like_crontab
from taskloom.core.validation import validate_document

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "import"


def jobs(text: str, **kw):
    conversion = convert(text, "crontab", filename=kw.pop("filename", "jobs.crontab"), **kw)
    return conversion.documents, conversion.report


def test_a_crontab_gives_one_valid_workflow_per_job():
    conversion = convert((DATA / "jobs.crontab").read_text(), filename="jobs.crontab")
    assert conversion.format == "crontab"
    docs = {d["name"]: d for d in conversion.documents}
    assert list(docs) == ["cron-jobs-backup", "cron-jobs-manage", "cron-jobs-curl", "cron-jobs-mail",
                          "cron-jobs-start-agent", "cron-jobs-backup-2", "cron-jobs-echo"]
    assert [d["tasks"][0]["id"] for d in docs.values()] == ["backup", "manage", "curl", "mail", "start_agent", "backup",
                                                            "echo"]
    for doc in docs.values():
        assert validate_document(doc) == [], doc["name"]
        (task,) = doc["tasks"]
        assert task["type"] == "shell" and task["timeout"] == 86400 and "position" in task
    backup = docs["cron-jobs-backup"]
    assert backup["triggers"] == [{"id": "cron", "type": "cron", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}]
    assert backup["tasks"][0]["title"] == "Nightly database backup"
    assert backup["tasks"][0]["params"] == {"command": "/opt/scripts/backup.sh --full > /var/log/backup.log 2>&1",
                                            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin"}}
    assert backup["description"] == ("Imported from line 8 of jobs.crontab: 30 2 * * * "
                                     "/opt/scripts/backup.sh --full > /var/log/backup.log 2>&1")
    assert docs["cron-jobs-manage"]["triggers"][0]["cron"] == "0 * * * *"
    assert "title" not in docs["cron-jobs-manage"]["tasks"][0]  # the comment belongs to the line above it only
    assert docs["cron-jobs-curl"]["triggers"][0]["cron"] == "*/15 9-17 * * 1-5"
    assert docs["cron-jobs-mail"]["tasks"][0]["params"]["command"] == (
        "mail -s \"monthly\" me@example.org <<'TASKLOOM_STDIN'\nHello,\nit is the first.%\nTASKLOOM_STDIN")
    assert "triggers" not in docs["cron-jobs-start-agent"]
    weekly = docs["cron-jobs-backup-2"]["tasks"][0]["params"]
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
        ("test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }", "cron-daily"),
    ],
)
def test_workflow_names_come_from_what_the_command_runs(command, name):
    assert _job_name(command) == name


def test_names_are_unique_and_take_a_prefix():
    docs, _ = jobs("@daily /a/backup.sh\n@hourly /b/backup.sh\n", name="Host 1")
    assert [d["name"] for d in docs] == ["host-1-backup", "host-1-backup-2"]


def test_two_files_jobs_are_named_apart_by_the_file():
    """Regression: every name was cron-JOB, so the jobs of two files replaced each other's workflows."""
    text = "@daily /opt/backup.sh\n"
    names = {f: jobs(text, filename=f)[0][0]["name"] for f in ("/home/a/web.crontab", "db.txt", "My Box.cron", "")}
    assert names == {"/home/a/web.crontab": "cron-web-backup", "db.txt": "cron-db-backup",
                     "My Box.cron": "cron-my-box-backup", "": "cron-backup"}
    long = jobs(text, filename="x" * 80 + ".crontab")[0][0]
    assert long["name"] == f"cron-{'x' * 24}-backup" and validate_document(long) == []


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


# -- system crontabs (a user column) and seconds fields ---------------------------------------------

#: Debian's /etc/crontab, as installed
SYSTEM = """\
# /etc/crontab: system-wide crontab
# Unlike any other crontab you don't have to run the `crontab'
# command to install the new version when you edit this file
# and files in /etc/cron.d. These files also have username fields,
# that none of the other crontabs do.

SHELL=/bin/sh
# You can also override PATH, but by default, newer versions inherit it from the environment
#PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

# Example of job definition:
# .---------------- minute (0 - 59)
# |  .------------- hour (0 - 23)
# |  |  .---------- day of month (1 - 31)
# |  |  |  .------- month (1 - 12) OR jan,feb,mar,apr ...
# |  |  |  |  .---- day of week (0 - 6) (Sunday=0 or 7) OR sun,mon,tue,wed,thu,fri,sat
# |  |  |  |  |
# *  *  *  *  * user-name command to be executed
17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }
47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }
52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }
#
"""


@pytest.mark.parametrize("filename", ["/etc/crontab", "crontab", "system.txt"])
def test_a_system_crontabs_user_is_noted_not_run(filename):
    """Regression: the user column became the command ('root cd / && run-parts ...')."""
    docs, report = jobs(SYSTEM, filename=filename)
    commands = [d["tasks"][0]["params"]["command"] for d in docs]
    assert commands[0] == "cd / && run-parts --report /etc/cron.hourly"
    assert not any(c.startswith("root") for c in commands)
    assert [d["triggers"][0]["cron"] for d in docs] == ["17 * * * *", "25 6 * * *", "47 6 * * 7", "52 6 1 * *"]
    assert [d["tasks"][0]["id"] for d in docs] == ["cron_hourly", "cron_daily", "cron_weekly", "cron_monthly"]
    assert all("title" not in d["tasks"][0] for d in docs)  # the comment drawing the format is not a title
    assert all(validate_document(d) == [] for d in docs)
    assert "Cron ran it as user root" in docs[0]["description"]
    flagged = [i for i in report if i.kind == "flagged" and "'root'" in i.message]
    assert [i.path for i in flagged] == ["line 19", "line 20", "line 21", "line 22"]
    assert "sudo -u root" in flagged[0].hint and flagged[0].workflow == docs[0]["name"]
    (why,) = [i for i in report if i.path == "" and "system crontab" in i.message]
    assert "--no-user-column" in why.hint


@pytest.mark.parametrize(("text", "filename", "why"), [
    ("17 * * * * root cd / && run-parts /etc/cron.hourly\n", "", "line 1 runs as root"),
    ("PATH=/bin\n@reboot www-data /srv/start.sh\n", "x", "line 2 runs as www-data"),
    ("*/5 * * * * deploy /srv/bin/tick\n", "/etc/cron.d/app", "it is in a cron.d folder"),
    ("*/5 * * * * deploy /srv/bin/tick\n", "/etc/crontab", "it is /etc/crontab"),
    # a user's crontab: the sixth word is the program, however much it looks like a user
    ("0 5 * * * backup --full\n0 6 * * * curl -fsS https://example.org\n", "my.crontab", None),
    ("@daily root\n", "", None),  # no command after it: a program called root
    ("0 5 * * * /opt/root cd /\n", "", None),
])
def test_what_makes_a_crontab_a_system_one(text, filename, why):
    assert has_user_column(text, filename) == why


def test_the_user_column_can_be_named_either_way():
    docs, report = jobs("*/5 * * * * deploy /srv/bin/tick\n", user_column=True)
    assert docs[0]["tasks"][0]["params"]["command"] == "/srv/bin/tick" and "user deploy" in docs[0]["description"]
    assert any(i.path == "" and i.kind == "mapped" and "as asked" in i.message for i in report)
    docs, _ = jobs("17 * * * * root /opt/x.sh\n", user_column=False)
    assert docs[0]["tasks"][0]["params"]["command"] == "root /opt/x.sh"


def test_a_system_crontab_line_without_a_user_or_command_is_an_error():
    with pytest.raises(ConversionError) as caught:
        jobs("17 * * * * root /opt/a.sh\n18 * * * * /opt/b.sh\n@daily root\n")
    issues = caught.value.issues
    assert [i.path for i in issues] == ["line 2", "line 3"]
    assert "'/opt/b.sh' is not a user name" in issues[0].message and "--no-user-column" in issues[0].hint
    assert "without a command" in issues[1].message


@pytest.mark.parametrize(("line", "words", "hint"), [
    ("*/10 * * * * * /opt/poll.sh", "6 time fields ('*/10 * * * * *')", "interval trigger"),
    ("0 */5 * * * * /opt/poll.sh", "6 time fields ('0 */5 * * * *')",
     "drop the seconds field: '*/5 * * * * /opt/poll.sh' runs at second 0"),
    ("0 0 12 * * MON-FRI /opt/poll.sh", "6 time fields", "'0 12 * * MON-FRI /opt/poll.sh'"),
    ("0 0 12 * * ? 2030 /opt/poll.sh", "7 time fields", "no seconds or year field"),
    ("*/10 * * * * *", "6 time fields", "COMMAND"),
])
def test_a_seconds_field_is_refused_naming_the_line(line, words, hint):
    """Regression: '*/10 * * * * * cmd' was read as five fields and the command '* cmd'."""
    for text, where in ((f"@daily ok\n{line}\n", "line 2"), (f"0 1 * * * root ok\n{line}\n", "line 2")):
        with pytest.raises(ConversionError) as caught:
            jobs(text)  # the second text is a system crontab: the extra field is no user either
        (issue,) = caught.value.issues
        assert issue.path == where and words in issue.message and "cron has 5" in issue.message
        assert hint in issue.hint


@pytest.mark.parametrize("command", ["7z a /backup/x.7z /data", "mon-report --all", "sat.sh", "3proxy -d"])
def test_a_command_that_looks_a_little_like_a_field_is_a_command(command):
    docs, _ = jobs(f"0 5 * * * {command}\n")
    assert docs[0]["tasks"][0]["params"]["command"] == command
