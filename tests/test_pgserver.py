"""The test suite's own PostgreSQL server (tests/pgserver.py): real connections, isolated databases, a clean stop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pgserver
from pgserver import PostgresServer, fresh_database, pids_in, port_is_free, require_postgres

try:
    import psycopg
except ImportError:  # require_postgres() (also behind the postgres_url fixture) skips or fails those tests first
    psycopg = None


def test_the_session_server_accepts_a_connection_on_loopback(postgres_url):
    assert postgres_url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        db, user, address, fsync = conn.execute(
            "SELECT current_database(), current_user, inet_server_addr()::text, current_setting('fsync')").fetchone()
        listen = conn.execute("SELECT current_setting('listen_addresses')").fetchone()[0]
    assert (db, user, address, fsync, listen) == ("taskloom", "postgres", "127.0.0.1/32", "on", "127.0.0.1")


def test_a_fresh_database_takes_a_table_written_then_read(postgres_url):
    url = fresh_database(postgres_url)
    assert url.rsplit("/", 1)[0] == postgres_url.rsplit("/", 1)[0] and url != postgres_url
    with psycopg.connect(url, connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        conn.execute("CREATE TABLE runs (id bigint PRIMARY KEY, state text NOT NULL)")
        conn.execute("INSERT INTO runs VALUES (%s, %s), (%s, %s)", (1, "succeeded", 2, "failed"))
    # A second connection sees the committed rows (the with-block commits).
    with psycopg.connect(url, connect_timeout=10) as conn:
        assert conn.execute("SELECT id, state FROM runs ORDER BY id").fetchall() == [(1, "succeeded"), (2, "failed")]


def test_two_fresh_databases_are_independent(postgres_url, postgres_db):
    first, second = postgres_db, fresh_database(postgres_url)
    assert first != second
    with psycopg.connect(first, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE marks (name text)")
        conn.execute("INSERT INTO marks VALUES ('first')")
    with psycopg.connect(second, connect_timeout=10) as conn:
        assert conn.execute("SELECT to_regclass('public.marks')").fetchone() == (None,)
        conn.execute("CREATE TABLE marks (name text)")  # the same name is free here
        assert conn.execute("SELECT count(*) FROM marks").fetchone() == (0,)
    with psycopg.connect(first, connect_timeout=10) as conn:
        assert conn.execute("SELECT name FROM marks").fetchall() == [("first",)]


def test_stop_leaves_no_process_no_folder_and_a_free_port():
    server = PostgresServer(require_postgres())
    url = server.start()
    data, base, port = server.data, server.base, server.port
    conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        running = pids_in(data)
        assert server.postmaster_pid in running and len(running) > 1  # the postmaster, its helpers, our backend
        assert not port_is_free(port)
        server.stop()  # with our session still open: a fast stop ends it
    finally:
        conn.close()
        server.stop()
    assert server.stop_seconds < 15
    assert pids_in(data) == []
    assert not base.exists()
    assert port_is_free(port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    server.stop()  # twice is harmless


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_binaries_skip_here_and_fail_in_ci(monkeypatch, ci, outcome):
    monkeypatch.setattr(pgserver, "find_bindir", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="apt-get install postgresql"):
        require_postgres()


def test_the_binaries_are_found_where_debian_puts_them():
    bindir = pgserver.find_bindir()
    if bindir is None:
        pytest.skip(pgserver.INSTALL_HINT)
    assert all(os.access(Path(bindir, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))
