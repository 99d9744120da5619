"""The ``notify`` task type: a message to a webhook, by email, or to the run's log.

* ``log`` writes the message as "stdout" lines of the task: the channel for
  demos, tests and workflows whose logs are watched anyway.
* ``webhook`` POSTs ``payload`` (default ``{"text": message}``, which Slack
  and its look-alikes accept) with the ``http`` task's machinery, so the same
  rules apply: a 4xx other than 408/429 fails at once, connection errors,
  timeouts, 429 and 5xx are retried.
* ``email`` sends through the SMTP server of the configuration
  (``smtp.host``, ``smtp.port``, ``smtp.username``, ``smtp.from``,
  ``smtp.starttls``, ``smtp.ssl``, ``smtp.timeout``), logging in with the
  password kept in the secret that ``smtp.password_secret`` names. SMTP
  settings belong to the machine, not to each workflow, and a password never
  belongs in a document.

Output: ``{"channel", "delivered": true, ...}`` plus the status (webhook) or
the recipients (email).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from taskloom.core.specs.notify import DEFAULT_SUBJECT
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskServices
from taskloom.runtime.tasks.http import (
    Interrupted, SocketBox, SpecError, call_cancellable, perform, request_spec, safe_url, status_expected,
    status_failure,
)

__all__ = ["run", "SmtpSettings", "smtp_settings", "build_email", "addresses", "WEBHOOK_TIMEOUT"]

#: Seconds a webhook may take (also capped by the task's timeout).
WEBHOOK_TIMEOUT = 30.0


def run(ctx: AttemptContext) -> AttemptResult:
    """Deliver the message on its channel."""
    channel = ctx.params.get("channel") or "log"
    message = str(ctx.params.get("message", ""))
    try:
        if channel == "log":
            return _to_log(ctx, message)
        if channel == "webhook":
            return _to_webhook(ctx, message)
        if channel == "email":
            return _by_email(ctx, message)
    except (SpecError, LookupError) as exc:
        return AttemptResult(TaskState.FAILED, error=_text(exc), retriable=False)
    return AttemptResult(
        TaskState.FAILED, error=f"unknown channel {channel!r}; use 'webhook', 'email' or 'log'", retriable=False
    )


def _text(exc: Exception) -> str:
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)


# -- log ----------------------------------------------------------------------------


def _to_log(ctx: AttemptContext, message: str) -> AttemptResult:
    for line in message.splitlines() or [""]:
        ctx.log("stdout", line)
    return AttemptResult(TaskState.SUCCEEDED, output={"channel": "log", "delivered": True, "message": message})


# -- webhook ------------------------------------------------------------------------


def _to_webhook(ctx: AttemptContext, message: str) -> AttemptResult:
    params = ctx.params
    payload = params.get("payload")
    spec = request_spec(
        {
            "method": "POST",
            "url": params.get("url"),
            "headers": params.get("headers") or {},
            "json": {"text": message} if payload is None else payload,
            "timeout": WEBHOOK_TIMEOUT,
        },
        ctx.services,
    )
    reply = perform(spec, ctx)
    if isinstance(reply, AttemptResult):
        return reply
    if not status_expected(reply.status, None):
        return status_failure(spec.display, reply, None)
    return AttemptResult(
        TaskState.SUCCEEDED,
        output={"channel": "webhook", "delivered": True, "status": reply.status, "url": safe_url(spec.url)},
    )


# -- email --------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send mail, from the configuration."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_settings(services: TaskServices) -> SmtpSettings:
    """The SMTP settings of the configuration; SpecError (or LookupError for the secret) says what to set."""
    host = services.config("smtp.host")
    if not host:
        raise SpecError(
            "channel 'email' needs an SMTP server, and smtp.host is not set;"
            " set it with: taskloom config set smtp.host HOST"
        )
    username = services.config("smtp.username") or None
    secret_name = services.config("smtp.password_secret") or None
    if username and not secret_name:
        raise SpecError(
            f"smtp.username is {username!r} but smtp.password_secret is not set; store the password with:"
            " taskloom secrets set SMTP_PASSWORD, then: taskloom config set smtp.password_secret SMTP_PASSWORD"
        )
    if secret_name and not username:
        raise SpecError("smtp.password_secret is set but smtp.username is not; set it with:"
                        " taskloom config set smtp.username NAME")
    use_ssl = bool(services.config("smtp.ssl", False))
    return SmtpSettings(
        host=str(host),
        port=int(services.config("smtp.port", 465 if use_ssl else 25)),
        sender=str(services.config("smtp.from", "taskloom@localhost")),
        username=username,
        password=services.secret(secret_name) if secret_name else None,
        starttls=bool(services.config("smtp.starttls", False)),
        ssl=use_ssl,
        timeout=float(services.config("smtp.timeout", 30)),
    )


def addresses(value: Any) -> list[str]:
    """``to``/``cc`` as a list: one address, a list, or text with commas."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(a).strip() for a in items if str(a).strip()]


def build_email(settings: SmtpSettings, to: list[str], cc: list[str], subject: str, message: str) -> EmailMessage:
    """The message: plain text, UTF-8."""
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Subject"] = " ".join(subject.split())  # no line breaks in a header
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or "taskloom.localhost")
    mail.set_content(message)
    return mail


