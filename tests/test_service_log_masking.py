"""No secret reaches a Taskloom process's own stderr or stdout, whichever library logs it.

Task logs were always masked; the service's log was not: httpx logged every
request URL at INFO, so an API key in a query string appeared in plain text
under ``taskloom scheduler``. These tests run the real scheduler against a real
HTTP server on 127.0.0.1 and grep what the service printed for every form a
secret can take (raw, percent-encoded, form-encoded, JSON-escaped).
"""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from clitools import free_port, query, start, taskloom, wait_for, write_flow
from taskloom.core.masking import KNOWN_SECRETS, KnownSecrets
from taskloom.ui.logmask import MaskedStream

API_TOKEN = "tok en/with+odd&chars-1234"
HOOK_PATH = "hook-path-secret-5678"


def secret_forms(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1]}


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        _Recorder.seen.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # the test's server keeps quiet
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()



def test_the_schedulers_own_log_never_shows_a_secret(home: Path, tmp_path: Path, http_server: str) -> None:
    doc = {
        "format": "taskloom/v1", "name": "leaky",
        "tasks": [
            {"id": "call", "type": "http",
             "params": {"url": f"{http_server}/items", "query": {"api_key": "{{ secrets.API_TOKEN }}"}}},
            {"id": "tell", "type": "notify",
             "params": {"channel": "webhook", "url": http_server + "/hook/{{ secrets.HOOK_PATH }}",
                        "message": "done"}},
        ],
        "edges": [{"from": "call", "to": "tell"}],
    }
    for name, value in (("API_TOKEN", API_TOKEN), ("HOOK_PATH", HOOK_PATH)):
        assert taskloom(home, "secrets", "set", name, input=value).returncode == 0
    assert taskloom(home, "import", write_flow(tmp_path, doc)).returncode == 0
    port = free_port()
    proc = start(home, "scheduler", "--port", str(port), "--token", "t0ken-for-the-api")
    try:
        wait_for(lambda: query(home, "SELECT holder FROM scheduler_lease"), what="the scheduler's lease")
        assert taskloom(home, "trigger", "leaky").returncode == 0
        wait_for(lambda: query(home, "SELECT 1 FROM runs WHERE status = 'succeeded'"), timeout=60, what="the run")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    # the secrets really went over the wire, so a leak had every chance to be logged
    assert any(quote_plus(API_TOKEN) in path or quote(API_TOKEN, safe="") in path for path in _Recorder.seen)
    assert any(HOOK_PATH in path for path in _Recorder.seen)
    printed = out + err
    assert "scheduler started" in printed
    for value in (API_TOKEN, HOOK_PATH):
        for form in secret_forms(value):
            assert form not in printed, f"the scheduler printed the secret as {form!r}:\n{printed}"


def test_masked_stream_masks_log_records_and_lines_split_across_writes() -> None:
    known = KnownSecrets()
    known.remember(["s3cret-value"])
    sink = io.StringIO()
    stream = MaskedStream(sink, known.masker)
    logger = logging.getLogger("taskloom.test.masking")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET http://x/?k=%s failed", "s3cret-value")
        stream.write("half s3cr")
        stream.write("et-value and the rest\n")
        stream.write("no newline yet s3cret-value")
        assert "no newline" not in sink.getvalue()  # held until its line ends, or a flush
        stream.flush()
    finally:
        logger.removeHandler(handler)
    text = sink.getvalue()
    assert "s3cret-value" not in text and "s3cr" not in text
    assert text.count("***") == 3
    assert "GET http://x/?k=*** failed" in text


def test_a_secret_decrypted_by_the_store_is_known_to_the_process(ws) -> None:
    from taskloom.storage.secrets import SecretStore

    value = "remembered on set/9"
    SecretStore(ws.db, ws.home).set("LATER", value)
    masker = KNOWN_SECRETS.masker()
    for form in secret_forms(value):
        assert masker.mask(f"x {form} y") == "x *** y", form
