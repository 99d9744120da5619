"""Email for notifications: the SMTP settings' shape and rules, addresses, the message, the SMTP conversation.

Pure: nothing here opens a socket or reads a clock. :func:`deliver` talks
through the SMTP client classes it is given (``smtplib`` itself, or classes
that also track the connection's socket), so the ``notify`` task and the
Settings page's "send test message" hold one conversation, each opening the
connection its own way. The caller stamps the message with its date and id
(:func:`build_email`), and reads the settings from where it keeps them
(:func:`smtp_settings` takes the lookups: a task's services, or the store's
configuration through :func:`taskloom.storage.config.smtp_settings`).

    >>> settings = SmtpSettings(host="mail.example.com", port=587, sender="robot@example.com", starttls=True)
    >>> settings.server
    'mail.example.com:587'
    >>> addresses("ops@example.com, dev@example.com")
    ['ops@example.com', 'dev@example.com']
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Callable, Protocol, Sequence

from taskloom.core.errors import UserMistake

__all__ = ["SMTP_KEYS", "SmtpSettings", "MailSettingsError", "smtp_settings", "addresses", "message_domain",
           "build_email", "SmtpClient", "SmtpClasses", "deliver"]

#: The configuration keys the SMTP settings are read from.
SMTP_KEYS = ("smtp.host", "smtp.port", "smtp.username", "smtp.password_secret", "smtp.from", "smtp.starttls",
             "smtp.ssl", "smtp.timeout")


class MailSettingsError(UserMistake, ValueError):
    """The ``smtp.*`` settings cannot send mail (no server, a login without password); the message says what to set."""


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


def smtp_settings(config: Callable[[str, Any], Any], secret: Callable[[str], str]) -> SmtpSettings:
    """The SMTP settings from ``config(key, default)`` (the ``smtp.*`` keys) and the password from ``secret(name)``.

    The password is the secret that ``smtp.password_secret`` names, looked up
    only once the rest is consistent (whatever ``secret`` raises for a missing
    one goes through).

    Raises
    ------
    MailSettingsError
        ``smtp.host`` is not set, or only one of ``smtp.username`` and
        ``smtp.password_secret`` is; the message gives the command that fixes it.

    >>> smtp_settings({"smtp.host": "mail.example.com"}.get, lambda name: "").server
    'mail.example.com:25'
    >>> smtp_settings({}.get, lambda name: "")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    taskloom.core.mail.MailSettingsError: channel 'email' needs an SMTP server, and smtp.host is not set; ...
    """
    host = config("smtp.host", None)
    if not host:
        raise MailSettingsError(
            "channel 'email' needs an SMTP server, and smtp.host is not set;"
            " set it with: taskloom config set smtp.host HOST"
        )
    username = config("smtp.username", None) or None
    secret_name = config("smtp.password_secret", None) or None
    if username and not secret_name:
        raise MailSettingsError(
            f"smtp.username is {username!r} but smtp.password_secret is not set; store the password with:"
            " taskloom secrets set SMTP_PASSWORD, then: taskloom config set smtp.password_secret SMTP_PASSWORD"
        )
    if secret_name and not username:
        raise MailSettingsError("smtp.password_secret is set but smtp.username is not; set it with:"
                                " taskloom config set smtp.username NAME")
    use_ssl = bool(config("smtp.ssl", False))
    return SmtpSettings(
        host=str(host),
        port=int(config("smtp.port", 465 if use_ssl else 25)),
        sender=str(config("smtp.from", "taskloom@localhost")),
        username=username,
        password=secret(secret_name) if secret_name else None,
        starttls=bool(config("smtp.starttls", False)),
        ssl=use_ssl,
        timeout=float(config("smtp.timeout", 30)),
    )


def addresses(value: Any) -> list[str]:
    """``to``/``cc`` as a list: one address, a list, or text with commas.

    >>> addresses(None), addresses(["a@example.com", " "]), addresses("a@example.com,, b@example.com")
    ([], ['a@example.com'], ['a@example.com', 'b@example.com'])
    """
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(a).strip() for a in items if str(a).strip()]


def message_domain(settings: SmtpSettings) -> str:
    """The domain for the message's ``Message-ID``: what follows the sender's last ``@``, else ``taskloom.localhost``.

    A sender without ``@`` is taken whole.

    >>> message_domain(SmtpSettings("h", 25, "robot@example.com")), message_domain(SmtpSettings("h", 25, "robot@"))
    ('example.com', 'taskloom.localhost')
    """
    return settings.sender.rpartition("@")[2] or "taskloom.localhost"


def build_email(settings: SmtpSettings, to: list[str], cc: list[str], subject: str, message: str, *, date: str,
                message_id: str) -> EmailMessage:
    """The message: plain text, UTF-8, from ``settings.sender``.

    ``date`` and ``message_id`` are the caller's (``email.utils.formatdate(localtime=True)``,
    ``email.utils.make_msgid(domain=message_domain(settings))``): they read the clock.
    Line breaks in ``subject`` become spaces (a header has none).

    Raises
    ------
    ValueError, TypeError
        An address or subject the email package refuses.

    >>> mail = build_email(SmtpSettings("h", 25, "robot@example.com"), ["ops@example.com"], [], "Run\\nfailed", "text",
    ...                    date="Mon, 30 Nov 2026 10:00:00 +0000", message_id="<1@example.com>")
    >>> mail["Subject"], mail["To"], mail["Cc"]
    ('Run failed', 'ops@example.com', None)
    """
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Subject"] = " ".join(subject.split())  # no line breaks in a header
    mail["Date"] = date
    mail["Message-ID"] = message_id
    mail.set_content(message)
    return mail


class SmtpClient(Protocol):
    """What :func:`deliver` uses of an SMTP connection (an ``smtplib.SMTP`` has it all)."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...

    def starttls(self, *, context: Any = None) -> Any: ...

    def login(self, user: str, password: str) -> Any: ...

    def send_message(self, msg: EmailMessage, from_addr: str | None = None,
                     to_addrs: Sequence[str] | None = None) -> dict[str, tuple[int, bytes]]: ...


