"""Secrets: named values for workflows, encrypted at rest.

Templates read a secret as ``{{ secrets.NAME }}``; the runner decrypts them
all with :meth:`SecretStore.values` and masks them in logs and outputs.

Values are encrypted with Fernet (AES-128-CBC plus HMAC-SHA256, from the
``cryptography`` package). The key lives *outside* the database, in
``<home>/secret.key`` with owner-only permissions, so a copied or attached
database file, a backup of it, or a query over it reveals no value. Anyone
who can read both files as the owner can read the secrets: this protects
against leaks of the database, not against the account that runs Taskloom.

The key file is created on the first :meth:`SecretStore.set`, with
``O_CREAT | O_EXCL`` and mode 0600, so it never exists with wider permissions
and two processes creating it at once agree on one key. A key file that
others may read is refused rather than used. Back it up with the database:
without it the stored secrets cannot be decrypted.

Names and timestamps are stored in clear, so listing never needs the key.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import sqlite_utils
from cryptography.fernet import Fernet, InvalidToken

from taskloom.core.errors import UserMistake
from taskloom.core.masking import KNOWN_SECRETS

from taskloom.storage.db import write_txn
from taskloom.storage.runs import iso

__all__ = ["SecretError", "SecretStore", "validate_name", "key_path", "NAME_RULE", "MAX_NAME_LENGTH"]

MAX_NAME_LENGTH = 128
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME_RULE = (
    "a secret name starts with a letter or underscore and has only letters, digits and "
    f"underscores, at most {MAX_NAME_LENGTH} characters (templates read it as {{{{ secrets.NAME }}}})"
)
KEY_FILE = "secret.key"
#: How long to wait for another process to finish writing a key file it just created.
_KEY_WAIT_SECONDS = 2.0


class SecretError(UserMistake):
    """A secret cannot be stored or read; the message says why and how to fix it."""


def key_path(home: Path) -> Path:
    """Where the encryption key of the secrets in ``home`` lives."""
    return Path(home) / KEY_FILE


def validate_name(name: str) -> None:
    """Raise :class:`SecretError` unless ``name`` can be used as ``{{ secrets.NAME }}``."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        shown = name if not isinstance(name, str) or len(name) <= 40 else name[:40] + "..."
        raise SecretError(f"invalid secret name {shown!r}: {NAME_RULE}")


