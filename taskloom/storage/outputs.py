"""Task outputs in storage: JSON in the database, or set apart when it is large.

An output over ``max_bytes`` (default 1 MiB) is kept apart and its row holds a
reference with a preview, so a task returning a big table neither bloats the
rows every run listing reads nor fails; :meth:`OutputCodec.decode` gives the
whole value back to downstream tasks and to a resumed run.

Where it is kept depends on the store. A SQLite home writes it to
``$TASKLOOM_HOME/outputs/<run>/<task>.<attempt>.json``. A PostgreSQL store
keeps it in the database's ``output_blobs`` table (the reference says
``"stored": "database"``): its schedulers run on several hosts, and a run
resumed on another host must read what the first host's tasks produced
without a shared folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from taskloom.storage.db import Database, backend_of

__all__ = ["SPILL_KEY", "DEFAULT_MAX_OUTPUT_BYTES", "OutputCodec", "is_spilled"]

SPILL_KEY = "$taskloom_spilled"
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
PREVIEW_CHARS = 2000


def is_spilled(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and SPILL_KEY in value


class OutputCodec:
    """Encodes outputs for the database, spilling large ones to files under ``home`` or to ``output_blobs``."""

    def __init__(self, home: Path | None, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, *,
                 db: Database | None = None) -> None:
        self.home = home
        self.max_bytes = max_bytes
        #: the database large outputs go to (a PostgreSQL store); None: files under ``home``
        self.db = db

    @classmethod
    def for_store(cls, db: Database, home: Path | None, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> "OutputCodec":
        """The codec of ``db``'s store: files under ``home`` for SQLite, the database itself for PostgreSQL."""
        return cls(home, max_bytes, db=db if backend_of(db) == "postgresql" else None)

    def whole(self, ref: dict[str, Any]) -> bytes | None:
        """The bytes of a spilled output (a ``$taskloom_spilled`` reference's value); None when they are gone."""
        if ref.get("stored") == "database":
            if self.db is None:
                return None
            row = self.db.execute("SELECT data FROM output_blobs WHERE path = ?", [ref.get("path")]).fetchone()
            return None if row is None else row[0].encode()
        if self.home is None:
            return None
        try:
            return (self.home / str(ref.get("path", ""))).read_bytes()
        except OSError:
            return None

    def encode(self, value: Any, *, run_id: int, task_id: str, attempt: int) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        data = text.encode()
        if (self.home is None and self.db is None) or len(data) <= self.max_bytes:
            return text
        relative = (Path("outputs") / str(run_id) / f"{task_id}.{attempt}.json").as_posix()
        if self.db is not None:
            # in the caller's transaction: the blob commits with the attempt that references it
            self.db.execute("INSERT INTO output_blobs (path, bytes, data) VALUES (?, ?, ?)"
                            " ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes, data = excluded.data",
                            [relative, len(data), text])
        else:
            _write_file(self.home / relative, data)
        ref = {
            "path": relative,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "preview": text[:PREVIEW_CHARS],
        }
        if self.db is not None:
            ref["stored"] = "database"
        return json.dumps({SPILL_KEY: ref}, ensure_ascii=False, separators=(",", ":"))

    def decode(self, text: str | None, *, resolve: bool = True) -> Any:
        """The stored value; with ``resolve``, a spilled output is read back whole."""
        if text is None:
            return None
        value = json.loads(text)
        if not resolve or not is_spilled(value):
            return value
        ref = value[SPILL_KEY]
        data = self.whole(ref)
        if data is None:
            where = "the database's output_blobs" if ref.get("stored") == "database" else f"{self.home}"
            raise FileNotFoundError(f"the large output {ref.get('path')} is missing from {where}")
        return json.loads(data.decode("utf-8"))


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a reader never sees half a file
