"""The HTTP API of the scheduler: workflows, versions, runs and their logs, as JSON.

:func:`create_app` builds a FastAPI app over a Taskloom home. Each request
opens its own :class:`~taskloom.storage.store.Workspace` (cheap: one SQLite
connection) and closes it when the request ends. The API never executes
tasks: a run it starts is *queued* (no owner) and the scheduler process runs
it; ``wake()`` tells the scheduler at once.

Errors are JSON ``{"error": ..., "field": ..., "issues": [...]}`` with a 4xx
status for every mistake a client can make; nothing is stored when a request
fails.

Who may call it (:class:`Authenticate`): with no accounts in the home and no
``--token``, anyone who reaches it (it listens on loopback), as
:data:`~taskloom.core.access.LOCAL_ADMIN`. Otherwise every endpoint but ``GET
/health`` wants ``Authorization: Bearer <token>``: a user's token (``taskloom
tokens create``), acting with that user's role, or the scheduler's single
``--token``, which acts as an admin for scripts. No or a bad token is 401; a
role that may not do what was asked is 403 (each endpoint names its
:class:`~taskloom.core.access.Action`). Webhooks under ``/hooks/``, mounted by
:func:`taskloom.api.hooks.add_hooks`, check their own trigger's token instead.
Every change made through the API is in the audit trail, with the caller's
name and address; so is every refused one.
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator

from fastapi import APIRouter, Depends, FastAPI, Path as PathParam, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from taskloom.core.access import LOCAL_ADMIN, Action, Forbidden, Principal, Role, check
from taskloom.core.errors import UserMistake
from taskloom.storage.plugins import load_registry
from taskloom.core.schema import schema_json
from taskloom.core.validation import MAX_DEPTH, MAX_DOCUMENT_BYTES
from taskloom.storage.accounts import Accounts, LoginRefused
from taskloom.storage.audit import entries as audit_entries
from taskloom.storage.db import write_txn
from taskloom.storage.runs import get_run, iso, list_runs, log_page, search_runs
from taskloom.storage.workflows import NotFound, get_document, get_workflow, list_versions, list_workflows, set_paused
from taskloom.storage.store import Target, UserError, Workspace

from taskloom.api.models import (
    MAX_SERVED_DEPTH, WORKFLOW_SCHEMA_REF, AuditRow, CancelResult, ErrorBody, Health, LogPage, PauseState, RerunRequest, RunDetail,
    RunQueued, RunRequest, RunStatus, RunSummary, SaveResult, VersionSummary, WorkflowDetail, WorkflowDocument,
    WorkflowSummary, printable, servable, too_deep, unstorable_at, workflow_schema_components,
)

__all__ = ["create_app", "ApiError"]

log = logging.getLogger("taskloom.api")

#: Paths served without the API token; webhooks (:func:`taskloom.api.hooks.add_hooks`) check each trigger's own.
OPEN_PATHS = frozenset({"/health"})
OPEN_PREFIXES = ("/hooks/",)
#: Who the API acts as when it cancels a run nobody runs.
CANCEL_OWNER = "api"

_DESCRIPTION = """\
Manage the workflows of a Taskloom home and their runs.

Runs started here are **queued**: the scheduler process executes them.
Errors are JSON: `{"error": "...", "field": "...", "issues": [...]}`.
With accounts (`taskloom users add`) or a `--token`, send `Authorization: Bearer <token>` (all but
`GET /health`): a user's token acts with the user's role (viewer, operator, editor, admin); 401 without
a valid one, 403 when the role may not.
"""

_TAGS = [
    {"name": "system", "description": "Liveness."},
    {"name": "workflows", "description": "Stored workflows, their versions, pausing."},
    {"name": "runs", "description": "Starting, inspecting, cancelling and re-running runs."},
    {"name": "audit", "description": "Who did what (admins only)."},
]


class ApiError(UserMistake):
    """A client mistake: becomes ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def create_app(
    home: str | Path, *, token: str | None = None, wake: Callable[[], None] = lambda: None
) -> FastAPI:
    """The API over the Taskloom home ``home``; ``wake()`` is called whenever a run is queued.

    Opens the database once here (creating and migrating it if needed), so a
    home that cannot be opened fails now with :class:`UserError`, not on the
    first request.
    """
    registry = load_registry()
    Workspace(home, registry=registry).close()
    app = FastAPI(title="Taskloom API", version=taskloom_version(), description=_DESCRIPTION, openapi_tags=_TAGS)
    app.state.home, app.state.registry, app.state.wake = home, registry, wake
    # Added first, so it runs inside Authenticate: a request without a valid token is refused unread.
    app.add_middleware(BodyLimit, limit=MAX_DOCUMENT_BYTES)
    app.add_middleware(Authenticate, home=home, token=token)
    _install_error_handlers(app)
    app.include_router(system)
    # The security dependency only documents the scheme in OpenAPI; Authenticate checks the token.
    app.include_router(
        router, dependencies=[Security(HTTPBearer(auto_error=False))],
        responses={401: {"model": ErrorBody, "description": "Missing, wrong, expired or revoked bearer token"},
                   403: {"model": ErrorBody, "description": "The token's role may not do this"}},
    )
    _add_workflow_schema(app)
    return app


