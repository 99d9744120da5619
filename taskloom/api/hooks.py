"""Webhook triggers: ``POST /hooks/{workflow}/{trigger_id}`` starts a run with the JSON body as payload.

A webhook trigger authenticates with a bearer token (generated when the
workflow is stored, or read from the secret named in ``token_secret``), or,
when it names a ``secret``, with a GitHub-style HMAC-SHA256 signature of the
raw body in ``X-Hub-Signature-256``. A request that fails authentication
gets 401 and starts nothing, and so does one for a workflow or trigger that
does not exist or is disabled, with the same body: a caller without the
credentials learns nothing, not even which names exist. The reason goes to
the service's log, for the operator.

The hot path. When the scheduler serves this API in its own process (``runs``),
one of its run threads takes the request: it authenticates it, creates the run
owned by this scheduler and runs it, with the workflow parsed once per version
(:meth:`taskloom.runtime.scheduler.Scheduler.serve`); the request passes from
the event loop to that thread and back, and to no other. Otherwise the run is
queued for a scheduler elsewhere. With ``"respond": "run"`` the request waits for the run and returns
its outputs, so a workflow can serve as an HTTP API. The wait holds no thread
and polls nothing: the run's end resolves a future
(:class:`taskloom.storage.runends.RunEnds`), from the run thread when this
process ran it, else from the one watcher of the store's change notices.
Requests share a few open connections to the store instead of opening one each.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from taskloom.core.model import Trigger
from taskloom.core.validation import MAX_DEPTH
from taskloom.api.models import servable, too_deep, unstorable_at
from taskloom.storage.scheduling import webhook_token
from taskloom.storage.secrets import SecretError, SecretStore
from taskloom.core.model import Workflow
from taskloom.storage.runends import RunEnds
from taskloom.storage.db import StorageError
from taskloom.storage.workflows import NotFound, is_paused
from taskloom.storage.store import Target, UserError, Workspace

__all__ = ["add_hooks", "PATH", "RESPOND_TIMEOUT", "REFUSED"]

log = logging.getLogger("taskloom.hooks")

#: How long a ``"respond": "run"`` request waits for its run.
RESPOND_TIMEOUT = 300.0

#: The one answer to every request that is not let in, whatever the reason.
REFUSED = {"error": "unauthorized: no such webhook, or a missing or wrong token or signature"}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _refused(name: str, trigger_id: str, reason: str) -> JSONResponse:
    log.warning("webhook %s/%s refused: %s", name, trigger_id, reason)
    return JSONResponse(REFUSED, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _authorized(ws: Workspace, name: str, trigger: Trigger, headers: Headers, body: bytes) -> str | None:
    """None when the request may fire the trigger, else why not."""
    store = SecretStore(ws.db, ws.home)
    try:
        if trigger.config.get("secret"):
            key = store.get(trigger.config["secret"]).encode()
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            given = headers.get("x-hub-signature-256", "")
            return None if hmac.compare_digest(given, expected) else "bad or missing X-Hub-Signature-256"
        token = store.get(trigger.config["token_secret"]) if trigger.config.get("token_secret") else webhook_token(
            ws.db, name, trigger.id)
    except SecretError as exc:
        return f"the trigger's secret cannot be read: {exc}"
    given = headers.get("authorization", "")
    if not token or not hmac.compare_digest(given, f"Bearer {token}"):
        return "bad or missing bearer token"
    return None


def _payload(body: bytes) -> tuple[Any, str | None]:
    if not body.strip():
        return None, None
    try:
        payload = json.loads(body)
    except RecursionError:
        return None, "the body is nested too deeply"
    except ValueError as exc:  # also an integer literal past Python's 4,300 digits
        return None, "the body is not JSON: " + str(exc).split("; use sys.")[0]
    problem = unstorable_at(payload, "body")
    if problem is not None:  # parses, but could not be stored or read back as it was
        return None, " ".join(problem)
    if too_deep(payload, MAX_DEPTH):  # the API could not serialize the run back
        return None, f"the body is nested too deep: more than {MAX_DEPTH} levels of arrays and objects"
    return payload, None


class _Connections:
    """Open workspaces the webhook requests share: taken for one request's reads and writes, then given back.

    At most :attr:`KEEP` idle ones are kept (a PostgreSQL store's connections
    come from a bounded pool); one that saw a storage error is closed.
    """

    KEEP = 8

    def __init__(self, home: str | Path) -> None:
        self.home = home
        self._idle: list[Workspace] = []
        self._lock = threading.Lock()

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        with self._lock:
            ws = self._idle.pop() if self._idle else None
        if ws is None:
            ws = Workspace(self.home)
        try:
            yield ws
        except (StorageError, UserError):
            ws.close()
            raise
        except BaseException:
            self._give_back(ws)
            raise
        self._give_back(ws)

    def _give_back(self, ws: Workspace) -> None:
        with self._lock:
            if len(self._idle) < self.KEEP:
                self._idle.append(ws)
                return
        ws.close()


class _Queued:
    """Without a scheduler in this process: queue the run for one elsewhere, and watch the store for its end."""

    def __init__(self, home: str | Path, wake: Callable[[], None]) -> None:
        self.run_ends = RunEnds(home)
        self.wake = wake

    def start_now(self, ws: Workspace, target: Target, *, trigger: str, trigger_id: str | None = None,
                  payload: Any = None, expect: bool = False) -> tuple[int, Future[Any] | None]:
        run_id, _ = ws.start_run(target, {}, from_text=False, trigger=trigger, trigger_id=trigger_id,
                                 trigger_payload=payload)
        future = self.run_ends.expect(run_id) if expect else None
        self.wake()
        if future is not None:
            self.run_ends.watch_elsewhere(run_id)
        return run_id, future


#: The webhook endpoint's path; Starlette's default converter: each part is one path segment.
PATH = "/hooks/{workflow}/{trigger_id}"

#: The endpoint's OpenAPI operation, written out: it is served as plain ASGI (:class:`_Endpoint`), not by FastAPI.
OPERATION: dict[str, Any] = {
    "tags": ["webhooks"],
    "summary": "Fire a webhook trigger",
    "description": "Starts a run of WORKFLOW with the JSON body as trigger.payload. The trigger authenticates"
                   " the request itself (its bearer token, or the X-Hub-Signature-256 of the body), not the"
                   " API token.",
    "operationId": "hook_hooks__workflow___trigger_id__post",
    "parameters": [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "title": title}}
        for name, title in (("workflow", "Workflow"), ("trigger_id", "Trigger Id"))
    ],
    "requestBody": {"required": False, "content": {"application/json": {"schema": {}}}},
    "responses": {
        "200": {"description": 'With "respond": "run": the run\'s id, status, error and every task\'s output',
                "content": {"application/json": {"schema": {"type": "object"}}}},
        "202": {"description": "The run is started (or queued): its id",
                "content": {"application/json": {"schema": {"type": "object"}}}},
        **{str(status): {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ErrorBody"}}}} for status, text in (
            (400, "The body is not JSON, or cannot be stored"),
            (401, "No such webhook, or a missing or wrong token or signature (one answer for all)"),
            (409, "The workflow is paused"),
            (413, "The body is over the limit"),
        )},
    },
}


def add_hooks(app: FastAPI, home: str | Path, *, wake: Callable[[], None] = lambda: None, runs: Any = None) -> None:
    """Mount the webhook endpoint on ``app`` (open to callers: each trigger authenticates itself).

    ``runs`` is the scheduler serving this API in the same process
    (:meth:`taskloom.runtime.scheduler.Scheduler.start_now`); without one, runs
    are queued and ``wake`` is called. The endpoint is the router's first
    route, a plain ASGI app: FastAPI's parameter solving and response
    serialization cost about a tenth of a short run's CPU, and it needs neither.
    Errors still reach the app's exception handlers.
    """
    endpoint = _Endpoint(runs if runs is not None else _Queued(home, wake), getattr(runs, "serve", None),
                         _Connections(home))
    app.router.routes.insert(0, Route(PATH, endpoint, methods=["POST"], include_in_schema=False))
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI's, cached after the first call: setting the path again changes nothing
        schema.setdefault("paths", {})[PATH] = {"post": OPERATION}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class _Endpoint:
    """``POST /hooks/{workflow}/{trigger_id}`` as an ASGI app (see the module's docstring for the path it takes)."""

    def __init__(self, starter: Any, serve: Callable[..., Future[Any]] | None, connections: _Connections) -> None:
        self.starter = starter
        self.serve = serve
        self.connections = connections
        self.parsed: dict[tuple[str, int], Workflow] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)  # its body is bounded already (taskloom.api.app.BodyLimit)
        response = await self.respond(request.path_params["workflow"], request.path_params["trigger_id"],
                                      request.headers, await request.body())
        await response(scope, receive, send)

    async def respond(self, name: str, trigger_id: str, headers: Headers, body: bytes) -> Response:
        """The response to one request (the raw body: the HMAC is over it, not over parsed JSON)."""
        if self.serve is not None:  # one run thread authenticates, creates and runs
            started = await asyncio.wrap_future(self.serve(functools.partial(
                _handle_on_run_thread, self.parsed, self.starter, name, trigger_id, headers, body)))
        else:
            started = await run_in_threadpool(_handle_queued, self.connections, self.parsed, self.starter, name,
                                              trigger_id, headers, body)
        if not isinstance(started, tuple):
            return started
        run_id, future = started
        if future is None:
            return JSONResponse({"run_id": run_id, "status": "queued"}, status_code=202)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(future), RESPOND_TIMEOUT)
        except asyncio.TimeoutError:
            self.starter.run_ends.forget(run_id, future)
            answer = {"run_id": run_id, "status": "running", "error": f"still running after {RESPOND_TIMEOUT:g} s"}
        return JSONResponse(servable(answer))


