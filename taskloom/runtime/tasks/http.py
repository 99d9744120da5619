"""The ``http`` task type: one HTTP request with httpx; the response is the task's output.

Output: ``{"status", "headers", "json" | "text", "url", "elapsed_ms", "truncated"}``
where ``json`` is the parsed body when the response says it is JSON
(``application/json`` or ``...+json``) and parses, else ``text`` holds it.

Failures follow one rule, so retries are spent only where trying again can
help: connection errors, timeouts, 408, 429 and 5xx are retriable; any other
status outside ``expect_status`` (a 404, a 401...) and mistakes in the
parameters (a missing secret, a bad URL) fail at once with
``retriable=False``.

Why a helper thread: an attempt runs on a runner thread that must end
promptly on cancel and within its timeout, but a blocking socket read does
not look at a :class:`threading.Event`. So the exchange runs on a helper
thread while the attempt's thread watches the cancel event and the deadline
(:func:`call_cancellable`). On either, the sockets of the exchange (collected
through httpcore's ``trace`` extension) are shut down, which wakes the blocked
read at once, and the attempt returns without waiting for the server. The
``notify`` task's webhook and mail delivery use the same machinery.

Secrets never reach the logs through this module: ``auth`` takes the token or
password from the secret store (``ctx.services.secret``), header values are
never logged, and the URL in logs and errors has its password and the values
of credential-looking query parameters (``api_key``, ``token``...) replaced
with ``***``.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from taskloom.core.errors import TaskFailure
from taskloom.core.specs.http import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskServices

__all__ = [
    "run", "RequestSpec", "Reply", "Interrupted", "SpecError", "request_spec", "perform", "call_cancellable",
    "status_expected", "describe_expect", "retriable_status", "status_failure", "safe_url", "excerpt",
    "EXCERPT_CHARS", "USER_AGENT",
]

#: Characters of a response body quoted in an error.
EXCERPT_CHARS = 500

USER_AGENT = "taskloom"

#: How often the attempt's thread looks at the cancel event and the deadline.
POLL_SECONDS = 0.05

#: How long an interrupted helper thread gets to wind down before the attempt returns anyway.
ABORT_GRACE_SECONDS = 0.5

#: Query parameter names whose values are hidden in logs and errors.
_SENSITIVE = re.compile(r"key|token|secret|passw|pwd|signature|^sig$|auth|credential|session", re.IGNORECASE)

_T = TypeVar("_T")


class SpecError(TaskFailure, ValueError):
    """Parameters that cannot make a request; retrying cannot help."""


# -- the request --------------------------------------------------------------------


@dataclass
class RequestSpec:
    """A request ready to send, built from rendered parameters."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None
    has_json: bool = False
    body: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    follow_redirects: bool = True
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @property
    def full_url(self) -> str:
        """``url`` with ``query`` added to the query string it may already have."""
        return str(httpx.URL(self.url).copy_merge_params(self.query)) if self.query else self.url

    @property
    def display(self) -> str:
        """``METHOD url`` with the query, safe for logs and errors."""
        return f"{self.method} {safe_url(self.full_url)}"


def request_spec(params: Mapping[str, Any], services: TaskServices) -> RequestSpec:
    """The request the ``http`` parameters describe; SpecError or LookupError (a missing secret) if none."""
    method = str(params.get("method") or "GET").upper()
    url = str(params.get("url") or "")
    if not re.match(r"^https?://[^\s/?#]+", url, re.IGNORECASE):
        raise SpecError(f"url must be an http:// or https:// address, got {url!r}")
    if "json" in params and params.get("body") is not None:
        raise SpecError("give either 'json' or 'body', not both")
    headers = {str(k): _text(v) for k, v in (params.get("headers") or {}).items()}
    auth = params.get("auth")
    if auth:
        if any(k.lower() == "authorization" for k in headers):
            raise SpecError("give either 'auth' or an Authorization header, not both")
        headers["Authorization"] = _authorization(auth, services)
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = USER_AGENT
    body = params.get("body")
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "text/plain; charset=utf-8"
    return RequestSpec(
        method=method,
        url=url,
        headers=headers,
        query={str(k): _text(v) for k, v in (params.get("query") or {}).items()},
        json=params.get("json"),
        has_json="json" in params,
        body=None if body is None else _text(body),
        timeout=float(params.get("timeout", DEFAULT_TIMEOUT)),
        follow_redirects=bool(params.get("follow_redirects", True)),
        max_response_bytes=int(params.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)),
    )


