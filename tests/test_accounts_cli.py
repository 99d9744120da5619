"""``taskloom users``, ``tokens`` and ``audit`` as real subprocesses, and the audit rows every command leaves."""

from __future__ import annotations

import json
import subprocess

import pytest

from clitools import TASKLOOM, env_for, query, taskloom, write_flow
from conftest import make_doc

PASSWORD = "correct horse battery"


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def refused(result, *needles: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    text = " ".join(result.stderr.split())
    for needle in needles:
        assert needle in text, text
    assert "Traceback" not in result.stderr
    return text


def test_users_and_tokens_from_the_command_line(home):
    ok(taskloom(home, "users", "add", "ann", "--role", "admin", input=PASSWORD))
    ok(taskloom(home, "users", "add", "op", "--role", "operator", "--no-password", "--email", "op@example.com"))
    listed = json.loads(ok(taskloom(home, "users", "list", "--json")).stdout)
    assert [(u["name"], u["role"], u["password"], u["tokens"]) for u in listed] == [
        ("ann", "admin", True, 0), ("op", "operator", False, 0)]
    assert PASSWORD not in json.dumps(listed)

    made = json.loads(ok(taskloom(home, "tokens", "create", "--user", "op", "--name", "nightly", "--json")).stdout)
    assert made["token"].startswith("tlk_") and made["user"] == "op" and made["label"] == "nightly"
    plain = ok(taskloom(home, "tokens", "create", "--user", "op", "--expires-in", "30"))
    assert plain.stdout.strip().startswith("tlk_") and "not shown again" in plain.stderr
    tokens = json.loads(ok(taskloom(home, "tokens", "list", "--json")).stdout)
    assert [(t["id"], t["user"], t["state"]) for t in tokens] == [(made["id"], "op", "active"), (2, "op", "active")]
    assert tokens[1]["expires"] is not None
    assert made["token"] not in ok(taskloom(home, "tokens", "list")).stdout
    ok(taskloom(home, "tokens", "revoke", str(made["id"])))
    assert json.loads(ok(taskloom(home, "tokens", "list", "--json")).stdout)[0]["state"] == "revoked"

    ok(taskloom(home, "users", "set-role", "op", "viewer"))
    ok(taskloom(home, "users", "passwd", "op", input="another long password"))
    assert "removed user op and 2 tokens" in ok(taskloom(home, "users", "remove", "op")).stdout
    assert [u["name"] for u in json.loads(ok(taskloom(home, "users", "list", "--json")).stdout)] == ["ann"]
    actions = [r["action"] for r in json.loads(ok(taskloom(home, "audit", "--json")).stdout)]
    assert actions == ["user remove", "user passwd", "user set-role", "token revoke", "token create",
                       "token create", "user add", "user add"]


@pytest.mark.parametrize("args, stdin, needles", [
    (["users", "add", "bob", "--role", "boss"], PASSWORD, ["unknown role 'boss'", "viewer, operator, editor, admin"]),
    (["users", "add", "Bob", "--role", "viewer"], PASSWORD, ["invalid user name 'Bob'"]),
    (["users", "add", "bob", "--role", "viewer"], "short", ["at least 10 characters"]),
    (["users", "add", "bob", "--role", "viewer"], "", ["read an empty value for the password of bob"]),
    (["users", "add", "ann", "--role", "viewer"], PASSWORD, ["user ann already exists"]),
    (["users", "set-role", "nobody", "viewer"], None, ["no user 'nobody'; the users are: ann"]),
    (["users", "set-role", "ann", "root"], None, ["unknown role 'root'"]),
    (["users", "set-role", "ann", "viewer"], None, ["cannot demote ann: it is the last admin"]),
    (["users", "remove", "ann"], None, ["cannot remove ann: it is the last admin"]),
    (["tokens", "create", "--user", "nobody"], None, ["no user 'nobody'"]),
    (["tokens", "revoke", "42"], None, ["no token with id 42", "taskloom tokens list"]),
    (["audit", "--since", "yesterday"], None, ["--since 'yesterday' is neither a time"]),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(home, args, stdin, needles):
    ok(taskloom(home, "users", "add", "ann", "--role", "admin", input=PASSWORD))
    before = query(home, "SELECT name, role, password_hash FROM users"), query(home, "SELECT count(*) FROM audit")
    refused(taskloom(home, *args, input=stdin), *needles)
    assert (query(home, "SELECT name, role, password_hash FROM users"),
            query(home, "SELECT count(*) FROM audit")) == before


def test_every_change_from_the_command_line_is_audited_with_its_user(home, tmp_path):
    def bot(*args: str, input: str | None = None):
        return subprocess.run([TASKLOOM, *args], env=env_for(home, TASKLOOM_USER="ci-bot"), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, input=input)

    flow = write_flow(tmp_path, make_doc([{"id": "a", "type": "shell", "params": {"command": "echo hi"}}],
                                         name="nightly"))
    ok(bot("import", flow))
    ok(bot("run", "nightly"))
    ok(bot("rerun", "1"))
    ok(bot("pause", "nightly"))
    ok(bot("resume", "nightly"))
    refused(bot("trigger", "nightly"), "no scheduler is running")  # queued all the same
    ok(bot("cancel", "3"))
    ok(bot("secrets", "set", "API_KEY", input="a-long-secret-value"))
    ok(bot("secrets", "delete", "API_KEY"))
    ok(bot("config", "set", "logs.max_lines_per_attempt", "5000"))
    rows = json.loads(ok(taskloom(home, "audit", "--json", "--limit", "50")).stdout)
    assert [(r["actor"], r["via"], r["action"], r["target"], r["source"]) for r in reversed(rows)] == [
        ("ci-bot", "cli", "import", "workflow nightly", "cli"),
        ("ci-bot", "cli", "trigger", "run 1", "cli"),
        ("ci-bot", "cli", "rerun", "run 1", "cli"),
        ("ci-bot", "cli", "pause", "workflow nightly", "cli"),
        ("ci-bot", "cli", "resume", "workflow nightly", "cli"),
        ("ci-bot", "cli", "trigger", "run 3", "cli"),
        ("ci-bot", "cli", "cancel", "run 3", "cli"),
        ("ci-bot", "cli", "secret set", "secret API_KEY", "cli"),
        ("ci-bot", "cli", "secret delete", "secret API_KEY", "cli"),
        ("ci-bot", "cli", "config set", "config logs.max_lines_per_attempt", "cli"),
    ]
    assert "a-long-secret-value" not in json.dumps(rows)
    assert query(home, "SELECT id, started_by FROM runs ORDER BY id") == [(1, "ci-bot"), (2, "ci-bot"), (3, "ci-bot")]
    assert query(home, "SELECT owner FROM workflows") == [("ci-bot",)]
    filtered = json.loads(ok(taskloom(home, "audit", "--json", "--workflow", "nightly", "--action", "pause")).stdout)
    assert [r["action"] for r in filtered] == ["pause"]
    assert json.loads(ok(taskloom(home, "audit", "--json", "--since", "1h", "--user", "nobody")).stdout) == []
    assert "ci-bot" in ok(taskloom(home, "audit")).stdout