class SecretStore:
    """The ``secrets`` table of a database, with the key in ``home``."""

    def __init__(self, db: sqlite_utils.Database, home: Path) -> None:
        self.db = db
        self._home = home

    @property
    def home(self) -> Path:
        return Path(self._home)

    @property
    def key_path(self) -> Path:
        """Built when a key is needed: most runs read an empty table and need no path at all."""
        return key_path(self.home)

    # -- writing ------------------------------------------------------------

    def set(self, name: str, value: str) -> bool:
        """Store ``value`` under ``name``; True if the secret is new, False if it replaced one."""
        validate_name(name)
        if not isinstance(value, str):
            raise SecretError(f"secret {name!r}: the value must be text, not {type(value).__name__}")
        if value == "":
            raise SecretError(f"secret {name!r}: the value is empty; a secret needs a value")
        now = time.time()
        KNOWN_SECRETS.remember([value])
        with write_txn(self.db):
            fernet = self._fernet(create=True)
            token = fernet.encrypt(value.encode("utf-8"))
            exists = self._exists(name)
            if exists:
                self.db.execute(
                    "UPDATE secrets SET value = ?, updated = ? WHERE name = ?", [token, now, name]
                )
            else:
                self.db.execute(
                    "INSERT INTO secrets (name, value, created, updated) VALUES (?, ?, ?, ?)",
                    [name, token, now, now],
                )
        return not exists

    def delete(self, name: str) -> None:
        """Remove a secret; :class:`SecretError` if there is none of that name."""
        with write_txn(self.db):
            cursor = self.db.execute("DELETE FROM secrets WHERE name = ?", [name])
            if cursor.rowcount == 0:
                raise self._missing(name)

    # -- reading ------------------------------------------------------------

    def get(self, name: str) -> str:
        """The decrypted value of one secret."""
        row = self.db.execute("SELECT value FROM secrets WHERE name = ?", [name]).fetchone()
        if row is None:
            raise self._missing(name)
        return self._decrypt(self._fernet(), name, row[0])

    def values(self) -> dict[str, str]:
        """Every secret, decrypted, by name (for templates and masking); ``{}`` needs no key."""
        rows = self.db.execute("SELECT name, value FROM secrets ORDER BY name").fetchall()
        if not rows:
            return {}
        fernet = self._fernet()
        return {name: self._decrypt(fernet, name, token) for name, token in rows}

    def names(self) -> list[str]:
        """The names of the stored secrets, sorted; never their values, never needs the key."""
        return [row[0] for row in self.db.execute("SELECT name FROM secrets ORDER BY name")]

    def list(self) -> list[dict[str, Any]]:
        """``[{"name", "created", "updated"}]`` sorted by name, times as ISO 8601 UTC; no values."""
        rows = self.db.execute("SELECT name, created, updated FROM secrets ORDER BY name")
        return [{"name": name, "created": iso(created), "updated": iso(updated)} for name, created, updated in rows]

    # -- helpers ------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM secrets WHERE name = ?", [name]).fetchone() is not None

    def _count(self) -> int:
        return self.db.execute("SELECT count(*) FROM secrets").fetchone()[0]

    def _missing(self, name: str) -> SecretError:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
            return SecretError(f"no secret named {name!r}, and it is not a valid name: {NAME_RULE}")
        return SecretError(f"no secret named {name!r}; set it with: taskloom secrets set {name}")

    def _decrypt(self, fernet: Fernet, name: str, token: bytes) -> str:
        try:
            value = fernet.decrypt(bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise SecretError(
                f"cannot decrypt secret {name!r} with the key in {self.key_path}: the key file was "
                "replaced or the stored value is damaged; restore the original key file, or store "
                f"the value again with: taskloom secrets set {name}"
            ) from None
        KNOWN_SECRETS.remember([value])  # this process's own log is masked from now on
        return value

    def _fernet(self, *, create: bool = False) -> Fernet:
        """The cipher for this home's key; with ``create``, make the key when no secret needs the old one."""
        try:
            key = _read_key(self.key_path)
        except FileNotFoundError:
            stored = self._count()
            if stored:
                raise SecretError(
                    f"the key file {self.key_path} is missing, so the {stored} stored secret(s) cannot "
                    "be decrypted; restore the file from a backup, or delete the secrets "
                    "(taskloom secrets delete NAME) and set them again"
                ) from None
            if not create:
                raise SecretError(f"the key file {self.key_path} is missing and no secret is stored") from None
            try:
                key = _create_key(self.key_path)
            except OSError as exc:
                raise SecretError(
                    f"cannot create the key file {self.key_path}: {exc.strerror or exc}; "
                    f"check that {self.home} is a folder you can write to"
                ) from None
        except OSError as exc:
            raise SecretError(
                f"cannot read the key file {self.key_path}: {exc.strerror or exc}; "
                "it must be a file readable by the user running Taskloom"
            ) from None
        try:
            return Fernet(key)
        except ValueError:
            raise SecretError(
                f"the key file {self.key_path} does not hold a valid key (32 url-safe base64-encoded "
                "bytes); restore the original file from a backup"
            ) from None


def _read_key(path: Path, *, wait: bool = False) -> bytes:
    """The key in ``path``, refusing a file others may read; ``FileNotFoundError`` if there is none.

    With ``wait``, an empty file is re-read for a moment: another process has
    just created it and is about to write its key.
    """
    deadline = time.monotonic() + _KEY_WAIT_SECONDS
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            _check_mode(path, os.fstat(fd))
            key = _read_all(fd).strip()
        finally:
            os.close(fd)
        if key or not wait or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not key:
        raise SecretError(f"the key file {path} is empty; restore the original file from a backup")
    return key


def _check_mode(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(f"the key file {path} is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        raise SecretError(
            f"the key file {path} can be accessed by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"make it private to its owner with: chmod 600 {path}"
        )


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _create_key(path: Path) -> bytes:
    """Write a new key to ``path`` (mode 0600 from the start); if another process won the race, use its key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path, wait=True)
    key = Fernet.generate_key()
    try:
        if os.name == "posix":
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        os.write(fd, key)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    _fsync_dir(path.parent)
    return key


def _fsync_dir(folder: Path) -> None:
    """Make the new key file's directory entry durable before a secret encrypted with it is committed."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