def _text(value: Any) -> str:
    """A header or query value as text (a one-template value may have rendered to a number or boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _authorization(auth: Mapping[str, Any], services: TaskServices) -> str:
    """The Authorization header value for ``auth``; the credential comes from the secret store."""
    kind = auth.get("type", "bearer")
    secret = services.secret(str(auth.get("secret")))
    if kind == "bearer":
        return f"Bearer {secret}"
    if kind == "basic":
        username = auth.get("username")
        if not username:
            raise SpecError("auth type 'basic' needs a 'username'")
        return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
    raise SpecError(f"auth type must be 'bearer' or 'basic', got {kind!r}")


# -- the response -------------------------------------------------------------------


@dataclass
class Reply:
    """What came back, with the body read (up to the cap)."""

    status: int
    reason: str
    headers: dict[str, str]
    url: str
    content: bytes
    truncated: bool
    elapsed_ms: int
    encoding: str = "utf-8"
    redirects: int = 0

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")

    def is_json(self) -> bool:
        media = self.headers.get("content-type", "").split(";")[0].strip().lower()
        return media == "application/json" or media.endswith("+json")

    def output(self) -> dict[str, Any]:
        """The task output."""
        out: dict[str, Any] = {"status": self.status, "headers": self.headers}
        text = self.text
        if self.is_json() and not self.truncated and text.strip():
            try:
                out["json"] = json.loads(text)
            except ValueError:
                out["text"] = text
        else:
            out["text"] = text
        out.update(url=safe_url(self.url), elapsed_ms=self.elapsed_ms, truncated=self.truncated)
        return out


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body for an error message: whitespace runs collapsed, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def safe_url(url: str) -> str:
    """``url`` without its password and with credential-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SENSITIVE.search(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SENSITIVE.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# -- expected statuses --------------------------------------------------------------


def status_expected(status: int, expect: Any) -> bool:
    """Whether ``status`` is one ``expect_status`` accepts (None: any 2xx)."""
    items = expect if isinstance(expect, list) else ["2xx" if expect is None else expect]
    return any(_matches(status, item) for item in items)


def _matches(status: int, item: Any) -> bool:
    if isinstance(item, int) and not isinstance(item, bool):
        return status == item
    pattern = str(item).strip().lower()
    code = str(status)
    return len(pattern) == 3 and all(p in ("x", c) for p, c in zip(pattern, code))


def describe_expect(expect: Any) -> str:
    """``expect_status`` for people: "2xx", "200 or 404"."""
    items = expect if isinstance(expect, list) else ["2xx" if expect is None else expect]
    return " or ".join(str(i) for i in items)


def retriable_status(status: int) -> bool:
    """Statuses worth another attempt: a timeout (408), rate limiting (429) and server errors (5xx)."""
    return status in (408, 429) or status >= 500


def status_failure(display: str, reply: Reply, expect: Any, output: Any = None) -> AttemptResult:
    """The failed result for a status outside ``expect``: the status, reason and start of the body."""
    body = excerpt(reply.text)
    error = f"{display} returned {reply.status} {reply.reason}".rstrip()
    error += f": {body}" if body else " with an empty body"
    error += f" (expected {describe_expect(expect)}; expect_status sets what counts as success)"
    return AttemptResult(TaskState.FAILED, output=output, error=error, retriable=retriable_status(reply.status))


# -- running with cancel and deadline -----------------------------------------------


@dataclass(frozen=True)
class Interrupted:
    """The work did not finish: ``"cancelled"`` or ``"timed_out"``."""

    reason: str


def call_cancellable(
    work: Callable[[], _T],
    *,
    cancel: threading.Event,
    seconds: float,
    abort: Callable[[], None],
    name: str = "taskloom-io",
) -> _T | Interrupted:
    """Run blocking ``work`` on a helper thread; return its value, re-raise its error, or Interrupted.

    The calling thread waits at most ``seconds`` and notices ``cancel`` within
    :data:`POLL_SECONDS`; then it calls ``abort`` (which should make ``work``
    fail fast, e.g. by shutting its sockets down), gives the helper
    :data:`ABORT_GRACE_SECONDS` to wind down, and returns without it.
    """
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    deadline = time.monotonic() + seconds
    reason = None
    while not done.wait(max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))):
        if cancel.is_set():
            reason = "cancelled"
        elif time.monotonic() >= deadline:
            reason = "timed_out"
        if reason is not None:
            abort()
            done.wait(ABORT_GRACE_SECONDS)
            return Interrupted(reason)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


