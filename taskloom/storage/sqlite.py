"""The SQLite driver for Taskloom's own database: the one sqlite-utils uses, chosen here and nowhere else.

sqlite-utils imports ``pysqlite3`` in preference to the standard library's
:mod:`sqlite3` when it is installed (``sqlite_utils/utils.py``). Taskloom
depends on ``pysqlite3`` where a wheel exists (Linux x86_64, macOS, Windows),
since its wheels bundle a SQLite without the WAL-reset bug; elsewhere both
are the standard library's module and its linked SQLite
(:func:`taskloom.storage.db.sqlite_version_note` warns when that one is affected).

Everything that opens the Taskloom database or catches its errors (storage,
the scheduler, the tests and benchmarks) takes :data:`sqlite3` from here:

* the exception classes are the driver's own: ``pysqlite3``'s
  ``OperationalError`` is not the standard library's, so an
  ``except sqlite3.OperationalError`` written against the other module
  would silently stop matching;
* one process must not open one database file through two copies of SQLite:
  closing it in one copy drops the POSIX locks the other holds
  (sqlite.org/howtocorrupt.html, "multiple copies of SQLite linked into the
  same application").

The ``sql`` task (``taskloom/runtime/tasks/sql.py``) opens the user's own SQLite files
with the standard library's module, as SQLAlchemy's ``sqlite://`` URLs do.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["sqlite3", "sqlite_utils", "DRIVER"]


def _import_sqlite_utils() -> ModuleType:
    """Import sqlite_utils without the pandas and numpy it loads whenever they are installed.

    It only uses them for DataFrame and numpy-typed inserts, which Taskloom
    never makes, and loading them (with pyarrow) took 0.3 s of every command's
    start. Where another part of the process already imported them, nothing is
    hidden.
    """
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import name" raise ImportError
    try:
        import sqlite_utils
        import sqlite_utils.utils
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

#: The DB-API module of Taskloom's connections: ``pysqlite3`` when installed, else the standard library's ``sqlite3``.
#: Its ``connect``, ``sqlite_version`` and exception classes are the ones to use on the Taskloom database.
if TYPE_CHECKING:  # both have the standard library's interface
    import sqlite3
else:
    sqlite3 = sqlite_utils.utils.sqlite3

#: The driver's name, ``"pysqlite3"`` or ``"sqlite3"``, for messages.
DRIVER: str = sqlite3.__name__