def taskloom_version() -> str:
    try:
        return package_version("taskloom")
    except PackageNotFoundError:
        return "unknown"


# -- auth -----------------------------------------------------------------------


#: Who the scheduler's single ``--token`` acts as: an admin, for scripts.
SERVICE_TOKEN = Principal("service-token", Role.ADMIN, "service-token")


class Authenticate:
    """ASGI middleware: who is calling, for every HTTP request but :data:`OPEN_PATHS` and :data:`OPEN_PREFIXES`.

    The principal goes into ``scope["state"]["principal"]`` for the endpoints' role checks (:func:`allow`).
    As middleware it also covers /docs, /openapi.json and unknown paths: without a valid token a stranger
    learns nothing, not even which paths exist.
    """

    def __init__(self, app: ASGIApp, *, home: str | Path, token: str | None) -> None:
        self.app = app
        self.home = home
        self.token = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websocket scopes carry no path or headers to check
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization")
        scheme, _, credentials = (given or b"").partition(b" ")
        credentials = credentials.strip()
        if given is not None and scheme.lower() == b"bearer" and self.token is not None \
                and hmac.compare_digest(credentials, self.token):
            principal: Principal | str = SERVICE_TOKEN
        else:
            bearer = credentials.decode("utf-8", "replace") if given is not None and scheme.lower() == b"bearer" else None
            principal = await run_in_threadpool(self._look_up, bearer)
        if isinstance(principal, str):
            if given is not None:  # a wrong, revoked or expired token: worth a line in the service's log
                client = scope.get("client") or ("?", 0)
                log.warning("refused %s %s from %s: %s", scope.get("method"), path, client[0], principal)
            response = JSONResponse({"error": principal}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _look_up(self, bearer: str | None) -> Principal | str:
        """The principal of a user's token, LOCAL_ADMIN where nothing is required, else why not (a str)."""
        try:
            ws = Workspace(self.home)
        except UserError as exc:
            return f"cannot check the token: {exc}"
        try:
            accounts = Accounts(ws.db)
            if bearer is None:
                if self.token is None and not accounts.exist():
                    return LOCAL_ADMIN
                return "authentication required: send the header 'Authorization: Bearer <token>'"
            try:
                return accounts.authenticate(bearer)
            except LoginRefused as exc:
                return str(exc)
        finally:
            ws.close()


def caller(request: Request) -> Principal:
    """Who is calling (set by :class:`Authenticate`)."""
    return request.scope.get("state", {}).get("principal", LOCAL_ADMIN)


def where_from(request: Request) -> str:
    """What the audit trail records as the source of a request: ``api`` and the client's address."""
    client = request.client
    return f"api {client.host}" if client else "api"


def allow(action: Action) -> Any:
    """A dependency refusing a caller whose role may not do ``action``: an audit row, then :class:`Forbidden`
    (403, see :func:`_user_mistake`)."""

    def dependency(request: Request, ws: "Ws") -> None:
        try:
            check(ws.acting(), action)
        except Forbidden as exc:  # recorded here; the error handler answers 403 with the role needed
            ws.audit(action.value, f"{request.method} {request.url.path}", workflow=request.path_params.get("name"),
                     result="refused", detail=str(exc))
            raise

    return Depends(dependency)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 and is never handed to the app.

    A declared ``Content-Length`` over the limit is refused before a byte is
    read; a body sent without one (chunked) is read up to the limit, then
    replayed to the app. Webhooks are open to anyone, so without this one
    request could make the server hold any amount in memory. ``POST
    /workflows`` is no exception: a document over the limit gets the same
    413 as any other body (docs/api.md), not a 422 after reading it all.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit():  # HTTP framing keeps the body to this length
            if int(declared) > self.limit:
                size = f"is {int(declared):,} bytes; the limit is {self.limit:,}"
                return await self._refuse(size, scope, receive, send)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(f"is larger than the limit of {self.limit:,} bytes", scope, receive, send)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, size: str, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body {size}; nothing was stored"
        await _error(413, message, field="body")(scope, receive, send)


# -- errors ---------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UserMistake, _user_mistake)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The one error shape: ``{"error": message, ...}``; extras that are None are left out."""
    body = {"error": message, **{k: v for k, v in extra.items() if v is not None}}
    # An error may echo what the client sent; a lone surrogate in it would make the response itself fail.
    return JSONResponse(printable(body), status_code=status, headers=headers)


async def _user_mistake(request: Request, exc: UserMistake) -> JSONResponse:
    """Every user mistake (:mod:`taskloom.core.errors`) as the client's: a 4xx, in this one place.

    :class:`ApiError` carries its status and fields, :class:`NotFound` is 404, any other 422 with its
    ``issues``. The other families (storage, lost ownership, task failure, internal bug) are the
    server's: :func:`_internal_error` logs them and answers 500.
    """
    if isinstance(exc, ApiError):
        return _error(exc.status, str(exc), **exc.extra)
    if isinstance(exc, Forbidden):
        return _error(403, str(exc), needed=exc.needed.label)
    if isinstance(exc, LoginRefused):
        return _error(401, str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, NotFound):
        # The storage messages end with hints for the CLI ("; import one with 'taskloom import FILE'").
        return _error(404, str(exc).split("; ")[0])
    return _error(422, str(exc), issues=[i.to_dict() for i in exc.issues])


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    issues = [_field_issue(e) for e in exc.errors()]
    return _error(422, "invalid request", field=issues[0]["field"] if issues else None, issues=issues)


def _field_issue(error: dict[str, Any]) -> dict[str, str]:
    """One pydantic error as ``{field, message}``: ``("body", "params", "n")`` -> ``"body.params.n"``."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed JSON")
        return {"field": "body", "message": f"invalid JSON at character {error['loc'][-1]}: {reason}"}
    if tuple(error.get("loc", ())) == ("body",) and error.get("type") in ("model_attributes_type", "dict_type"):
        return {"field": "body", "message": "the body must be a JSON object sent with 'Content-Type: application/json'"}
    field = ".".join(str(part) for part in error.get("loc", ()))
    return {"field": field or "request", "message": error.get("msg", "invalid")}


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = {
        # FastAPI's only 400: json.loads raised RecursionError, or ValueError for a number over 4,300 digits
        400: "the body could not be read as JSON (is it nested too deeply, or is a number too long?)",
        404: f"no endpoint {request.url.path}; the API is described at /docs",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    field = "body" if exc.status_code == 400 else None
    return _error(exc.status_code, message, headers=getattr(exc, "headers", None), field=field)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal error; the scheduler's log has the details")


# -- per-request workspace -------------------------------------------------------


def _workspace(request: Request) -> Iterator[Workspace]:
    try:
        ws = Workspace(request.app.state.home, registry=request.app.state.registry)
    except UserError as exc:
        raise ApiError(503, str(exc)) from None
    ws.actor, ws.source = caller(request), where_from(request)
    try:
        yield ws
    finally:
        ws.close()


Ws = Annotated[Workspace, Depends(_workspace)]
WorkflowName = Annotated[str, PathParam(description="The workflow's name.")]
#: SQLite's largest INTEGER: a larger id cannot even be looked up (sqlite3 raises OverflowError).
MAX_ID = 2**63 - 1
RunId = Annotated[int, PathParam(description="The run's id.", ge=1, le=MAX_ID)]

_ERRORS = {404: {"model": ErrorBody, "description": "No such workflow or run"},
           422: {"model": ErrorBody, "description": "Invalid request"}}


def _wake(request: Request) -> None:
    """Tell the scheduler there is work; a failing wake-up must not fail a request whose work is stored."""
    try:
        request.app.state.wake()
    except Exception:
        log.exception("wake() failed; the scheduler will find the run when it next polls")


def _stored_target(ws: Workspace, name: str) -> Target:
    """A stored workflow to run (never a file path, unlike ``Workspace.target``)."""
    return ws.stored_target(name)


# -- system -----------------------------------------------------------------------

system = APIRouter(tags=["system"])


@system.get("/health", response_model=Health, summary="Liveness check (no token needed)")
def health() -> dict[str, Any]:
    """Answers as long as the server runs; touches no database."""
    return {"status": "ok", "version": taskloom_version(), "time": datetime.now(timezone.utc).isoformat()}


# -- workflows -------------------------------------------------------------------

router = APIRouter(responses=_ERRORS)


@router.get("/workflows", response_model=list[WorkflowSummary], tags=["workflows"], summary="List stored workflows",
            dependencies=[allow(Action.VIEW)])
def workflows(ws: Ws) -> list[dict[str, Any]]:
    """Every stored workflow by name, with its current version and its newest run."""
    rows = []
    for info in list_workflows(ws.db):
        last = list_runs(ws.db, info.name, limit=1)
        row = {**info.to_dict(), "created": iso(info.created), "updated": iso(info.updated)}
        rows.append({**row, "last_run": last[0].summary() if last else None})
    return rows


@router.post(
    "/workflows", response_model=SaveResult, status_code=201, tags=["workflows"],
    summary="Store a workflow document (a new workflow or a new version)", dependencies=[allow(Action.SAVE)],
    responses={200: {"model": SaveResult, "description": "Identical to the current version; nothing stored"},
               413: {"model": ErrorBody, "description": "A body over 5 MB; nothing stored"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": WORKFLOW_SCHEMA_REF}}}}},
)
async def save_workflow(
    request: Request, response: Response, ws: Ws,
    message: Annotated[str, Query(max_length=2000, description="A note stored with the new version.")] = "",
) -> dict[str, Any]:
    """The body is a taskloom/v1 document. It becomes version 1 of a new workflow, or the next
    version of the workflow it names. An invalid document stores nothing: 422 with every issue
    as `{path, message, hint}` (`path` is a JSON pointer into the document). A body over 5 MB
    is refused unread with 413."""
    raw = await request.body()  # at most MAX_DOCUMENT_BYTES: BodyLimit refused anything larger
    info, created = await run_in_threadpool(_save, ws, raw, message)
    if not created:
        response.status_code = 200
    return {"name": info.workflow, "version": info.version, "created": created}


def _save(ws: Workspace, raw: bytes, message: str) -> tuple[Any, bool]:
    checked = ws.check(raw, source="the request body")
    with write_txn(ws.db):
        info, created = ws.save(checked, message=message, origin="api")
        ws.audit("save", f"workflow {info.workflow}", workflow=info.workflow, version=info.version,
                 detail="" if created else "identical to the current version; nothing stored")
    return info, created


@router.get("/workflows/{name}", response_model=WorkflowDetail, tags=["workflows"], summary="A workflow's current version",
            dependencies=[allow(Action.VIEW)])
def workflow(name: WorkflowName, ws: Ws) -> dict[str, Any]:
    info = get_workflow(ws.db, name)
    doc = get_document(ws.db, name, info.version)[1]
    return {"name": name, "title": info.title, "version": info.version, "paused": info.paused, "document": doc}


@router.get(
    "/workflows/{name}/versions", response_model=list[VersionSummary], tags=["workflows"],
    summary="A workflow's versions, oldest first", dependencies=[allow(Action.VIEW)],
)
def versions(name: WorkflowName, ws: Ws) -> list[dict[str, Any]]:
    return [
        {"version": v.version, "message": v.message, "created": iso(v.created), "sha256": v.document}
        for v in list_versions(ws.db, name)
    ]


@router.get(
    "/workflows/{name}/versions/{version}", response_model=WorkflowDocument, tags=["workflows"],
    summary="The document of one version", dependencies=[allow(Action.VIEW)],
)
def version_document(
    name: WorkflowName, version: Annotated[int, PathParam(ge=1, le=MAX_ID, description="The version number.")], ws: Ws
) -> dict[str, Any]:
    return get_document(ws.db, name, version)[1]


@router.post("/workflows/{name}/pause", response_model=PauseState, tags=["workflows"], summary="Pause a workflow's triggers",
             dependencies=[allow(Action.PAUSE)])
def pause(name: WorkflowName, request: Request, ws: Ws) -> dict[str, Any]:
    """A paused workflow's triggers do not fire; runs started explicitly still queue."""
    return _set_paused(request, ws, name, True)


@router.post("/workflows/{name}/resume", response_model=PauseState, tags=["workflows"], summary="Resume a paused workflow",
             dependencies=[allow(Action.PAUSE)])
def resume(name: WorkflowName, request: Request, ws: Ws) -> dict[str, Any]:
    """Its triggers fire again from now on; the instants that passed while it was paused are not caught up."""
    return _set_paused(request, ws, name, False)


def _set_paused(request: Request, ws: Workspace, name: str, paused: bool) -> dict[str, Any]:
    with write_txn(ws.db):
        set_paused(ws.db, name, paused)  # NotFound names the stored workflows
        ws.audit("pause" if paused else "resume", f"workflow {name}", workflow=name)
    _wake(request)  # the scheduler plans its next firings anew
    return {"name": name, "paused": paused}


# -- runs -----------------------------------------------------------------------

_PARAM_NAME = re.compile(r"parameter '([^']+)'")


@router.post(
    "/workflows/{name}/runs", response_model=RunQueued, status_code=202, tags=["runs"],
    summary="Queue a run of a workflow's current version", dependencies=[allow(Action.TRIGGER)],
)
def start_run(name: WorkflowName, request: Request, ws: Ws, body: RunRequest | None = None) -> dict[str, Any]:
    """Params are JSON values checked against the workflow's declared params (a missing one takes
    its default). The run is queued for the scheduler; poll `GET /runs/{id}` for its progress."""
    body = body or RunRequest()
    _refuse_unstorable({"params": body.params, "payload": body.payload})
    target = _stored_target(ws, name)
    try:
        with write_txn(ws.db):
            run_id, _ = ws.start_run(target, body.params, from_text=False, trigger="api",
                                     trigger_payload=body.payload)
            ws.audit("trigger", f"run {run_id}", workflow=name, version=target.version)
    except UserError as exc:
        raise _param_error(str(exc)) from None
    _wake(request)
    return {"run_id": run_id, "status": "queued"}


def _refuse_unstorable(parts: dict[str, Any]) -> None:
    """422 for values that parse but cannot be stored and read back as they were: lone surrogates,
    NaN and infinities (see :func:`unstorable_at`), nesting deeper than workflow documents may have."""
    for part, value in parts.items():
        problem = unstorable_at(value, f"body.{part}")
        if problem is not None:
            where, why = problem
            message = f"{where} {why}"
            raise ApiError(422, message, field=where, issues=[{"field": where, "message": message}])
        named = value.items() if part == "params" and isinstance(value, dict) else [(None, value)]
        for name, item in named:
            if too_deep(item, MAX_DEPTH):
                where = f"body.{part}" + (f".{printable(name)}" if name is not None else "")
                message = f"{where} is nested too deep: more than {MAX_DEPTH} levels of arrays and objects"
                raise ApiError(422, message, field=where, issues=[{"field": where, "message": message}])


def _param_error(message: str) -> ApiError:
    """Bad params (one problem a line) as a 422 naming each param."""
    problems = message.splitlines() or [message]
    issues = []
    for problem in problems:
        named = _PARAM_NAME.search(problem)
        issues.append({"field": f"body.params.{named[1]}" if named else "body.params", "message": problem})
    return ApiError(422, "; ".join(problems), field=issues[0]["field"], issues=issues)


@router.get("/runs", response_model=list[RunSummary], tags=["runs"], summary="List runs, newest first",
            dependencies=[allow(Action.VIEW)])
def runs(
    ws: Ws,
    workflow: Annotated[str | None, Query(description="Only this workflow's runs.")] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many runs.")] = 50,
    before_id: Annotated[int | None, Query(
        ge=1, le=MAX_ID, description="Only runs older than this id: pass the last id of a page for the next.")] = None,
) -> list[dict[str, Any]]:
    """Pages by id: for the next page pass the smallest id seen as `before_id`; an empty list is the end."""
    found = search_runs(ws.db, workflow=workflow, status=status, before_id=before_id, limit=limit)
    return [record.summary() for record in found]


@router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"], summary="A run with its tasks and their attempts",
            dependencies=[allow(Action.VIEW)])