class SocketBox:
    """Sockets opened by one exchange, so another thread can shut them down (which wakes blocked reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.aborted = threading.Event()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            late = self.aborted.is_set()
        if late:
            _shutdown(sock)

    def abort(self) -> None:
        self.aborted.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's ``trace`` extension: note each new connection's socket."""
        if event.endswith(".complete") and ".connect_" in event:
            stream = info.get("return_value")
            if stream is not None:
                self.add(stream.get_extra_info("socket"))


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


# -- the exchange -------------------------------------------------------------------


class _Stopped(TaskFailure):
    """The exchange was aborted from the attempt's thread."""


def _exchange(spec: RequestSpec, box: SocketBox, seconds: float) -> Reply:
    """Send the request and read the response (on the helper thread)."""
    started = time.monotonic()
    content: dict[str, Any] = {}
    if spec.has_json:
        content["json"] = spec.json
    elif spec.body is not None:
        content["content"] = spec.body.encode("utf-8")
    with httpx.Client(timeout=httpx.Timeout(seconds), follow_redirects=spec.follow_redirects) as client:
        with client.stream(
            spec.method, spec.full_url, headers=spec.headers,
            extensions={"trace": box.trace}, **content,
        ) as response:
            body, truncated = _read_capped(response, spec.max_response_bytes, box.aborted)
            return Reply(
                status=response.status_code,
                reason=response.reason_phrase,
                headers=_headers(response.headers),
                url=str(response.url),
                content=body,
                truncated=truncated,
                elapsed_ms=round((time.monotonic() - started) * 1000),
                encoding=response.charset_encoding or "utf-8",
                redirects=len(response.history),
            )


