"""``taskloom db status`` and ``db migrate`` on a SQLite home and on a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from clitools import TASKLOOM, env_for, taskloom
from taskloom.storage.migrations import SCHEMA

NAMES = [change.name for change in SCHEMA]


def test_sqlite_status_changes_nothing_and_migrate_brings_the_schema_current(home: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-home"
    status = taskloom(fresh, "db", "status", "--json")
    assert status.returncode == 1, status.stderr
    assert json.loads(status.stdout) == {"backend": "sqlite", "database": str(fresh / "taskloom.db"), "applied": [],
                                         "pending": NAMES, "current": False}
    assert not (fresh / "taskloom.db").exists()  # looking changed nothing
    migrated = taskloom(fresh, "db", "migrate", "--json")
    assert migrated.returncode == 0 and json.loads(migrated.stdout)["now"] == NAMES
    again = taskloom(fresh, "db", "status")
    assert again.returncode == 0 and "the schema is current" in again.stdout


def test_postgres_migrate_applies_every_change_once_and_status_reports_it(home: Path, postgres_db: str) -> None:
    before = taskloom(home, "db", "status", "--database", postgres_db, "--json")
    assert before.returncode == 1 and json.loads(before.stdout)["pending"] == NAMES
    first = taskloom(home, "db", "migrate", "--database", postgres_db, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["now"] == NAMES and json.loads(first.stdout)["current"] is True
    second = taskloom(home, "db", "migrate", "--database", postgres_db)
    assert second.returncode == 0 and "applied 0 change(s)" in second.stdout
    import psycopg

    with psycopg.connect(postgres_db) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    assert {"runs", "attempts", "logs", "firings", "scheduler_lease", "secrets", "taskloom_migrations"} <= tables


def test_two_hosts_migrating_at_once_apply_each_change_exactly_once(home: Path, postgres_db: str) -> None:
    procs = [subprocess.Popen([TASKLOOM, "db", "migrate", "--database", postgres_db, "--json"], env=env_for(home),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    applied = [name for out, _ in results for name in json.loads(out)["now"]]
    assert sorted(applied) == sorted(NAMES)  # one process applied them all, the others found nothing to do
    import psycopg

    with psycopg.connect(postgres_db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM taskloom_migrations ORDER BY name")] == sorted(NAMES)


def test_a_database_that_cannot_be_reached_is_one_line_without_the_password(home: Path) -> None:
    url = "postgresql://ada:s3cret-pw@127.0.0.1:1/nothere"
    result = taskloom(home, "db", "status", "--database", url)
    assert result.returncode == 1
    assert "cannot connect to postgresql://ada:***@127.0.0.1:1/nothere" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    other = taskloom(home, "db", "status", "--database", "mysql://x/y")
    assert other.returncode == 1 and "give a postgresql:// URL or the path of a SQLite file" in other.stderr
