"""Commands for the scheduler service: ``scheduler``, ``serve``, ``trigger``, ``pause``, ``webhooks``."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import click
from rich.markup import escape

from taskloom.core.errors import UserMistake
from taskloom.core.params import parse_assignments
from taskloom.storage.db import StorageError, sqlite_version_note, write_txn
from taskloom.storage.scheduling import api_address, record_api_address, wake_scheduler, webhook_token
from taskloom.storage.workflows import NotFound, set_paused
from taskloom.storage.store import UserError

from taskloom.ui.cli.common import (
    _Fail, _print_json, _workspace, err, executor_options, open_executor, open_workspace, out,
)
from taskloom.ui.logmask import mask_process_output

__all__ = ["scheduler", "serve", "trigger", "pause", "webhooks", "unpause_workflow", "API_DEFAULT_PORT"]

API_DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service_options(function: Any) -> Any:
    for option in reversed([
        click.option("--host", default="127.0.0.1", show_default=True, help="Address of the REST API."),
        click.option("--port", default=API_DEFAULT_PORT, show_default=True, help="Port of the REST API."),
        click.option("--token", envvar="TASKLOOM_API_TOKEN", help="Bearer token the API requires (needed off loopback)."),
        click.option("--no-api", is_flag=True, help="Fire and run workflows without serving the REST API."),
        click.option("--lease-ttl", default=5.0, show_default=True, help="Seconds a standby waits before taking over."),
        click.option("--misfire-grace", default=60.0, show_default=True,
                     help="Seconds a firing may be late and still run; older instants count as missed."),
        click.option("--max-runs", type=click.IntRange(min=1), default=None,
                     help="Runs this process executes at once; more wait queued for any scheduler  [default: no limit]"),
    ]):
        function = option(function)
    return executor_options(function)


@click.command()
@_service_options
@click.pass_context
def scheduler(ctx: click.Context, host: str, port: int, token: str | None, no_api: bool, lease_ttl: float,
              misfire_grace: float, max_runs: int | None, executor: str | None, dask_address: str | None) -> None:
    """Fire workflows on time and on events and run them, with the REST API on HOST:PORT.

    Start several on one database (on one host, or on several sharing a
    PostgreSQL store) for a hot standby: only one fires at a time, the others
    take over within seconds when it dies, and all of them run queued runs, up
    to --max-runs each. SIGTERM stops cleanly
    (runs are interrupted and resume on the next start); it notices what other
    processes record (a queued run, a cancel) by itself, and SIGUSR1 still wakes it at once.
    """
    with open_executor(executor, dask_address) as where:
        _serve(ctx.obj["home"], host, port, token, no_api, lease_ttl, misfire_grace, where, max_runs)


@click.command()
@_service_options
@click.option("--ui-port", default=8501, show_default=True, help="Port of the web app.")
@click.option("--ui-host", default="127.0.0.1", show_default=True,
              help="Address of the web app; anything but loopback needs accounts (taskloom users add).")
@click.option("--no-ui", is_flag=True, help="Do not serve the web app.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, token: str | None, no_api: bool, lease_ttl: float,
          misfire_grace: float, max_runs: int | None, executor: str | None, dask_address: str | None, ui_port: int,
          ui_host: str, no_ui: bool) -> None:
    """Everything: the scheduler, the REST API and the web app (designer, workflows, runs, settings)."""
    from taskloom.ui.cli.webapp import refuse_open_app, start_ui

    # both refusals before anything starts: a refused serve leaves no web app behind
    _refuse_open_api(ctx.obj["home"], host, token, no_api)
    if not no_ui:
        refuse_open_app(ctx.obj["home"], ui_host)
    app = None if no_ui else start_ui(ctx.obj["home"], ui_port, ui_host)
    if app is not None:
        err.print(f"web app on http://{ui_host}:{ui_port}")
    try:
        with open_executor(executor, dask_address) as where:
            _serve(ctx.obj["home"], host, port, token, no_api, lease_ttl, misfire_grace, where, max_runs)
    finally:
        if app is not None:
            app.terminate()
            try:
                app.wait(timeout=10)
            except Exception:
                app.kill()


def _has_accounts(home: str | None) -> bool:
    """Whether the home has accounts (then the API asks every caller for a user's token)."""
    from taskloom.storage.accounts import Accounts

    with open_workspace(home) as ws:
        return Accounts(ws.db).exist()


def _refuse_open_api(home: str | None, host: str, token: str | None, no_api: bool) -> None:
    if not no_api and not _is_loopback(host) and not token and not _has_accounts(home):
        raise _Fail(
            f"refusing to serve the API on {host} with no accounts and no token: anyone who can reach it could"
            " run workflows; add an admin (taskloom users add NAME --role admin) and give each script a token"
            " (taskloom tokens create --user NAME), or pass --token (or set TASKLOOM_API_TOKEN), or bind 127.0.0.1"
        )


def _serve(home: str | None, host: str, port: int, token: str | None, no_api: bool, lease_ttl: float,
           misfire_grace: float, executor: Any = None, max_runs: int | None = None) -> None:
    from taskloom.runtime.scheduler import Scheduler
    from taskloom.storage.home import resolve_home

    _refuse_open_api(home, host, token, no_api)
    mask_process_output(stdout=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    note = sqlite_version_note()
    if note:
        logging.getLogger("taskloom.scheduler").warning(note)
    _check_database(resolve_home(home))
    service = Scheduler(resolve_home(home), lease_ttl=lease_ttl, grace=misfire_grace, executor=executor,
                        max_runs=max_runs)
    if executor is not None and executor.name == "local":
        threading.Thread(target=executor.pool.prestart, name="warm-workers", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    signal.signal(signal.SIGUSR1, lambda *_: service.wake())
    server = None if no_api else _start_api(resolve_home(home), host, port, token, service.wake, service)
    url = _record_api(resolve_home(home), server)
    where = "" if executor is None or executor.name == "local" else f"; tasks run on Dask at {executor.address}"
    err.print(f"scheduler started (pid {os.getpid()})" + ("" if url is None else f"; API on {url}")
              + where)
    try:
        service.run()
    except (StorageError, UserError) as exc:  # the database failed before the loop could start
        raise _Fail(f"the scheduler stopped: {exc}") from None
    finally:
        if server is not None:
            server.should_exit = True


def _check_database(home: Any) -> None:
    """Refuse to start on a database this process cannot write (read-only, full), naming its path.

    Once running, the scheduler rides out storage errors (it logs them and
    tries again); at start there is nothing to keep alive, and a clear refusal
    is what a service manager and its user can act on.
    """
    from taskloom.storage.store import Workspace

    try:
        ws = Workspace(home)
    except UserError as exc:
        raise _Fail(f"the scheduler cannot start: {exc}") from None
    try:
        ws.check_writable()
    except UserError as exc:
        raise _Fail(f"the scheduler cannot start: {exc}") from None
    finally:
        ws.close()


def _start_api(home: Any, host: str, port: int, token: str | None, wake: Any, runs: Any = None) -> Any:
    import uvicorn

    from taskloom.api.app import create_app
    from taskloom.api.hooks import add_hooks

    app = create_app(home, token=token, wake=wake)
    add_hooks(app, home, wake=wake, runs=runs)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="taskloom-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise _Fail(f"the API could not listen on {host}:{port} (is the port taken?); pass --port or --no-api")
        time.sleep(0.02)
    return server


def _record_api(home: Any, server: Any) -> str | None:
    """Store the address the API really listens on (or that there is none), for ``taskloom webhooks``; return it."""
    from taskloom.storage.store import Workspace

    url = None
    if server is not None:
        bound, port = server.servers[0].sockets[0].getsockname()[:2]
        url = f"http://{f'[{bound}]' if ':' in bound else bound}:{port}"
    ws = Workspace(home)
    try:
        record_api_address(ws.db, url)
    finally:
        ws.close()
    return url


@click.command()
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Set a declared param (repeatable).")
@click.pass_context
def trigger(ctx: click.Context, name: str, params: tuple[str, ...]) -> None:
    """Run NAME now through the scheduler (it must be running): queue the run and wake the scheduler.

    Exit status 1 when no scheduler is running; the run stays queued and
    starts when one does.
    """
    with _workspace(ctx) as ws:
        try:
            with write_txn(ws.db):
                run_id, _ = ws.start_run(ws.target(name), parse_assignments(list(params)), trigger="manual")
                ws.audit("trigger", f"run {run_id}", workflow=name)
        except UserMistake as exc:  # bad params, no such workflow
            raise _Fail(exc) from None
        running = wake_scheduler(ws.db)
    if not running:
        raise _Fail(f"run {run_id} of {name} is queued, but no scheduler is running to start it;"
                    " start one with 'taskloom scheduler' (or 'taskloom serve')")
    out.print(escape(f"run {run_id} of {name} queued"))


def _set_paused(ctx: click.Context, name: str, paused: bool) -> None:
    with _workspace(ctx) as ws:
        try:
            with write_txn(ws.db):
                set_paused(ws.db, name, paused)
                ws.audit("pause" if paused else "resume", f"workflow {name}", workflow=name)
        except NotFound as exc:
            raise _Fail(str(exc)) from None
        wake_scheduler(ws.db)
    out.print(escape(f"{name} {'paused' if paused else 'resumed'}"))


@click.command()
@click.argument("name")
@click.pass_context
def pause(ctx: click.Context, name: str) -> None:
    """Stop firing NAME's triggers (runs started by hand still run); undo with taskloom resume NAME."""
    _set_paused(ctx, name, True)


def unpause_workflow(ctx: click.Context, name: str) -> None:
    """``taskloom resume NAME``: fire NAME's triggers again (instants while paused are not caught up)."""
    _set_paused(ctx, name, False)


@click.command()
@click.argument("name")
@click.option("--base-url", default=None,
              help="Where the API is reached (default: where the running scheduler serves it).")
@click.option("--json", "as_json", is_flag=True, help="Print [{trigger, url, token, auth}].")
@click.pass_context
def webhooks(ctx: click.Context, name: str, base_url: str | None, as_json: bool) -> None:
    """Print the URL and token of each webhook trigger of NAME.

    The URLs use the address the running scheduler's API listens on; with no
    scheduler running, the default address (and a note saying so).
    """
    with _workspace(ctx) as ws:
        try:
            workflow = ws.target(name).workflow
        except UserError as exc:
            raise _Fail(exc) from None
        served = base_url or api_address(ws.db)
        base_url = served or f"http://127.0.0.1:{API_DEFAULT_PORT}"
        rows = []
        for trig in workflow.triggers:
            if trig.type != "webhook":
                continue
            secret = trig.config.get("secret")
            auth = f"HMAC signature with secret {secret}" if secret else (
                f"bearer token from secret {trig.config['token_secret']}" if "token_secret" in trig.config else "bearer token")
            rows.append({"trigger": trig.id, "url": f"{base_url.rstrip('/')}/hooks/{name}/{trig.id}",
                         "token": None if secret or "token_secret" in trig.config else webhook_token(ws.db, name, trig.id),
                         "auth": auth})
    if rows and not served:
        err.print(escape(f"no running scheduler serves the API; the URLs use the default address {base_url}"
                         " (start one with taskloom scheduler, or pass --base-url)"))
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print(escape(f"{name} has no webhook trigger"))
    for row in rows:
        out.print(f"[bold]{escape(row['trigger'])}[/]: POST {escape(row['url'])}")
        out.print(escape(f"    {row['auth']}" + (f": Authorization: Bearer {row['token']}" if row["token"] else "")))
