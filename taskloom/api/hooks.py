"""Webhook triggers: ``POST /hooks/{workflow}/{trigger_id}`` starts a run with the JSON body as payload.

A webhook trigger authenticates with a bearer token (generated when the
workflow is stored, or read from the secret named in ``token_secret``), or,
when it names a ``secret``, with a GitHub-style HMAC-SHA256 signature of the
raw body in ``X-Hub-Signature-256``. A request that fails authentication
gets 401 and starts nothing, and so does one for a workflow or trigger that
does not exist or is disabled, with the same body: a caller without the
credentials learns nothing, not even which names exist. The reason goes to
the service's log, for the operator. The run is queued for the scheduler; with
``"respond": "run"`` the request waits for it and returns its outputs, so a
workflow can serve as an HTTP API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from taskloom.core.model import Trigger
from taskloom.core.validation import MAX_DEPTH
from taskloom.api.models import servable, too_deep, unstorable_at
from taskloom.storage.scheduling import webhook_token
from taskloom.storage.secrets import SecretError, SecretStore
from taskloom.core.model import Workflow
from taskloom.storage.workflows import NotFound, get_document, is_paused
from taskloom.storage.store import Target, Workspace

__all__ = ["add_hooks", "RESPOND_TIMEOUT", "REFUSED"]

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


def _authorized(ws: Workspace, name: str, trigger: Trigger, request: Request, body: bytes) -> str | None:
    """None when the request may fire the trigger, else why not."""
    store = SecretStore(ws.db, ws.home)
    try:
        if trigger.config.get("secret"):
            key = store.get(trigger.config["secret"]).encode()
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            given = request.headers.get("x-hub-signature-256", "")
            return None if hmac.compare_digest(given, expected) else "bad or missing X-Hub-Signature-256"
        token = store.get(trigger.config["token_secret"]) if trigger.config.get("token_secret") else webhook_token(
            ws.db, name, trigger.id)
    except SecretError as exc:
        return f"the trigger's secret cannot be read: {exc}"
    given = request.headers.get("authorization", "")
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


def _wait_for(ws: Workspace, run_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ws.run(run_id)
        if run.status not in ("queued", "running"):
            return servable({"run_id": run_id, "status": run.status, "error": run.error,
                             "outputs": {t: r.output for t, r in run.tasks.items()}})
        time.sleep(0.05)
    return {"run_id": run_id, "status": "running", "error": f"still running after {timeout:g} s"}


def add_hooks(app: FastAPI, home: str | Path, *, wake: Callable[[], None] = lambda: None) -> None:
    """Mount the webhook endpoint on ``app`` (open to callers: each trigger authenticates itself)."""

    @app.post("/hooks/{workflow}/{trigger_id}", tags=["webhooks"], summary="Fire a webhook trigger",
              description="Starts a run of WORKFLOW with the JSON body as trigger.payload.")
    async def hook(workflow: str, trigger_id: str, request: Request) -> Any:
        body = await request.body()  # the raw bytes: the HMAC is over them, not over parsed JSON
        return await run_in_threadpool(_handle, home, workflow, trigger_id, request, body, wake)


def _handle(home: Any, name: str, trigger_id: str, request: Request, body: bytes, wake: Callable[[], None]) -> Any:
    ws = Workspace(home)
    try:
        try:
            info, doc = get_document(ws.db, name)
        except NotFound:
            return _refused(name, trigger_id, "no such workflow")
        target = Target(doc, Workflow.from_document(doc), info.version, "store", info.folder)
        trigger = next((t for t in target.workflow.triggers if t.id == trigger_id and t.type == "webhook"), None)
        if trigger is None or trigger.config.get("enabled", True) is False:
            return _refused(name, trigger_id, "the workflow has no enabled webhook trigger of that id")
        refused = _authorized(ws, name, trigger, request, body)
        if refused:
            return _refused(name, trigger_id, refused)
        if is_paused(ws.db, name):
            return _error(409, f"workflow {name!r} is paused; resume it with: taskloom resume {name}")
        payload, problem = _payload(body)
        if problem:
            return _error(400, problem, field="body")
        run_id, _ = ws.start_run(
            target, {}, from_text=False, trigger="webhook", trigger_id=trigger_id, trigger_payload=payload
        )
        wake()
        if trigger.config.get("respond") == "run":
            return _wait_for(ws, run_id, RESPOND_TIMEOUT)
        return JSONResponse({"run_id": run_id, "status": "queued"}, status_code=202)
    finally:
        ws.close()
