"""Accounts: the people of a home, their roles, passwords and API tokens.

A home without accounts behaves as it always has (one person on loopback,
:data:`taskloom.core.access.LOCAL_ADMIN`); once the first user is added, the
web app asks for a login and the REST API for a user's token.

* Passwords are kept as argon2id hashes (argon2-cffi's defaults), never in
  clear; a hash made with older parameters is replaced on the next login.
* A token is ``tlk_`` and 43 characters of 256 random bits, shown once when
  it is made; the store keeps its SHA-256, a label, who owns it, when it was
  last used and whether it was revoked or expires.
* Failed logins are recorded per user name (also for names that do not
  exist, so probing names costs the same); past a few of them each try must
  wait longer (:func:`taskloom.core.access.login_wait`). A login that must
  wait is refused without even checking the password.
* The last admin cannot be removed or demoted: the home would have accounts
  that nobody could manage.
"""

from __future__ import annotations

import secrets as random_tokens
import time
from dataclasses import dataclass, replace
from typing import Any

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from taskloom.core.access import (
    TOKEN_PREFIX, AccessError, LoginPolicy, Principal, Role, check_user_name, login_wait, parse_role, token_digest,
)
from taskloom.core.errors import UserMistake
from taskloom.storage.db import write_txn

__all__ = ["Accounts", "User", "TokenInfo", "LoginRefused", "MIN_PASSWORD_LENGTH"]

MIN_PASSWORD_LENGTH = 10
_TOKEN_COLUMNS = "id, user_name, label, created, expires, last_used, revoked"
#: ``last_used`` of a token is written at most this often: a busy script must not turn every request into a write.
_TOUCH_EVERY = 60.0

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user: this hash only costs the same time")