def run(run_id: RunId, ws: Ws) -> dict[str, Any]:
    record = get_run(ws.db, run_id, with_attempts=True)
    summary = record.summary()
    extra = {k: summary[k] for k in ("trigger", "logical_time", "duration", "params", "parent_run_id")}
    # Outputs are what tasks returned, at any depth; servable() keeps a very deep one from failing the response.
    return servable({**record.to_json(), **extra, "trigger_payload": record.trigger_payload}, MAX_SERVED_DEPTH + 4)


@router.get("/runs/{run_id}/logs", response_model=LogPage, tags=["runs"], summary="A page of a run's log lines",
            dependencies=[allow(Action.VIEW)])
def logs(
    run_id: RunId,
    ws: Ws,
    task: Annotated[str | None, Query(description="Only this task's lines.")] = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID, description="Only lines after this line id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many lines.")] = 1000,
) -> dict[str, Any]:
    """Lines in the order they were captured. Follow a running run by passing the last line's id
    as `after_id` until `status` is no longer queued or running."""
    record = get_run(ws.db, run_id)
    if task is not None and task not in record.tasks:
        raise ApiError(422, f"run {run_id} has no task {task!r}; its tasks: {', '.join(record.tasks)}", field="query.task")
    # One LIMIT-ed read from an index in id order (never the run's every line, which PostgreSQL would fetch whole).
    page = log_page(ws.db, run_id, task_id=task, after_id=after_id, limit=limit)
    lines = [{**line, "ts": iso(line["ts"])} for line in page.lines]
    return {"run_id": run_id, "status": record.status, "lines": lines,
            "next_after_id": page.last_id if page.has_newer else None}