def _read_capped(response: httpx.Response, limit: int, stop: threading.Event) -> tuple[bytes, bool]:
    """The body up to ``limit`` bytes, and whether there was more; stops between chunks when asked."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if stop.is_set():
            raise _Stopped()
        room = limit - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _headers(headers: httpx.Headers) -> dict[str, str]:
    """Lowercased names; repeated headers joined with ", "."""
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def perform(spec: RequestSpec, ctx: AttemptContext) -> Reply | AttemptResult:
    """Send ``spec``, honouring ``ctx.cancel`` and ``ctx.timeout``; log one "system" line.

    Returns the reply (whatever its status), or the failed/cancelled/timed-out
    attempt result when no response came.
    """
    task_bound = ctx.timeout < spec.timeout
    seconds = max(0.001, min(spec.timeout, ctx.timeout))
    box = SocketBox()
    started = time.monotonic()
    try:
        result = call_cancellable(
            lambda: _exchange(spec, box, seconds), cancel=ctx.cancel, seconds=seconds, abort=box.abort,
            name=f"http-{ctx.task_id}",
        )
    except Exception as exc:  # noqa: BLE001 - every transport error is described, none escapes
        if ctx.cancel.is_set():
            result = Interrupted("cancelled")
        elif task_bound and isinstance(exc, httpx.TimeoutException):
            result = Interrupted("timed_out")  # the task's timeout, reached by httpx a moment before us
        else:
            failed = _transport_failure(spec, exc, seconds)
            ctx.log("system", f"{spec.display} failed after {_ms(started)} ms: {failed.error}")
            return failed
    if isinstance(result, Interrupted):
        return _interrupted(spec, result, seconds, task_bound, ctx, started)
    moved = f", redirected to {safe_url(result.url)}" if result.redirects else ""
    size = f"{len(result.content)} bytes" + (", truncated" if result.truncated else "")
    ctx.log("system", f"{spec.display} -> {result.status} {result.reason} in {result.elapsed_ms} ms ({size}{moved})")
    return result


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _interrupted(
    spec: RequestSpec, why: Interrupted, seconds: float, task_bound: bool, ctx: AttemptContext, started: float
) -> AttemptResult:
    if why.reason == "cancelled":
        ctx.log("system", f"{spec.display} cancelled after {_ms(started)} ms")
        return AttemptResult(TaskState.CANCELLED, error="cancelled")
    if task_bound:
        ctx.log("system", f"{spec.display} stopped by the task's timeout after {_ms(started)} ms")
        return AttemptResult(TaskState.TIMED_OUT, error=f"timed out after {seconds:g} s (the task's timeout)")
    error = (
        f"{spec.display} timed out: no complete response within {seconds:g} s"
        " (raise the 'timeout' parameter if the server is just slow)"
    )
    ctx.log("system", f"{spec.display} timed out after {_ms(started)} ms")
    return AttemptResult(TaskState.FAILED, error=error)


def _transport_failure(spec: RequestSpec, exc: Exception, seconds: float) -> AttemptResult:
    """A request that got no response: retriable unless the request itself is at fault."""
    cause = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return AttemptResult(
            TaskState.FAILED,
            error=f"{spec.display} timed out: no response within {seconds:g} s ({cause};"
            " raise the 'timeout' parameter if the server is just slow)",
        )
    if isinstance(exc, httpx.ConnectError):
        return AttemptResult(
            TaskState.FAILED,
            error=f"{spec.display} could not connect: {cause} (is the server up, and the host and port right?)",
        )
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.TooManyRedirects)):
        return AttemptResult(TaskState.FAILED, error=f"{spec.display} cannot be sent: {cause}", retriable=False)
    if isinstance(exc, (httpx.TransportError, _Stopped)):
        return AttemptResult(TaskState.FAILED, error=f"{spec.display} failed: {type(exc).__name__}: {cause}")
    if isinstance(exc, (ValueError, TypeError, UnicodeError)):
        return AttemptResult(
            TaskState.FAILED, error=f"{spec.display} cannot be sent: {type(exc).__name__}: {cause}", retriable=False
        )
    return AttemptResult(TaskState.FAILED, error=f"{spec.display} failed: {type(exc).__name__}: {cause}")


# -- the task -----------------------------------------------------------------------


def run(ctx: AttemptContext) -> AttemptResult:
    """Send the request; succeed with the response when its status is expected."""
    try:
        spec = request_spec(ctx.params, ctx.services)
    except (SpecError, LookupError) as exc:
        return AttemptResult(TaskState.FAILED, error=_message(exc), retriable=False)
    reply = perform(spec, ctx)
    if isinstance(reply, AttemptResult):
        return reply
    output = reply.output()
    expect = ctx.params.get("expect_status")
    if not status_expected(reply.status, expect):
        return status_failure(spec.display, reply, expect, output)
    return AttemptResult(TaskState.SUCCEEDED, output=output)


def _message(exc: Exception) -> str:
    """A LookupError's text without the quotes KeyError-style exceptions add."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
