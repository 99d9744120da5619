"""Shared fixtures: a Taskloom home in tmp_path, document builders, a run helper."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from taskloom.storage.store import Workspace
from taskloom.runtime.execution import execute as execute_run

ROOT = Path(__file__).resolve().parent.parent


def make_doc(tasks: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A minimal valid taskloom/v1 document."""
    doc = {"format": "taskloom/v1", "name": extra.pop("name", "test-flow"), "tasks": copy.deepcopy(tasks)}
    if edges is not None:
        doc["edges"] = edges
    doc.update(extra)
    return doc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def ws(home: Path):
    workspace = Workspace(home)
    yield workspace
    workspace.close()


@pytest.fixture
def run_doc(ws: Workspace, tmp_path: Path):
    """Validate, run a document to its end in this process, return the run record (with attempts)."""

    def run(doc: dict[str, Any], params: dict[str, str] | None = None, **execute: Any):
        path = tmp_path / f"{doc['name']}.json"
        path.write_text(json.dumps(doc))
        target = ws.target(str(path))
        run_id, _ = ws.start_run(target, params or {})
        execute_run(ws, run_id, cwd=str(tmp_path), **execute)
        return ws.run(run_id, attempts=True)

    return run


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_backends`` (a module's ``pytestmark``) run once per store, as ``[sqlite]`` and
    ``[postgresql]``; a test of such a module marked ``sqlite_only`` runs on SQLite alone."""
    definition = metafunc.definition
    if definition.get_closest_marker("both_backends") and not definition.get_closest_marker("sqlite_only"):
        metafunc.parametrize("store_backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The store this test uses: ``sqlite`` (the home's file), or ``postgresql``: a new database of its own on
    the session's server, given to every Workspace, command and child process through ``TASKLOOM_DATABASE_URL``."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        from pgserver import fresh_database

        url = fresh_database(request.getfixturevalue("postgres_url"))
        monkeypatch.setenv("TASKLOOM_DATABASE_URL", url)
        yield backend
        from taskloom.storage.postgres import close_pool

        close_pool(url)  # the pooled connections of this test's database: the server allows few
        return
    monkeypatch.delenv("TASKLOOM_DATABASE_URL", raising=False)
    yield backend


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session (tests/pgserver.py): ``postgresql://postgres@127.0.0.1:PORT/taskloom``.

    A test that needs its own database calls ``pgserver.fresh_database(postgres_url)``. Without the server
    binaries (or psycopg) this skips on a developer's machine and fails in CI (``CI=true``), where
    `.ci/run` installs Debian's postgresql.
    """
    from pgserver import PostgresServer, require_postgres

    with PostgresServer(require_postgres()) as server:
        yield server.url


@pytest.fixture
def postgres_db(postgres_url: str) -> str:
    """The URL of a new empty database of its own on the session's PostgreSQL server."""
    from pgserver import fresh_database

    return fresh_database(postgres_url)