@router.post("/runs/{run_id}/cancel", response_model=CancelResult, tags=["runs"], summary="Cancel a run",
             dependencies=[allow(Action.CANCEL)])
def cancel(run_id: RunId, request: Request, ws: Ws) -> dict[str, Any]:
    """Asks the run's runner to stop it (running tasks get SIGTERM, then SIGKILL after a grace
    period), or cancels it here when nobody runs it any more. Does not wait for it to stop."""
    record = get_run(ws.db, run_id)  # 404 when missing
    result = ws.request_cancel(run_id, owner=CANCEL_OWNER)
    ws.audit("cancel", f"run {run_id}", workflow=record.workflow, version=record.version, detail=result)
    if result == "requested":
        _wake(request)  # a queued run's cancel is the scheduler's to carry out
    return {"run_id": run_id, "result": result}


@router.post("/runs/{run_id}/rerun", response_model=RunQueued, status_code=202, tags=["runs"],
             summary="Queue a re-run of a run", dependencies=[allow(Action.RERUN)])
def rerun(run_id: RunId, request: Request, ws: Ws, body: RerunRequest | None = None) -> dict[str, Any]:
    """A new run of the same version, params and payload, linked to this one by `parent_run_id`.
    With `from_task` or `failed`, the tasks outside the part re-run keep this run's results."""
    body = body or RerunRequest()
    if body.from_task is not None and body.failed:
        raise ApiError(422, "give from_task or failed, not both", field="body.failed")
    parent = get_run(ws.db, run_id)  # 404 when missing
    try:
        with write_txn(ws.db):
            new_id = ws.rerun(run_id, owner=None, from_task=body.from_task, failed=body.failed)
            ws.audit("rerun", f"run {run_id}", workflow=parent.workflow, version=parent.version,
                     detail=f"as run {new_id}")
    except UserError as exc:
        raise ApiError(422, str(exc), field="body.from_task" if body.from_task is not None else "body.failed") from None
    _wake(request)
    return {"run_id": new_id, "status": "queued"}


