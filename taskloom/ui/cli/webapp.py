"""``taskloom ui``: the web app (Streamlit) on a loopback port, with safe settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from taskloom.ui.cli.common import _Fail, err

__all__ = ["ui", "ui_command", "UI_DEFAULT_PORT"]

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
              help="Address to bind; anything but loopback needs --public.")
@click.option("--public", is_flag=True, help="Allow a non-loopback --host (put authentication in front of it).")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, public: bool) -> None:
    """Serve the designer, workflows, runs and settings pages on http://HOST:PORT."""
    from taskloom.ui.cli.service import _is_loopback

    if not _is_loopback(host) and not public:
        raise _Fail(f"refusing to serve the app on {host}: it has no login; pass --public if a proxy protects it")
    err.print(f"Taskloom app on http://{host}:{port}")
    proc = start_ui(ctx.obj["home"], port, host)
    try:
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        sys.exit(proc.wait())
