"""``taskloom ui``: the web app (Streamlit) on a loopback port, with safe settings.

Off loopback the app must have a login: :func:`refuse_open_app` lets it listen
on another address only once the home has accounts (then every page asks for a
password), or with ``--public`` when a proxy in front of it does the login.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from taskloom.ui.cli.common import _Fail, err, open_workspace

__all__ = ["ui", "ui_command", "UI_DEFAULT_PORT", "refuse_open_app"]

UI_DEFAULT_PORT = 8501
APP = Path(__file__).resolve().parent.parent / "web" / "app.py"


def ui_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that serves the app: loopback, no usage statistics, XSRF protection on."""
    return [
        sys.executable, "-m", "taskloom.ui.web.launch", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.enableXsrfProtection", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]


def _has_accounts(home: str | None) -> bool:
    from taskloom.storage.accounts import Accounts

    with open_workspace(home) as ws:
        return Accounts(ws.db).exist()


def refuse_open_app(home: str | None, host: str, *, public: bool = False, also: str = "") -> None:
    """Refuse to serve the app on a non-loopback ``host`` while the home has no accounts (and no ``public``):
    without accounts the app has no login, and anyone who reached it could change and run every workflow."""
    from taskloom.ui.cli.service import _is_loopback

    if _is_loopback(host) or public or _has_accounts(home):
        return
    raise _Fail(
        f"refusing to serve the web app on {host}: this home has no accounts, so the app has no login and anyone"
        " who can reach it could change and run workflows; add an admin first (taskloom users add NAME --role"
        f" admin; the app then asks everyone to log in), or bind 127.0.0.1{also}"
    )


def start_ui(home: str | None, port: int, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Start the app in a child process that sees the same Taskloom home, and ends when this process ends.

    Call it before starting threads: the child is asked (Linux's parent-death
    signal) to get SIGTERM when the thread that started it ends, so that a
    ``taskloom serve`` killed with SIGKILL leaves no web app holding its port.
    """
    env = dict(os.environ)
    if home:
        env["TASKLOOM_HOME"] = str(home)
    return subprocess.Popen(ui_command(port, host), env=env, preexec_fn=_end_with_parent)


def _end_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (best effort where prctl exists)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@click.command("ui")
@click.option("--port", default=UI_DEFAULT_PORT, show_default=True, help="Port of the web app.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs accounts (taskloom users add) or --public.")
@click.option("--public", is_flag=True,
              help="Allow a non-loopback --host without accounts (only behind a proxy that does the login).")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, public: bool) -> None:
    """Serve the designer, workflows, runs and settings pages on http://HOST:PORT."""
    refuse_open_app(ctx.obj["home"], host, public=public, also=" (or pass --public when a proxy in front of it"
                    " does the login)")
    err.print(f"Taskloom app on http://{host}:{port}")
    proc = start_ui(ctx.obj["home"], port, host)
    try:
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        sys.exit(proc.wait())
