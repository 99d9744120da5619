"""Secrets encrypted at rest (taskloom.storage.secrets) and the ``taskloom secrets`` commands (taskloom.ui.cli.secrets)."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from taskloom.storage.db import connect
from taskloom.storage.home import database_path, resolve_database
from taskloom.storage.secrets import NAME_RULE, SecretError, SecretStore, _create_key, key_path
from taskloom.ui.cli.main import cli
from taskloom.ui.cli.secrets import secrets as secrets_group

from conftest import ROOT

pytestmark = pytest.mark.both_backends

if "secrets" not in cli.commands:  # until taskloom.ui.cli.main registers the group itself
    cli.add_command(secrets_group)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

VALUE = "correct-horse-battery-staple-7f3a9c"


@pytest.fixture
def db(home: Path):
    database = connect(resolve_database(home))  # the home's file, or the test's PostgreSQL store
    yield database
    database.conn.close()


@pytest.fixture
def store(db, home: Path) -> SecretStore:
    return SecretStore(db, home)


def _new_store(home: Path) -> SecretStore:
    """A store on a connection of its own, as another process would open it."""
    return SecretStore(connect(resolve_database(home)), home)


# -- the store -------------------------------------------------------------


def test_round_trip_created_then_replaced(store):
    assert store.set("API_TOKEN", VALUE) is True
    assert store.get("API_TOKEN") == VALUE
    assert store.set("API_TOKEN", "another-value") is False
    assert store.get("API_TOKEN") == "another-value"
    store.set("_other", "multi\nline\nvalue ü")
    assert store.values() == {"API_TOKEN": "another-value", "_other": "multi\nline\nvalue ü"}


def test_list_gives_names_and_iso_times_never_values(store):
    store.set("B_SECRET", VALUE)
    store.set("A_SECRET", VALUE)
    store.set("B_SECRET", "changed-value")
    rows = store.list()
    assert [r["name"] for r in rows] == ["A_SECRET", "B_SECRET"]
    assert all(set(r) == {"name", "created", "updated"} for r in rows)
    b = rows[1]
    assert b["created"].endswith("+00:00") and b["updated"] >= b["created"]
    assert VALUE not in json.dumps(rows) and "changed-value" not in json.dumps(rows)
    assert store.names() == ["A_SECRET", "B_SECRET"]


@pytest.mark.sqlite_only  # reads the SQLite file's bytes
def test_the_database_files_never_hold_the_plaintext(store, home):
    store.set("DB_PASSWORD", VALUE)
    store.set("PEM", f"-----BEGIN KEY-----\n{VALUE}\n-----END KEY-----")
    files = [database_path(home), database_path(home).with_name("taskloom.db-wal")]
    contents = b"".join(p.read_bytes() for p in files if p.exists())
    assert b"DB_PASSWORD" in contents  # we are looking at the right bytes
    assert VALUE.encode() not in contents
    for path in home.iterdir():  # nor any other file in the home, the key included
        assert VALUE.encode() not in path.read_bytes(), path


@posix_only
def test_key_file_is_created_owner_only_whatever_the_umask(store, home):
    path = key_path(home)
    assert not path.exists()
    old = os.umask(0)
    try:
        store.set("X_TOKEN", VALUE)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(path.read_bytes())  # a valid Fernet key


def test_reading_and_listing_create_no_key(store, home):
    assert store.values() == {} and store.names() == [] and store.list() == []
    assert not key_path(home).exists()


def test_names_and_list_work_without_the_key_file(store, home):
    store.set("ONE", VALUE)
    store.set("TWO", VALUE)
    key_path(home).unlink()
    assert store.names() == ["ONE", "TWO"]
    assert [r["name"] for r in store.list()] == ["ONE", "TWO"]


@pytest.mark.parametrize("name", ["1abc", "a-b", "a b", "", "x" * 129, "café", "NAME\n", "a.b", "{{x}}"])
def test_bad_names_are_refused_with_the_rule(store, name):
    with pytest.raises(SecretError) as info:
        store.set(name, VALUE)
    assert "starts with a letter or underscore" in str(info.value)
    assert NAME_RULE in str(info.value)
    assert store.names() == []


def test_longest_allowed_name(store):
    name = "N" * 128
    assert store.set(name, VALUE) is True
    assert store.get(name) == VALUE


def test_empty_value_is_refused(store):
    with pytest.raises(SecretError, match="empty"):
        store.set("EMPTY", "")


def test_missing_secret_errors_say_how_to_set_it(store):
    message = "no secret named 'NOPE'; set it with: taskloom secrets set NOPE"
    with pytest.raises(SecretError) as info:
        store.get("NOPE")
    assert str(info.value) == message
    with pytest.raises(SecretError) as info:
        store.delete("NOPE")
    assert str(info.value) == message
    with pytest.raises(SecretError, match="not a valid name"):
        store.delete("my-token")


def test_delete(store):
    store.set("GONE", VALUE)
    store.set("KEPT", VALUE)
    store.delete("GONE")
    assert store.names() == ["KEPT"]
    with pytest.raises(SecretError, match="no secret named 'GONE'"):
        store.get("GONE")


def test_another_connection_reads_the_values(store, home):
    store.set("SHARED", VALUE)
    other = _new_store(home)
    try:
        assert other.get("SHARED") == VALUE
        assert other.values() == {"SHARED": VALUE}
        assert other.set("SHARED", "from-the-other") is False
    finally:
        other.db.conn.close()
    assert store.get("SHARED") == "from-the-other"


def test_missing_key_file_is_a_clear_error_and_no_new_key_is_made(store, home):
    store.set("LOST", VALUE)
    path = key_path(home)
    path.unlink()
    for call in (lambda: store.get("LOST"), store.values, lambda: store.set("NEW", VALUE)):
        with pytest.raises(SecretError) as info:
            call()
        message = str(info.value)
        assert f"the key file {path} is missing" in message
        assert "1 stored secret(s) cannot be decrypted" in message
    # A new key would leave the old secrets undecryptable for good: none was made.
    assert not path.exists()
    assert store.names() == ["LOST"]


def test_wrong_key_names_the_secret_and_the_key_path(store, home):
    store.set("DB_PASSWORD", VALUE)
    path = key_path(home)
    path.write_bytes(Fernet.generate_key())
    with pytest.raises(SecretError) as info:
        store.get("DB_PASSWORD")
    message = str(info.value)
    assert "cannot decrypt secret 'DB_PASSWORD'" in message and str(path) in message
    with pytest.raises(SecretError, match="DB_PASSWORD"):
        store.values()


def test_a_damaged_key_file_is_a_clear_error(store, home):
    store.set("X_TOKEN", VALUE)
    key_path(home).write_bytes(b"not a key")
    with pytest.raises(SecretError, match="does not hold a valid key"):
        store.get("X_TOKEN")


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_a_key_file_others_may_access_is_refused(store, home, mode):
    store.set("X_TOKEN", VALUE)
    path = key_path(home)
    path.chmod(mode)
    for call in (lambda: store.get("X_TOKEN"), lambda: store.set("Y_TOKEN", VALUE)):
        with pytest.raises(SecretError) as info:
            call()
        message = str(info.value)
        assert f"chmod 600 {path}" in message and f"{mode:04o}" in message
    assert store.names() == ["X_TOKEN"]
    path.chmod(0o400)  # owner-only, read-only: fine
    assert store.get("X_TOKEN") == VALUE


def test_losing_the_race_to_create_the_key_uses_the_winners_key(home):
    path = key_path(home)
    theirs = Fernet.generate_key()
    # The other process has created the file (0600, empty) and is about to write its key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def finish() -> None:
        time.sleep(0.1)
        os.write(fd, theirs)
        os.close(fd)

    writer = threading.Thread(target=finish)
    writer.start()
    try:
        assert _create_key(path) == theirs
    finally:
        writer.join()


def test_concurrent_key_creation_agrees_on_one_key(home):
    path = key_path(home)
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def create() -> None:
        barrier.wait()
        keys.append(_create_key(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and set(keys) == {path.read_bytes()}


# -- the commands ----------------------------------------------------------


@pytest.fixture
def invoke(home):
    runner = CliRunner()

    def call(*args: str, input: str | bytes | None = None):
        return runner.invoke(cli, ["--home", str(home), "secrets", *args], input=input, catch_exceptions=False)

    return call


def _stored(home: Path) -> dict[str, str]:
    store = _new_store(home)
    try:
        return store.values()
    finally:
        store.db.conn.close()


def test_cli_set_reads_stdin_and_strips_one_newline(invoke, home):
    result = invoke("set", "API_TOKEN", input=VALUE + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "created secret API_TOKEN"
    assert VALUE not in result.output
    assert _stored(home) == {"API_TOKEN": VALUE}

    result = invoke("set", "API_TOKEN", input="two\nlines-of-it\n\n")
    assert result.exit_code == 0 and "replaced secret API_TOKEN" in result.output
    assert _stored(home) == {"API_TOKEN": "two\nlines-of-it\n"}

    invoke("set", "NO_NEWLINE", input="as-is ")
    invoke("set", "CRLF", input=b"windows-value\r\n")
    assert _stored(home)["NO_NEWLINE"] == "as-is " and _stored(home)["CRLF"] == "windows-value"


def test_cli_never_takes_the_value_as_an_argument(invoke, home):
    result = invoke("set", "API_TOKEN", VALUE, input="")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert _stored(home) == {}


def test_cli_set_refuses_an_empty_value(invoke, home):
    result = invoke("set", "API_TOKEN", input="\n")
    assert result.exit_code == 1
    assert "empty value" in result.output and "Traceback" not in result.output
    assert _stored(home) == {}


def test_cli_set_warns_that_a_short_value_is_not_masked(invoke):
    result = invoke("set", "PIN", input="123\n")
    assert result.exit_code == 0
    assert "created secret PIN" in result.output and "not masked" in result.output


def test_cli_list_shows_names_never_values(invoke):
    invoke("set", "API_TOKEN", input=VALUE)
    invoke("set", "DB_PASSWORD", input="db-" + VALUE)
    result = invoke("list")
    assert result.exit_code == 0
    assert "API_TOKEN" in result.output and "DB_PASSWORD" in result.output
    assert VALUE not in result.output

    result = invoke("list", "--json")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["API_TOKEN", "DB_PASSWORD"]
    assert all(set(r) == {"name", "created", "updated"} for r in rows)
    assert all(r["created"].endswith("+00:00") for r in rows)
    assert VALUE not in result.output


def test_cli_list_empty(invoke):
    assert "no secrets" in invoke("list").output
    assert json.loads(invoke("list", "--json").stdout) == []


def test_cli_delete(invoke, home):
    invoke("set", "GONE", input=VALUE)
    result = invoke("delete", "GONE")
    assert result.exit_code == 0 and "deleted secret GONE" in result.output
    assert json.loads(invoke("list", "--json").stdout) == []
    result = invoke("delete", "GONE")
    assert result.exit_code == 1
    assert "no secret named 'GONE'" in result.output and "Traceback" not in result.output


def test_cli_set_invalid_name_exits_1_with_the_rule(invoke, home):
    result = invoke("set", "my-token", input=VALUE)
    assert result.exit_code == 1
    assert "invalid secret name 'my-token'" in result.output
    assert "starts with a letter or underscore" in result.output
    assert "Traceback" not in result.output
    assert _stored(home) == {}


def test_cli_errors_from_the_key_file_are_messages(invoke, home):
    invoke("set", "X_TOKEN", input=VALUE)
    key_path(home).unlink()
    result = invoke("set", "Y_TOKEN", input=VALUE)
    assert result.exit_code == 1
    assert "is missing" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a pseudo-terminal")
def test_cli_set_prompts_hidden_twice_in_a_terminal(home):
    import pty
    import select

    script = (
        "from taskloom.ui.cli.main import cli\n"
        "from taskloom.ui.cli.secrets import secrets\n"
        "cli.add_command(secrets) if 'secrets' not in cli.commands else None\n"
        f"cli(['--home', {str(home)!r}, 'secrets', 'set', 'TTY_TOKEN'], prog_name='taskloom')\n"
    )
    pid, master = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-c", script])
    transcript = b""

    def read_until(marker: bytes) -> None:
        nonlocal transcript
        deadline = time.monotonic() + 30
        while marker not in transcript and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    transcript += os.read(master, 1024)
                except OSError:
                    break
        assert marker in transcript, transcript

    try:
        read_until(b"Value of TTY_TOKEN")
        os.write(master, VALUE.encode() + b"\n")
        read_until(b"Repeat for confirmation")
        os.write(master, VALUE.encode() + b"\n")
        read_until(b"created secret TTY_TOKEN")
    finally:
        status = _reap(pid)
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 0
    assert VALUE.encode() not in transcript  # hidden: never echoed
    assert _stored(home) == {"TTY_TOKEN": VALUE}


def _reap(pid: int) -> int:
    """The child's wait status, killing it if it has not ended after a few seconds."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]
