"""Bad input, item by item: each is refused with a clear error, and nothing is stored (issue 10).

- Template sandbox escapes: the task fails at once with the sandbox's refusal,
  its command never runs, and neither Python internals nor secret values reach
  the error, the recorded parameters or the logs. Template syntax that arrives
  as data (a param, a payload) is never rendered a second time. A template
  whose ``**`` or ``*`` would take minutes fails its task instead.
- Path traversal in ``file`` tasks: ``..``, ``~``, absolute paths, symbolic
  links and templates that lead outside the allowed roots are refused, not
  retried, and no file is touched. (``test_task_file.py`` covers more link
  shapes: links in the source folder, linked destination subfolders, folders
  sharing a prefix with a root.)
- Webhooks without, or with a wrong, token or signature: 401 and no run.
- JSON too large or too deep, through ``taskloom import`` and the API: a clear
  error naming the limit, and nothing stored.
- Duplicate ids (tasks, triggers, edges, and keys repeated in one JSON object):
  an error naming both places, and nothing stored.

"Nothing stored" is checked by counting the rows of every table a request
could write (workflows, versions, documents, runs, task states, attempts,
logs, task memory, webhook tokens) before and after.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from taskloom.core.validation import MAX_DEPTH, MAX_DOCUMENT_BYTES
from taskloom.api.app import create_app
from taskloom.api.hooks import REFUSED, add_hooks
from taskloom.storage.scheduling import webhook_token
from taskloom.storage.secrets import SecretStore
from taskloom.storage.sqlite import sqlite3
from taskloom.storage.store import Workspace
from taskloom.ui.cli.main import cli

from clitools import query
from conftest import make_doc

#: Tables a refused request must leave alone.
TABLES = ("workflows", "workflow_versions", "documents", "runs", "task_states", "attempts", "logs", "task_memory",
          "webhook_tokens")
TOKEN = "api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET_VALUE = "hunter2-top-secret"


def counts(home: Path) -> dict[str, int]:
    """Rows per table in ``home``'s database."""
    return {table: query(home, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


def deep(levels: int) -> Any:
    """An array nested ``levels`` deep."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def deep_value(levels: int) -> Any:
    """'bottom' inside ``levels`` nested arrays."""
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    """What ``taskloom scheduler`` serves (the API with a token, and the webhooks) on a free 127.0.0.1 port."""
    app = create_app(home, token=TOKEN)
    add_hooks(app, home)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.should_exit = True
    thread.join(10)


def import_file(home: Path, path: Path) -> Any:
    """``taskloom import PATH`` into ``home``, in this process."""
    return CliRunner().invoke(cli, ["--home", str(home), "import", str(path)])


# -- template sandbox escapes -------------------------------------------------------------------

ESCAPES = {
    "mro subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner globals": "{{ joiner.__init__.__globals__ }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "namespace globals": "{{ namespace.__init__.__globals__ }}",
    "attr filter": "{{ run | attr('__class__') }}",
    "str.format field": "{{ '{0.__class__.__base__}'.format(run) }}",
    "subscript": "{{ run['__class__'].__base__ }}",
    "statement loop": "{% for k in run.__class__.__dict__ %}{{ k }}{% endfor %}",
    "secrets internals": "{{ secrets.__class__.__init__.__globals__ }}",
    "secrets dict methods": "{{ secrets.values() | list }}",
}
#: What an escape that worked would print.
LEAKS = ("<class", "<built-in", "<function", "<module", "uid=", "__builtins__", "subprocess", SECRET_VALUE)


#: Each escape in a shell command line, and (statements aside) as a condition's expression.
ESCAPE_CASES = [
    pytest.param(kind, template, id=f"{kind}-{name}")
    for kind in ("shell", "condition") for name, template in ESCAPES.items()
    if kind == "shell" or not template.startswith("{%")
]


@pytest.mark.parametrize(("kind", "template"), ESCAPE_CASES)
def test_a_sandbox_escape_fails_its_task_at_once_and_leaks_nothing(
    run_doc: Any, ws: Workspace, tmp_path: Path, template: str, kind: str
) -> None:
    SecretStore(ws.db, ws.home).set("TOP", SECRET_VALUE)
    marker = tmp_path / "escaped"
    if kind == "shell":
        task = {"id": "evil", "type": "shell", "params": {"command": f"echo {template} > {marker}"}}
    else:
        task = {"id": "evil", "type": "condition", "params": {"expression": template.strip("{} ")}}
    doc = make_doc([{**task, "retries": 2, "retry_delay": 0}, {"id": "after", "type": "noop"}],
                   [{"from": "evil", "to": "after"}])
    run = run_doc(doc)
    evil = run.tasks["evil"]
    # A refused template fails the attempt and spends no retry: the same inputs would be refused again.
    assert (run.status, evil.status, evil.attempts) == ("failed", "failed", 1)
    assert run.tasks["after"].status == "skipped"
    refused = ("refused by the sandbox", "is not set", "has no attribute")
    assert any(words in evil.error for words in refused), evil.error
    assert not marker.exists()  # the command never ran
    stored = json.dumps([evil.error, [a.params for a in evil.attempt_list], [a.error for a in evil.attempt_list]])
    stored += "\n".join(line for (line,) in query(ws.home, "SELECT line FROM logs"))
    for leak in LEAKS:
        assert leak not in stored, leak


@pytest.mark.parametrize("template", ["{{ 9 ** (9 ** 9) }}", "{{ '=' * params.n }}", "{{ [0] * params.n }}"])
def test_a_template_too_costly_to_render_fails_its_task_instead_of_hanging_the_run(
    run_doc: Any, template: str
) -> None:
    """Found while probing: rendering runs on the runner's thread, where no timeout reaches, and the plain
    sandbox computed 9 ** 387420489 (minutes, gigabytes) or a string as long as a payload's number said."""
    doc = make_doc([{"id": "t", "type": "shell", "params": {"command": f"echo {template}"}}],
                   params={"n": {"type": "integer", "default": 10**9}})
    started = time.monotonic()
    run = run_doc(doc)
    assert time.monotonic() - started < 30
    assert run.tasks["t"].status == "failed" and "refused by the sandbox" in run.tasks["t"].error
    assert "would" in run.tasks["t"].error and "more than" in run.tasks["t"].error


def test_template_syntax_arriving_as_data_is_never_rendered_again(run_doc: Any, tmp_path: Path) -> None:
    """A param or payload holding ``{{ ... }}`` is text: it is substituted once, never evaluated."""
    # Through the environment, not spliced into the command line: what the shell sees is a variable.
    doc = make_doc([{"id": "echo", "type": "shell",
                     "params": {"command": 'printf "%s\\n" "$WHO"', "env": {"WHO": "{{ params.who }}"}}}],
                   params={"who": {"type": "string"}})
    run = run_doc(doc, {"who": "{{ 7 * 7 }} {{ ''.__class__ }}"})
    assert run.status == "succeeded"
    assert run.tasks["echo"].output == "{{ 7 * 7 }} {{ ''.__class__ }}"


def test_keys_that_look_like_internals_are_read_as_data(run_doc: Any) -> None:
    """The sandbox refuses Python attributes, not JSON keys: ``__typename`` (GraphQL) stays readable."""
    doc = make_doc([{"id": "echo", "type": "shell", "params": {"command": "echo {{ params.reply.__typename }}"}}],
                   params={"reply": {"type": "object", "default": {"__typename": "Query"}}})
    run = run_doc(doc)
    assert run.status == "succeeded" and run.tasks["echo"].output == "Query"


# -- path traversal in file tasks -------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """``src/a.csv`` below the working directory (tmp_path), the only allowed root."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.csv").write_text("a")
    return tmp_path


TRAVERSALS = {
    "dot-dot source": ({"action": "list", "source": "../.."}, "source '../..'"),
    "home source": ({"action": "list", "source": "~"}, "source '~'"),
    "absolute source": ({"action": "delete", "source": "/etc", "pattern": "hosts"}, "source '/etc'"),
    "symlinked system path": ({"action": "list", "source": "/proc/self/root/etc"}, "through a symbolic link"),
    "dot-dot destination": ({"action": "copy", "source": "src", "destination": "../../x"}, "destination '../../x'"),
    "move out": ({"action": "move", "source": "src", "destination": "/tmp/taskloom-out"}, "destination"),
    "dot-dot pattern": ({"action": "delete", "source": "src", "pattern": "../../*"}, "may not contain '..'"),
    "deep dot-dot pattern": ({"action": "list", "source": "src", "pattern": "**/../../*"}, "may not contain '..'"),
    "absolute pattern": ({"action": "list", "source": "src", "pattern": "/etc/*"}, "must be relative"),
    "template source": ({"action": "list", "source": "{{ params.dir }}"}, "source '../../etc'"),
}


@pytest.mark.parametrize(("params", "named"), TRAVERSALS.values(), ids=TRAVERSALS.keys())
def test_a_path_leaving_the_roots_is_refused_and_no_file_is_touched(
    run_doc: Any, ws: Workspace, files: Path, params: dict[str, Any], named: str
) -> None:
    doc = make_doc([{"id": "f", "type": "file", "retries": 2, "retry_delay": 0, "params": params}],
                   params={"dir": {"type": "string", "default": "../../etc"}})
    before = {p: p.read_bytes() for p in (files / "src").rglob("*")}
    run = run_doc(doc)
    task = run.tasks["f"]
    assert (task.status, task.attempts) == ("failed", 1), task.error  # a refusal is never retried
    assert named in task.error, task.error
    if params.get("pattern", "*") == "*":  # the pattern refusals say what a pattern may be instead
        assert "outside the folders file tasks may use" in task.error and "file_roots" in task.error
    assert {p: p.read_bytes() for p in (files / "src").rglob("*")} == before
    assert not Path("/tmp/taskloom-out").exists() and not (files.parent.parent / "x").exists()
    assert counts(ws.home)["task_memory"] == 0


def test_a_nul_byte_in_a_path_is_refused_not_a_crash(run_doc: Any, files: Path) -> None:
    run = run_doc(make_doc([{"id": "f", "type": "file", "retries": 2, "retry_delay": 0,
                             "params": {"action": "list", "source": "src\x00/../../etc"}}]))
    assert (run.tasks["f"].status, run.tasks["f"].attempts) == ("failed", 1)


# -- webhooks -------------------------------------------------------------------------------------

HOOKED = make_doc(
    [{"id": "echo", "type": "shell", "params": {"command": "echo '{{ trigger.payload | tojson }}'"}}],
    name="hooked",
    triggers=[
        {"id": "push", "type": "webhook"},
        {"id": "other", "type": "webhook"},
        {"id": "signed", "type": "webhook", "secret": "HOOK_KEY"},
        {"id": "named", "type": "webhook", "token_secret": "MISSING_TOKEN"},
        {"id": "off", "type": "webhook", "enabled": False},
    ],
)
BODY = json.dumps({"ref": "refs/heads/main"}).encode()


def _signature(body: bytes, key: bytes = b"signing-key") -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@pytest.fixture
def hooked(server: str, ws: Workspace) -> dict[str, str]:
    """HOOKED stored, its signing secret set; the tokens of its triggers by trigger id."""
    SecretStore(ws.db, ws.home).set("HOOK_KEY", "signing-key")
    ws.save(HOOKED)
    return {t: webhook_token(ws.db, "hooked", t) or "" for t in ("push", "other")}


REFUSALS: dict[str, tuple[str, str, dict[str, str], bytes, str]] = {
    # name: (workflow, trigger, headers, body, the reason in the service's log)
    "no token": ("hooked", "push", {}, BODY, "bearer token"),
    "wrong token": ("hooked", "push", {"Authorization": "Bearer nope"}, BODY, "bearer token"),
    "token without Bearer": ("hooked", "push", {"Authorization": "{push}"}, BODY, "bearer token"),
    "token as Basic": ("hooked", "push", {"Authorization": "Basic {push}"}, BODY, "bearer token"),
    "another trigger's token": ("hooked", "push", {"Authorization": "Bearer {other}"}, BODY, "bearer token"),
    "the API token": ("hooked", "push", AUTH, BODY, "bearer token"),
    "no signature": ("hooked", "signed", {}, BODY, "X-Hub-Signature-256"),
    "wrong signature": ("hooked", "signed", {"X-Hub-Signature-256": "sha256=" + "0" * 64}, BODY,
                        "X-Hub-Signature-256"),
    "signature of another body": ("hooked", "signed", {"X-Hub-Signature-256": _signature(b"{}")}, BODY, "Signature"),
    "signature with another key": ("hooked", "signed", {"X-Hub-Signature-256": _signature(BODY, b"guess")}, BODY,
                                   "Signature"),
    "sha1 signature": ("hooked", "signed",
                       {"X-Hub-Signature-256": "sha1=" + hmac.new(b"signing-key", BODY, "sha1").hexdigest()},
                       BODY, "Signature"),
    "a token where a signature is wanted": ("hooked", "signed", {"Authorization": "Bearer {push}"}, BODY, "Signature"),
    "token secret not set": ("hooked", "named", {"Authorization": "Bearer anything"}, BODY, "MISSING_TOKEN"),
    "disabled trigger": ("hooked", "off", {"Authorization": "Bearer {push}"}, BODY, "no enabled webhook trigger"),
    "unknown trigger": ("hooked", "nope", {"Authorization": "Bearer {push}"}, BODY, "no enabled webhook trigger"),
    "unknown workflow": ("x", "y", {}, BODY, "no such workflow"),
    "unknown workflow, a real token": ("nothere", "push", {"Authorization": "Bearer {push}"}, BODY,
                                       "no such workflow"),
}


@pytest.mark.parametrize(("workflow", "trigger", "headers", "body", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_webhook_without_its_credentials_starts_nothing_and_learns_nothing(
    server: str, hooked: dict[str, str], home: Path, workflow: str, trigger: str, headers: dict[str, str],
    body: bytes, reason: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Every refusal is the same 401 and the same body: no stored name, trigger or secret name shows.

    The reason is in the service's log, where the operator can read it.
    """
    before = counts(home)
    sent = {k: v.format(**hooked) for k, v in headers.items()}
    with caplog.at_level(logging.WARNING, logger="taskloom.hooks"):
        response = httpx.post(f"{server}/hooks/{workflow}/{trigger}", content=body, headers=sent)
    assert (response.status_code, response.json()) == (401, REFUSED), response.text
    for name in ("hooked", "push", "signed", "named", "MISSING_TOKEN", "HOOK_KEY"):
        assert name not in response.text
    assert counts(home) == before
    assert any(reason in r.getMessage() and f"{workflow}/{trigger}" in r.getMessage() for r in caplog.records)


def test_a_webhook_with_its_credentials_starts_one_run(server: str, hooked: dict[str, str], home: Path) -> None:
    """The control for the refusals above: the right token, or the right signature, is let in."""
    before = counts(home)["runs"]
    by_token = httpx.post(f"{server}/hooks/hooked/push", content=BODY,
                          headers={"Authorization": f"Bearer {hooked['push']}"})
    by_signature = httpx.post(f"{server}/hooks/hooked/signed", content=BODY,
                              headers={"X-Hub-Signature-256": _signature(BODY)})
    assert (by_token.status_code, by_signature.status_code) == (202, 202)
    assert counts(home)["runs"] == before + 2


def test_a_paused_workflow_refuses_its_webhook(server: str, hooked: dict[str, str], home: Path) -> None:
    assert httpx.post(f"{server}/workflows/hooked/pause", headers=AUTH).status_code == 200
    before = counts(home)
    response = httpx.post(f"{server}/hooks/hooked/push", content=BODY,
                          headers={"Authorization": f"Bearer {hooked['push']}"})
    assert response.status_code == 409 and "paused" in response.json()["error"]
    assert counts(home) == before


PAYLOADS = {
    "too large": (b'{"x": "' + b"a" * MAX_DOCUMENT_BYTES + b'"}', 413, "the limit is 5,242,880"),
    "too deep": (json.dumps(deep(MAX_DEPTH + 1)).encode(), 400, "nested too deep"),
    "deeper than the parser goes": (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deep"),
    "not JSON": (b"{'a': 1}", 400, "not JSON"),
    "not UTF-8": (b'{"a": "\xff"}', 400, "not JSON"),
    "NaN": (b'{"a": NaN}', 400, "NaN"),
    "overflowing number": (b"[1e400]", 400, "too large"),
    "lone surrogate": (b'{"a": "\\ud800"}', 400, "unpaired surrogate"),
}


@pytest.mark.parametrize(("body", "status", "words"), PAYLOADS.values(), ids=PAYLOADS.keys())
def test_a_webhook_body_that_cannot_be_stored_is_refused(
    server: str, hooked: dict[str, str], home: Path, body: bytes, status: int, words: str
) -> None:
    """With the right token: a body too large, too deep or not storable as JSON starts nothing."""
    before = counts(home)
    response = httpx.post(f"{server}/hooks/hooked/push", content=body,
                          headers={"Authorization": f"Bearer {hooked['push']}"})
    assert response.status_code == status, response.text
    assert words in response.json()["error"] and response.json()["field"] == "body"
    assert counts(home) == before


# -- JSON too large or too deep -------------------------------------------------------------------


def _too_large() -> dict[str, Any]:
    doc = make_doc([{"id": "a", "type": "noop"}], name="big", description="")
    doc["description"] = "x" * (MAX_DOCUMENT_BYTES - len(json.dumps(doc)) + 1)  # one byte over
    return doc


def _too_deep() -> dict[str, Any]:
    return make_doc([{"id": "a", "type": "noop"}], name="deep",
                    params={"p": {"type": "array", "default": deep(MAX_DEPTH)}})


OVERSIZED = {
    "too large": (_too_large, ["is 5,242,881 bytes; the limit is 5,242,880"]),
    "too deep": (_too_deep, ["nesting too deep", f"more than {MAX_DEPTH} levels"]),
}


@pytest.mark.parametrize(("build", "words"), OVERSIZED.values(), ids=OVERSIZED.keys())
def test_taskloom_import_refuses_json_too_large_or_too_deep(
    home: Path, tmp_path: Path, build: Any, words: list[str]
) -> None:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(build()), encoding="utf-8")
    Workspace(home).close()
    before = counts(home)
    result = import_file(home, path)
    assert result.exit_code == 1
    for word in words:
        assert word in result.output, result.output
    assert "nothing stored" in result.output
    assert counts(home) == before


API_OVERSIZED = {  # too large is refused unread, like every body over the limit (docs/api.md)
    "too large": (_too_large, 413, ["the request body is 5,242,881 bytes; the limit is 5,242,880"]),
    "too deep": (_too_deep, 422, ["nesting too deep", f"more than {MAX_DEPTH} levels"]),
}


@pytest.mark.parametrize(("build", "status", "words"), API_OVERSIZED.values(), ids=API_OVERSIZED.keys())
def test_the_api_refuses_a_workflow_too_large_or_too_deep(
    server: str, home: Path, build: Any, status: int, words: list[str]
) -> None:
    before = counts(home)
    response = httpx.post(f"{server}/workflows", content=json.dumps(build()).encode(), timeout=30,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == status
    message = response.json()["issues"][0]["message"] if status == 422 else response.json()["error"]
    for word in words:
        assert word in message, message
    assert counts(home) == before


RUN_BODIES = {
    "too large": (b'{"payload": "' + b"a" * MAX_DOCUMENT_BYTES + b'"}', 413, "body", "the limit is 5,242,880"),
    "payload too deep": (json.dumps({"payload": deep(MAX_DEPTH + 1)}).encode(), 422, "body.payload",
                         "nested too deep"),
    "param too deep": (json.dumps({"params": {"who": deep(MAX_DEPTH + 1)}}).encode(), 422, "body.params.who",
                       "nested too deep"),
    "deeper than the parser goes": (b'{"payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "body",
                                    "could not be read as JSON"),
    "NaN payload": (b'{"payload": NaN}', 422, "body.payload", "NaN"),
    "overflowing param": (b'{"params": {"times": 1e400}}', 422, "body.params.times", "too large"),
    "lone surrogate": (b'{"params": {"who": "\\udc00"}}', 422, "body.params.who", "unpaired surrogate"),
}


@pytest.mark.parametrize(("body", "status", "field", "words"), RUN_BODIES.values(), ids=RUN_BODIES.keys())
def test_the_api_refuses_a_run_request_it_could_not_store_faithfully(
    server: str, home: Path, body: bytes, status: int, field: str, words: str
) -> None:
    """Found by the fuzzing and the probes of issue 10: each of these was stored, or was a 500."""
    flow = make_doc([{"id": "a", "type": "noop"}], name="flow",
                    params={"who": {"type": "string", "default": "x"}, "times": {"type": "number", "default": 1}})
    assert httpx.post(f"{server}/workflows", json=flow, headers=AUTH).status_code == 201
    before = counts(home)
    response = httpx.post(f"{server}/workflows/flow/runs", content=body, timeout=30,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["field"] == field and words in response.json()["error"]
    assert counts(home) == before


@pytest.mark.parametrize("path", [
    "/runs/9223372036854775808", "/runs/99999999999999999999/logs", "/workflows/flow/versions/9223372036854775808",
    "/runs?before_id=9223372036854775808",
])
def test_an_id_beyond_sqlite_integers_is_a_422_not_a_500(server: str, path: str) -> None:
    """Found by the schemathesis fuzzing: sqlite3 raised OverflowError for ids past 2**63 - 1."""
    response = httpx.get(f"{server}{path}", headers=AUTH)
    assert response.status_code == 422 and response.json()["field"].split(".")[0] in ("path", "query")


# -- duplicate ids ----------------------------------------------------------------------------------

DUPLICATES = {
    "task id": (
        json.dumps(make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}, {"id": "a", "type": "noop"}])),
        "/tasks/2/id", ["duplicate task id 'a'", "/tasks/0"],
    ),
    "trigger id": (
        json.dumps(make_doc([{"id": "a", "type": "noop"}], triggers=[
            {"id": "t", "type": "manual"}, {"id": "t", "type": "cron", "cron": "0 * * * *"}])),
        "/triggers/1/id", ["duplicate trigger id 't'", "/triggers/0"],
    ),
    "edge": (
        json.dumps(make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], [
            {"from": "a", "to": "b"}, {"from": "a", "to": "b", "on": "failure"}])),
        "/edges/1", ["duplicate edge 'a' -> 'b'", "/edges/0"],
    ),
    "param declared twice": (
        '{"format": "taskloom/v1", "name": "test-flow", "params": {"who": {"type": "string"}, '
        '"who": {"type": "integer"}}, "tasks": [{"id": "a", "type": "noop"}]}',
        "/params/who", ["duplicate key 'who' in /params", '{"type": "string"} and {"type": "integer"}'],
    ),
    "task id key twice": (
        '{"format": "taskloom/v1", "name": "test-flow", "tasks": [{"id": "a", "type": "noop", "id": "b"}]}',
        "/tasks/0/id", ["duplicate key 'id' in /tasks/0", '"a" and "b"'],
    ),
}


@pytest.mark.parametrize(("text", "path", "words"), DUPLICATES.values(), ids=DUPLICATES.keys())
def test_taskloom_import_refuses_duplicates_naming_both_places(
    home: Path, tmp_path: Path, text: str, path: str, words: list[str]
) -> None:
    file = tmp_path / "flow.json"
    file.write_text(text, encoding="utf-8")
    Workspace(home).close()
    before = counts(home)
    result = import_file(home, file)
    assert result.exit_code == 1 and "nothing stored" in result.output
    output = " ".join(result.output.split())  # the terminal wraps long messages
    for word in [path, *words]:
        assert word in output, output
    assert counts(home) == before


@pytest.mark.parametrize(("text", "path", "words"), DUPLICATES.values(), ids=DUPLICATES.keys())
def test_the_api_refuses_duplicates_naming_both_places(
    server: str, home: Path, text: str, path: str, words: list[str]
) -> None:
    before = counts(home)
    response = httpx.post(f"{server}/workflows", content=text.encode(),
                          headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422
    [issue] = [i for i in response.json()["issues"] if i["path"] == path]
    for word in words:
        assert word in issue["message"], issue
    assert counts(home) == before


def test_a_task_output_nested_too_deep_for_the_serializer_is_still_served(
    server: str, run_doc: Any, home: Path
) -> None:
    """Found while probing issue 10: a python task's output nested 600 deep was stored fine, then every
    GET /runs/{id} of its run was a 500 (pydantic stops at ~255 levels). The deep part now comes as JSON text."""
    code = "def main():\n    v = 'bottom'\n    for _ in range(600):\n        v = [v]\n    return {'deep': v, 'flat': 1}"
    run = run_doc(make_doc([{"id": "p", "type": "python", "params": {"code": code}}]))
    assert run.status == "succeeded"
    response = httpx.get(f"{server}/runs/{run.id}", headers=AUTH)
    assert response.status_code == 200
    output = response.json()["tasks"]["p"]["output"]
    assert output["flat"] == 1
    node, depth = output["deep"], 0
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert depth < 600 and json.loads(node) == deep_value(600 - depth)


def test_a_parameter_that_is_not_utf8_is_refused_without_a_traceback(tmp_path: Path) -> None:
    """A shell can pass any bytes as an argument; `-p who=\\xff` is a clear error and queues no run."""
    import subprocess

    from tests.clitools import TASKLOOM, env_for

    home = tmp_path / "home"
    flow = tmp_path / "flow.json"
    flow.write_text(json.dumps(make_doc([{"id": "a", "type": "noop"}], params={"who": {"type": "string"}})))
    done = subprocess.run([TASKLOOM.encode(), b"run", str(flow).encode(), b"-p", b"who=\xff"],
                          env=env_for(home), capture_output=True, timeout=60)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1
    assert "parameter 'who=\\xff' is not UTF-8 text" in stderr
    assert "Traceback" not in stderr
    runs = sqlite3.connect(home / "taskloom.db").execute("SELECT count(*) FROM runs").fetchone()[0]
    assert runs == 0


def test_shquote_keeps_outside_data_from_becoming_shell_syntax(run_doc: Any, tmp_path: Path) -> None:
    """`{{ params.x | shquote }}` passes hostile text to a command as one word, run nothing of it."""
    marker = tmp_path / "pwned"
    hostile = f"'; touch {marker}; echo \"$(touch {marker})\" `touch {marker}` $HOME"
    doc = make_doc([{"id": "echo", "type": "shell",
                     "params": {"command": "printf '%s\\n' {{ params.x | shquote }}"}}],
                   params={"x": {"type": "string"}})
    run = run_doc(doc, {"x": hostile})
    assert run.status == "succeeded"
    assert run.tasks["echo"].output == hostile
    assert not marker.exists()