class SmtpClasses(Protocol):
    """The two ways to connect, as the ``smtplib`` module names them: ``SMTP`` (plain) and ``SMTP_SSL`` (TLS at once).

    The module itself fits; so does an object whose two methods open tracked connections.
    """

    def SMTP(self, host: str, port: int, *, timeout: float) -> SmtpClient: ...  # noqa: N802 - smtplib's names

    def SMTP_SSL(self, host: str, port: int, *, timeout: float, context: Any) -> SmtpClient: ...  # noqa: N802


def deliver(settings: SmtpSettings, mail: EmailMessage, recipients: Sequence[str], *, smtp: SmtpClasses,
            tls: Any, timeout: float) -> dict[str, tuple[int, bytes]]:
    """One SMTP conversation: connect, STARTTLS when asked, log in when a username is set, send, QUIT.

    ``smtp`` opens the connection (``smtplib``, or classes that track its socket),
    ``tls`` is the ``ssl.SSLContext`` for SMTPS and STARTTLS, ``timeout`` the
    socket timeout in seconds. Returns the recipients the server refused
    (``{address: (code, text)}``) when it accepted the others; every other
    failure is the client's exception (``smtplib.SMTPException``, ``OSError``),
    for the caller to describe.
    """
    if settings.ssl:
        client = smtp.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=tls)
    else:
        client = smtp.SMTP(settings.host, settings.port, timeout=timeout)
    with client:
        if settings.starttls:
            client.starttls(context=tls)
        if settings.username:
            client.login(settings.username, settings.password or "")
        return client.send_message(mail, from_addr=settings.sender, to_addrs=list(recipients))
