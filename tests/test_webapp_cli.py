"""`taskloom serve` and `taskloom ui` listen off loopback only when the web app has a login (the home has accounts).

The refusals run the real console script; nothing may be listening afterwards, the web app's port included
(`serve` refuses before it starts the app). Where the app would start, `start_ui` is replaced, so no test
leaves a server on a public address.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clitools import free_port, taskloom
from taskloom.storage.accounts import Accounts
from taskloom.storage.store import Workspace
from taskloom.ui.cli import webapp
from taskloom.ui.cli.main import cli


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_on_a_public_address_without_accounts_is_refused_and_starts_nothing(home: Path):
    ui_port, api_port = free_port(), free_port()
    done = taskloom(home, "serve", "--host", "0.0.0.0", "--port", str(api_port), "--ui-port", str(ui_port),
                    timeout=60)
    assert done.returncode == 1
    assert "refusing to serve the API on 0.0.0.0" in done.stderr
    assert "taskloom users add NAME --role admin" in done.stderr and "bind 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr
    assert not listening(ui_port) and not listening(api_port)


def test_serve_refuses_a_public_web_app_without_accounts(home: Path):
    ui_port = free_port()
    done = taskloom(home, "serve", "--no-api", "--ui-host", "0.0.0.0", "--ui-port", str(ui_port), timeout=60)
    assert done.returncode == 1
    assert "refusing to serve the web app on 0.0.0.0: this home has no accounts, so the app has no login" in done.stderr
    assert "taskloom users add NAME --role admin" in done.stderr and "or bind 127.0.0.1" in done.stderr
    assert not listening(ui_port)


def test_ui_on_a_public_address_without_accounts_is_refused(home: Path):
    done = taskloom(home, "ui", "--host", "0.0.0.0", "--port", str(free_port()), timeout=60)
    assert done.returncode == 1
    assert "refusing to serve the web app on 0.0.0.0" in done.stderr
    assert "taskloom users add NAME --role admin" in done.stderr and "--public" in done.stderr


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every start_ui call, with a stand-in process that has already ended."""
    calls: list[tuple[Any, ...]] = []

    class Ended:
        def wait(self, timeout: float | None = None) -> int:
            return 0

        def terminate(self) -> None:
            pass

    def fake(home: Any, port: int, host: str = "127.0.0.1") -> Ended:
        calls.append((port, host))
        return Ended()

    monkeypatch.setattr(webapp, "start_ui", fake)
    return calls


def test_ui_on_a_public_address_is_allowed_once_the_home_has_accounts(home: Path, started):
    ws = Workspace(home)
    try:
        Accounts(ws.db).add("ann", "admin", "a long enough password")
    finally:
        ws.close()
    result = CliRunner().invoke(cli, ["--home", str(home), "ui", "--host", "0.0.0.0", "--port", "8599"])
    assert result.exit_code == 0, result.output
    assert started == [(8599, "0.0.0.0")]


def test_ui_public_flag_still_allows_a_proxy_to_do_the_login(home: Path, started):
    result = CliRunner().invoke(cli, ["--home", str(home), "ui", "--host", "0.0.0.0", "--public", "--port", "8598"])
    assert result.exit_code == 0, result.output
    assert started == [(8598, "0.0.0.0")]


def test_the_app_is_started_with_xsrf_protection_on():
    command = webapp.ui_command(8501, "0.0.0.0")
    assert command[command.index("--server.enableXsrfProtection") + 1] == "true"
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    config = (Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text()
    assert "enableXsrfProtection = true" in config