class LoginRefused(UserMistake):
    """A login or token that does not let anyone in; ``wait`` is set when failed tries must wait first."""

    def __init__(self, message: str, *, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    has_password: bool
    email: str
    created: float
    updated: float
    tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        from taskloom.storage.runs import iso

        return {"name": self.name, "role": self.role.label, "password": self.has_password, "email": self.email,
                "tokens": self.tokens, "created": iso(self.created), "updated": iso(self.updated)}


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user: str
    label: str
    created: float
    expires: float | None
    last_used: float | None
    revoked: float | None

    def state(self, now: float) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"

    def to_dict(self, now: float) -> dict[str, Any]:
        from taskloom.storage.runs import iso

        return {"id": self.id, "user": self.user, "label": self.label, "state": self.state(now),
                "created": iso(self.created), "expires": iso(self.expires), "last_used": iso(self.last_used),
                "revoked": iso(self.revoked)}


class Accounts:
    """The accounts of the store ``db``."""

    def __init__(self, db: sqlite_utils.Database, *, policy: LoginPolicy = LoginPolicy()) -> None:
        self.db = db
        self.policy = policy

    # -- users -------------------------------------------------------------------------------------------

    def exist(self) -> bool:
        """Whether this home has any account (then logins and tokens are required)."""
        return self.db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def add(self, name: str, role: Role | str, password: str | None, *, email: str = "",
            now: float | None = None) -> User:
        name = check_user_name(name)
        role = parse_role(role) if isinstance(role, str) else role
        digest = None if password is None else _hasher.hash(_checked_password(password))
        now = time.time() if now is None else now
        with write_txn(self.db):
            if self._row(name) is not None:
                raise AccessError(f"user {name} already exists; change it with: taskloom users set-role {name} ROLE")
            self.db.execute("INSERT INTO users (name, role, password_hash, email, created, updated)"
                            " VALUES (?, ?, ?, ?, ?, ?)", [name, role.label, digest, email, now, now])
        return self.get(name)

    def get(self, name: str) -> User:
        row = self._row(name)
        if row is None:
            raise AccessError(self._unknown(name))
        return self._user(row)

    def list(self) -> list[User]:
        rows = self.db.execute(
            "SELECT u.name, u.role, u.password_hash, u.email, u.created, u.updated,"
            " (SELECT count(*) FROM api_tokens t WHERE t.user_name = u.name AND t.revoked IS NULL)"
            " FROM users u ORDER BY u.name").fetchall()
        return [self._user(row[:6], tokens=row[6]) for row in rows]

    def set_role(self, name: str, role: Role | str, *, now: float | None = None) -> tuple[Role, Role]:
        """Change ``name``'s role; (old, new)."""
        role = parse_role(role) if isinstance(role, str) else role
        with write_txn(self.db):
            old = self.get(name).role
            if old == Role.ADMIN and role != Role.ADMIN:
                self._keep_an_admin(name, "demote")
            self.db.execute("UPDATE users SET role = ?, updated = ? WHERE name = ?",
                            [role.label, time.time() if now is None else now, name])
        return old, role

    def set_password(self, name: str, password: str, *, now: float | None = None) -> None:
        digest = _hasher.hash(_checked_password(password))
        with write_txn(self.db):
            self.get(name)
            self.db.execute("UPDATE users SET password_hash = ?, updated = ? WHERE name = ?",
                            [digest, time.time() if now is None else now, name])

    def remove(self, name: str) -> int:
        """Remove ``name`` and its tokens (the audit trail keeps what it did); how many tokens went with it."""
        with write_txn(self.db):
            if self.get(name).role == Role.ADMIN:
                self._keep_an_admin(name, "remove")
            tokens = self.db.execute("DELETE FROM api_tokens WHERE user_name = ?", [name]).rowcount
            self.db.execute("DELETE FROM login_failures WHERE user_name = ?", [name])
            self.db.execute("DELETE FROM users WHERE name = ?", [name])
        return tokens

    def _keep_an_admin(self, name: str, doing: str) -> None:
        admins = self.db.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0]
        if admins <= 1:
            raise AccessError(f"cannot {doing} {name}: it is the last admin, and nobody could manage the accounts"
                              f" then; make another user admin first (taskloom users set-role OTHER admin)")

    def _row(self, name: str) -> tuple | None:
        return self.db.execute("SELECT name, role, password_hash, email, created, updated FROM users WHERE name = ?",
                               [name]).fetchone()

    def _unknown(self, name: str) -> str:
        names = [r[0] for r in self.db.execute("SELECT name FROM users ORDER BY name LIMIT 20")]
        known = f"the users are: {', '.join(names)}" if names else "there are no users yet"
        return f"no user {name!r}; {known} (add one with: taskloom users add NAME --role ROLE)"

    @staticmethod
    def _user(row: tuple, tokens: int = 0) -> User:
        name, role, digest, email, created, updated = row
        return User(name, Role[role.upper()], digest is not None, email, created, updated, tokens)

    # -- logging in ----------------------------------------------------------------------------------------

    def login(self, name: str, password: str, *, now: float | None = None, source: str = "") -> Principal:
        """The principal of a correct password; else :class:`LoginRefused` (recorded, and rate limited).

        The message never says whether the name or the password was wrong.
        """
        now = time.time() if now is None else now
        name = name.strip().lower()
        failures = [at for (at,) in self.db.execute(
            "SELECT at FROM login_failures WHERE user_name = ? AND at > ?", [name, now - self.policy.window])]
        wait = login_wait(failures, now, self.policy)
        if wait > 0:
            raise LoginRefused(f"too many failed logins for {name}; try again in {wait:.0f} s", wait=wait)
        row = self._row(name)
        digest = row[2] if row is not None else None
        try:
            _hasher.verify(digest or _DUMMY_HASH, password)
            ok = digest is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok:
            with write_txn(self.db):
                self.db.execute("INSERT INTO login_failures (user_name, at, source) VALUES (?, ?, ?)",
                                [name, now, source])
                self.db.execute("DELETE FROM login_failures WHERE at < ?", [now - self.policy.window])
            raise LoginRefused("wrong user name or password")
        with write_txn(self.db):
            self.db.execute("DELETE FROM login_failures WHERE user_name = ?", [name])
            if _hasher.check_needs_rehash(digest):
                self.db.execute("UPDATE users SET password_hash = ? WHERE name = ?", [_hasher.hash(password), name])
        return Principal(name, Role[row[1].upper()], "password")

    def principal(self, name: str, via: str) -> Principal:
        """The principal of a user another way has vouched for (single sign-on)."""
        return Principal(name, self.get(name).role, via)

    # -- tokens ----------------------------------------------------------------------------------------------

    def create_token(self, user: str, *, label: str = "", expires: float | None = None,
                     now: float | None = None) -> tuple[int, str]:
        """A new token for ``user``: (its id, the token itself, which is not stored and never shown again)."""
        now = time.time() if now is None else now
        if expires is not None and expires <= now:
            raise AccessError("the token would expire before it is made; give a later expiry")
        token = TOKEN_PREFIX + random_tokens.token_urlsafe(32)
        with write_txn(self.db):
            self.get(user)
            row = self.db.execute(
                "INSERT INTO api_tokens (user_name, label, digest, created, expires) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id", [user, label, token_digest(token), now, expires]).fetchone()
        return row[0], token

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        rows = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens"
                               + (" WHERE user_name = ? ORDER BY id" if user else " ORDER BY id"),
                               [user] if user else []).fetchall()
        return [TokenInfo(*row) for row in rows]

    def revoke_token(self, token_id: int, *, now: float | None = None) -> TokenInfo:
        """Revoke a token (revoking one already revoked keeps its first instant); the token as it is now."""
        now = time.time() if now is None else now
        with write_txn(self.db):
            row = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?", [token_id]).fetchone()
            if row is None:
                raise AccessError(f"no token with id {token_id}; see them with: taskloom tokens list")
            token = TokenInfo(*row)
            if token.revoked is None:
                self.db.execute("UPDATE api_tokens SET revoked = ? WHERE id = ?", [now, token_id])
                token = replace(token, revoked=now)
        return token

    def authenticate(self, token: str, *, now: float | None = None) -> Principal:
        """The principal a bearer token stands for; :class:`LoginRefused` saying why it does not."""
        now = time.time() if now is None else now
        row = self.db.execute(
            "SELECT t.id, t.expires, t.revoked, t.last_used, u.name, u.role FROM api_tokens t"
            " JOIN users u ON u.name = t.user_name WHERE t.digest = ?", [token_digest(token.strip())]).fetchone()
        if row is None:
            raise LoginRefused("invalid bearer token")
        token_id, expires, revoked, last_used, name, role = row
        if revoked is not None:
            raise LoginRefused(f"token {token_id} of {name} was revoked; ask an admin for a new one")
        if expires is not None and expires <= now:
            raise LoginRefused(f"token {token_id} of {name} has expired; ask an admin for a new one"
                               f" (taskloom tokens create --user {name})")
        if last_used is None or now - last_used >= _TOUCH_EVERY:
            with write_txn(self.db, durable=False):
                self.db.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", [now, token_id])
        return Principal(name, Role[role.upper()], "token")


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if password != password.strip():
        raise AccessError("the password starts or ends with white space, which is easy to lose; remove it")
    return password