def _by_email(ctx: AttemptContext, message: str) -> AttemptResult:
    params = ctx.params
    to, cc = addresses(params.get("to")), addresses(params.get("cc"))
    if not to:
        raise SpecError("channel 'email' needs 'to': a recipient address or a list of them")
    settings = smtp_settings(ctx.services)
    subject = str(params.get("subject") or DEFAULT_SUBJECT)
    try:
        mail = build_email(settings, to, cc, subject, message)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"cannot build the email: {exc}") from None
    recipients = to + cc
    seconds = max(0.001, min(settings.timeout, ctx.timeout))
    box = SocketBox()
    started = time.monotonic()
    what = f"email {subject!r} to {', '.join(recipients)} via {settings.server}"
    try:
        refused = call_cancellable(
            lambda: _deliver(settings, mail, recipients, seconds, box), cancel=ctx.cancel, seconds=seconds,
            abort=box.abort, name=f"smtp-{ctx.task_id}",
        )
    except Exception as exc:  # noqa: BLE001 - every SMTP error is described, none escapes
        if ctx.cancel.is_set():
            refused = Interrupted("cancelled")
        elif ctx.timeout < settings.timeout and _is_timeout(exc):
            refused = Interrupted("timed_out")  # the task's timeout, reached by the socket a moment before us
        else:
            failed = _smtp_failure(settings, exc, seconds)
            ctx.log("system", f"{what} failed after {_ms(started)} ms: {failed.error}")
            return failed
    if isinstance(refused, Interrupted):
        ctx.log("system", f"{what} {refused.reason.replace('_', ' ')} after {_ms(started)} ms")
        if refused.reason == "cancelled":
            return AttemptResult(TaskState.CANCELLED, error="cancelled")
        if ctx.timeout < settings.timeout:
            return AttemptResult(TaskState.TIMED_OUT, error=f"timed out after {seconds:g} s (the task's timeout)")
        return AttemptResult(
            TaskState.FAILED,
            error=f"SMTP server {settings.server} did not finish within {seconds:g} s (smtp.timeout)",
        )
    ctx.log("system", f"{what} accepted in {_ms(started)} ms")
    output: dict[str, Any] = {
        "channel": "email", "delivered": True, "to": to, "cc": cc, "recipients": recipients, "subject": subject,
    }
    if refused:
        output["refused"] = {addr: f"{code} {_decode(text)}" for addr, (code, text) in refused.items()}
        ctx.log("system", f"the server refused some recipients: {output['refused']}")
    return AttemptResult(TaskState.SUCCEEDED, output=output)


class _Tracked:
    """Puts the connection's socket in a :class:`SocketBox` as soon as it exists (before the greeting)."""

    def __init__(self, box: SocketBox, *args: Any, **kwargs: Any) -> None:
        self.box = box
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]  # connects

    def _get_socket(self, host: str, port: int, timeout: float):  # type: ignore[no-untyped-def]
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.box.add(sock)
        return sock


class _SMTP(_Tracked, smtplib.SMTP):
    pass


class _SMTP_SSL(_Tracked, smtplib.SMTP_SSL):
    pass


def _deliver(settings: SmtpSettings, mail: EmailMessage, recipients: list[str], seconds: float, box: SocketBox):
    """One SMTP conversation (on the helper thread); the recipients the server refused, if some were."""
    context = ssl.create_default_context()
    if settings.ssl:
        client: smtplib.SMTP = _SMTP_SSL(box, settings.host, settings.port, timeout=seconds, context=context)
    else:
        client = _SMTP(box, settings.host, settings.port, timeout=seconds)
    with client:
        if settings.starttls:
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
        return client.send_message(mail, from_addr=settings.sender, to_addrs=recipients)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _decode(text: Any) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _is_timeout(exc: BaseException) -> bool:
    """A socket timeout, also when smtplib reports it as SMTPServerDisconnected."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _smtp_failure(settings: SmtpSettings, exc: Exception, seconds: float) -> AttemptResult:
    """What went wrong, whether another attempt can help, and what to change."""
    server = f"SMTP server {settings.server}"

    def fail(error: str, retriable: bool = True) -> AttemptResult:
        return AttemptResult(TaskState.FAILED, error=error, retriable=retriable)

    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return fail(
            f"{server} refused the login of {settings.username!r}: {exc.smtp_code} {_decode(exc.smtp_error)}"
            " (check smtp.username and the secret named by smtp.password_secret)", False,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return fail(f"{server} does not support what was asked: {exc} (check smtp.starttls and smtp.username)", False)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{a} ({c} {_decode(t)})" for a, (c, t) in exc.recipients.items())
        return fail(f"{server} refused every recipient: {refused}", False)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return fail(
            f"{server} refused the sender {settings.sender!r}: {exc.smtp_code} {_decode(exc.smtp_error)}"
            " (set another with: taskloom config set smtp.from ADDRESS)", False,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        temporary = 400 <= exc.smtp_code < 500
        return fail(f"{server} answered {exc.smtp_code} {_decode(exc.smtp_error)}", temporary)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return fail(f"{server}: TLS certificate not trusted: {exc.verify_message}", False)
    if _is_timeout(exc):
        return fail(f"{server} did not answer within {seconds:g} s (smtp.timeout)")
    if isinstance(exc, smtplib.SMTPException):
        return fail(f"{server}: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return fail(
            f"could not reach {server}: {exc} (is it running, and are smtp.host, smtp.port and smtp.ssl right?)"
        )
    return fail(f"{server}: {type(exc).__name__}: {exc}", False)
