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
  belongs in a document. The settings' rules, the message and the SMTP
  conversation are :mod:`taskloom.core.mail`'s, shared with the Settings
  page's test message; this module opens the connection so that a cancel or
  the task's timeout can close its socket, and says what a failure means.

Output: ``{"channel", "delivered": true, ...}`` plus the status (webhook) or
the recipients (email).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from taskloom.core.mail import (
    MailSettingsError, SmtpSettings, addresses, build_email, deliver, message_domain, smtp_settings,
)
from taskloom.core.specs.notify import DEFAULT_SUBJECT
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult
from taskloom.runtime.tasks.http import (
    Interrupted, SocketBox, SpecError, call_cancellable, perform, request_spec, safe_url, status_expected,
    status_failure,
)

__all__ = ["run", "WEBHOOK_TIMEOUT"]

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
    except (SpecError, MailSettingsError, LookupError) as exc:
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


def _by_email(ctx: AttemptContext, message: str) -> AttemptResult:
    params = ctx.params
    to, cc = addresses(params.get("to")), addresses(params.get("cc"))
    if not to:
        raise SpecError("channel 'email' needs 'to': a recipient address or a list of them")
    settings = smtp_settings(ctx.services.config, ctx.services.secret)
    subject = str(params.get("subject") or DEFAULT_SUBJECT)
    try:
        mail = build_email(settings, to, cc, subject, message, date=formatdate(localtime=True),
                           message_id=make_msgid(domain=message_domain(settings)))
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


class _TrackedClasses:
    """smtplib's two client classes (:class:`taskloom.core.mail.SmtpClasses`), each putting its socket in ``box``."""

    def __init__(self, box: SocketBox) -> None:
        self.box = box

    def SMTP(self, host: str, port: int, *, timeout: float) -> smtplib.SMTP:  # noqa: N802 - smtplib's names
        return _SMTP(self.box, host, port, timeout=timeout)

    def SMTP_SSL(self, host: str, port: int, *, timeout: float, context: Any) -> smtplib.SMTP:  # noqa: N802
        return _SMTP_SSL(self.box, host, port, timeout=timeout, context=context)


def _deliver(settings: SmtpSettings, mail: EmailMessage, recipients: list[str], seconds: float, box: SocketBox):
    """The SMTP conversation (on the helper thread); the recipients the server refused, if some were."""
    return deliver(settings, mail, recipients, smtp=_TrackedClasses(box), tls=ssl.create_default_context(),
                   timeout=seconds)


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