# -- audit -----------------------------------------------------------------------


@router.get("/audit", response_model=list[AuditRow], tags=["audit"], summary="The audit trail, newest first",
            dependencies=[allow(Action.AUDIT)])
def audit(
    ws: Ws,
    user: Annotated[str | None, Query(description="Only what this user did.")] = None,
    workflow: Annotated[str | None, Query(description="Only what was done to this workflow.")] = None,
    action: Annotated[str | None, Query(description="Only this action (save, trigger, login, ...).")] = None,
    since: Annotated[datetime | None, Query(description="Only from this time on (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")] = 100,
    before_id: Annotated[int | None, Query(
        ge=1, le=MAX_ID, description="Only rows older than this id: pass the last id of a page for the next.")] = None,
) -> list[dict[str, Any]]:
    """Who did what, when and from where: logins, saves, runs started, cancels, secrets, users. Admins only."""
    start = None if since is None else (since if since.tzinfo else since.replace(tzinfo=timezone.utc)).timestamp()
    return [e.to_dict() for e in audit_entries(ws.db, user=user, workflow=workflow, action=action, since=start,
                                               before_id=before_id, limit=limit)]


# -- OpenAPI ------------------------------------------------------------------------


def _add_workflow_schema(app: FastAPI) -> None:
    """Put the taskloom/v1 JSON Schema into the OpenAPI components, as ``TaskloomWorkflow``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                workflow_schema_components(schema_json(app.state.registry))
            )
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
