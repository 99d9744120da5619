"""Who may do what: roles, the actions they allow, and the arithmetic of sessions and failed logins.

Four roles, each allowing everything the one before it allows:

=========  ===============================================================
viewer     sees workflows, runs, logs and outputs (never a secret's value)
operator   also triggers, cancels, re-runs, pauses and resumes
editor     also saves, imports and restores workflows
admin      also manages users and tokens, secrets and configuration, and
           reads the audit trail
=========  ===============================================================

:data:`REQUIRED` maps each :class:`Action` to the least role allowed it, and
:func:`check` is the one place every front end (the REST API, the web app)
asks. Pure: no I/O, time is an argument.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

from taskloom.core.errors import UserMistake

__all__ = ["Role", "Action", "REQUIRED", "Principal", "Forbidden", "AccessError", "check", "can", "parse_role",
           "check_user_name", "token_digest", "TOKEN_PREFIX", "login_wait", "LoginPolicy", "LOCAL_ADMIN"]


class Role(enum.IntEnum):
    """A user's role; a larger value allows more."""

    VIEWER = 1
    OPERATOR = 2
    EDITOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class Action(str, enum.Enum):
    """Something a person does through Taskloom that a role may or may not allow."""

    VIEW = "view"  # workflows, versions, runs, logs, outputs
    TRIGGER = "trigger"  # start a run
    CANCEL = "cancel"
    RERUN = "rerun"
    PAUSE = "pause"  # pause or resume a workflow's triggers
    SAVE = "save"  # save or import a workflow version
    RESTORE = "restore"  # make an older version current
    DELETE = "delete"
    SECRETS = "secrets"  # set or delete secrets (values are never shown, to anyone)
    CONFIG = "config"
    USERS = "users"  # accounts and their tokens
    AUDIT = "audit"  # read the audit trail

    @property
    def phrase(self) -> str:
        return _PHRASES[self]


REQUIRED: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.TRIGGER: Role.OPERATOR,
    Action.CANCEL: Role.OPERATOR,
    Action.RERUN: Role.OPERATOR,
    Action.PAUSE: Role.OPERATOR,
    Action.SAVE: Role.EDITOR,
    Action.RESTORE: Role.EDITOR,
    Action.DELETE: Role.EDITOR,
    Action.SECRETS: Role.ADMIN,
    Action.CONFIG: Role.ADMIN,
    Action.USERS: Role.ADMIN,
    Action.AUDIT: Role.ADMIN,
}

_PHRASES = {
    Action.VIEW: "see workflows and runs", Action.TRIGGER: "start runs", Action.CANCEL: "cancel runs",
    Action.RERUN: "re-run runs", Action.PAUSE: "pause or resume workflows", Action.SAVE: "save workflows",
    Action.RESTORE: "restore workflow versions", Action.DELETE: "delete workflows", Action.SECRETS: "change secrets",
    Action.CONFIG: "change the configuration", Action.USERS: "manage users and tokens",
    Action.AUDIT: "read the audit trail",
}


class AccessError(UserMistake):
    """A bad name, role or credential given to the accounts commands; nothing was changed."""


class Forbidden(UserMistake):
    """The principal's role does not allow the action (HTTP 403); the message names the role needed."""

    def __init__(self, message: str, *, action: Action, needed: Role) -> None:
        super().__init__(message)
        self.action, self.needed = action, needed


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user's name and role, and how they proved it (``password``, ``token``, ``sso``,
    ``service-token`` for the scheduler's single ``--token``, ``local`` where no accounts exist)."""

    name: str
    role: Role
    via: str

    def can(self, action: Action) -> bool:
        return can(self.role, action)


#: Who acts when a home has no accounts: today's single user on loopback, allowed everything.
LOCAL_ADMIN = Principal("local", Role.ADMIN, "local")


def can(role: Role, action: Action) -> bool:
    return role >= REQUIRED[action]


def check(principal: Principal, action: Action) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may do ``action``."""
    needed = REQUIRED[action]
    if principal.role >= needed:
        return
    raise Forbidden(
        f"{principal.name} is {_article(principal.role.label)} and may not {action.phrase}: that needs"
        f" {needed.label} or higher (an admin can change it with: taskloom users set-role {principal.name}"
        f" {needed.label})", action=action, needed=needed)


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def parse_role(text: str) -> Role:
    """``"operator"`` -> :attr:`Role.OPERATOR`; anything else is an :class:`AccessError` listing the roles."""
    try:
        return Role[text.strip().upper()]
    except KeyError:
        raise AccessError(f"unknown role {text!r}: the roles are {', '.join(r.label for r in Role)}"
                          " (from least to most allowed)") from None


_USER_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_RESERVED = {"local", "schedule", "api", "webhook", "service-token"}


def check_user_name(name: str) -> str:
    """A user name as stored: lowercase letters, digits and ``. _ @ -``, at most 64 characters."""
    if not _USER_NAME.fullmatch(name):
        raise AccessError(f"invalid user name {name!r}: use 1 to 64 lowercase letters, digits and . _ @ -,"
                          " starting with a letter or digit (an e-mail address works)")
    if name in _RESERVED:
        raise AccessError(f"{name!r} is reserved for what Taskloom itself records as an actor; choose another name")
    return name


#: Every API token starts with this, so a leaked one is easy to recognise (and to scan for).
TOKEN_PREFIX = "tlk_"


def token_digest(token: str) -> str:
    """What the store keeps of a token: its SHA-256. Tokens are 256 random bits, so a fast hash is enough
    (passwords, which people choose, get argon2 instead)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginPolicy:
    """Failed logins: after ``free`` failures within ``window`` seconds, each further try waits, doubling
    from ``base`` seconds up to ``cap``."""

    free: int = 5
    window: float = 15 * 60
    base: float = 2.0
    cap: float = 300.0


def login_wait(failures: Sequence[float], now: float, policy: LoginPolicy = LoginPolicy()) -> float:
    """Seconds to wait before the next login try may be checked, given the instants of recent failures.

    >>> login_wait([100.0] * 5, 101.0)
    1.0
    >>> login_wait([100.0] * 4, 101.0)
    0.0
    """
    recent = sorted(t for t in failures if now - t < policy.window)
    over = len(recent) - policy.free + 1
    if over <= 0:
        return 0.0
    delay = min(policy.base * 2 ** (over - 1), policy.cap)
    return max(0.0, recent[-1] + delay - now)