def _handle_queued(connections: _Connections, parsed: dict[tuple[str, int], Workflow], starter: Any, name: str,
                   trigger_id: str, headers: Headers, body: bytes) -> Any:
    """Authenticate and queue the run (on a worker thread): a response, or ``(run_id, future or None)``."""
    with connections.workspace() as ws:
        return _handle(ws, parsed, starter, name, trigger_id, headers, body)


def _handle_on_run_thread(parsed: dict[tuple[str, int], Workflow], starter: Any, name: str, trigger_id: str,
                          headers: Headers, body: bytes, slot: Any, reply: Callable[[Any], None]) -> None:
    """Authenticate, start the run and run it here when there is room (a run thread of the scheduler's):
    ``reply`` gets a response, or ``(run_id, future or None)`` once the run is created."""
    try:
        reply(_handle(slot.get(), parsed, starter, name, trigger_id, headers, body, slot=slot, reply=reply))
    except (StorageError, UserError):
        slot.discard()  # the connection may be broken: the thread's next job opens a new one
        raise


def _handle(ws: Workspace, parsed: dict[tuple[str, int], Workflow], starter: Any, name: str, trigger_id: str,
            headers: Headers, body: bytes, **here: Any) -> Any:
    """Authenticate and start the run: a response, or ``(run_id, future or None)``.

    ``here``: the ``slot`` and ``reply`` of the run thread this is on (:meth:`Scheduler.serve`).
    """
    try:
        target = ws.stored_target(name, parsed=parsed)
    except NotFound:
        return _refused(name, trigger_id, "no such workflow")
    trigger = next((t for t in target.workflow.triggers if t.id == trigger_id and t.type == "webhook"), None)
    if trigger is None or trigger.config.get("enabled", True) is False:
        return _refused(name, trigger_id, "the workflow has no enabled webhook trigger of that id")
    refused = _authorized(ws, name, trigger, headers, body)
    if refused:
        return _refused(name, trigger_id, refused)
    if is_paused(ws.db, name):
        return _error(409, f"workflow {name!r} is paused; resume it with: taskloom resume {name}")
    payload, problem = _payload(body)
    if problem:
        return _error(400, problem, field="body")
    return starter.start_now(ws, target, trigger="webhook", trigger_id=trigger_id, payload=payload,
                             expect=trigger.config.get("respond") == "run", **here)
