"""The sql and sql_copy task types end to end, against real SQLite files in tmp_path."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from taskloom.runtime.runner import RunEvent, Runner
from taskloom.runtime.tasks.sql import hide_password, install_command, json_value, unique_names
from taskloom.core.validation import validate_document
from taskloom.storage.runs import iter_logs
from taskloom.runtime.execution import execute

from conftest import ROOT, make_doc

HAS_SQLALCHEMY = importlib.util.find_spec("sqlalchemy") is not None
COUNT_TO_A_BILLION = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT count(*) FROM n"
)


def make_db(path: Path, rows: int = 5) -> Path:
    """A SQLite file with table t(id, name, data) holding ``rows`` rows."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"n{i}", bytes([i % 256])) for i in range(1, rows + 1)])
    db.close()
    return path


def read(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def sql_task(task_id: str = "q", **params: Any) -> dict[str, Any]:
    extra = {k: params.pop(k) for k in ("retries", "retry_delay", "timeout") if k in params}
    return {"id": task_id, "type": "sql", "params": params, **extra}


def copy_task(task_id: str = "c", **params: Any) -> dict[str, Any]:
    extra = {k: params.pop(k) for k in ("retries", "retry_delay", "timeout") if k in params}
    return {"id": task_id, "type": "sql_copy", "params": params, **extra}


def system_lines(ws, run_id: int, task_id: str) -> list[str]:
    return [l["line"] for l in iter_logs(ws.db, run_id) if l["task"] == task_id and l["stream"] == "system"]


def issues_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.path, i.message) for i in validate_document(doc)]


# -- sql: reading ------------------------------------------------------------------------------------


def test_select_binds_template_parameters_with_their_json_type(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    doc = make_doc(
        [sql_task(database=str(db), query="SELECT id, name FROM t WHERE id >= :min_id ORDER BY id",
                  parameters={"min_id": "{{ params.min_id }}"})],
        params={"min_id": {"type": "integer", "default": 1}},
    )
    run = run_doc(doc, {"min_id": "4"})
    assert run.status == "succeeded", run.tasks["q"].error
    assert run.tasks["q"].output == {
        "rows": [{"id": 4, "name": "n4"}, {"id": 5, "name": "n5"}],
        "count": 2, "truncated": False, "columns": ["id", "name"],
    }
    assert run.tasks["q"].attempt_list[0].params["parameters"] == {"min_id": 4}  # an integer, not "4"


def test_a_hostile_parameter_value_stays_data(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    doc = make_doc(
        [sql_task(database=str(db), query="SELECT * FROM t WHERE id = :id OR name = :id",
                  parameters={"id": "{{ params.id }}"})],
        params={"id": {"type": "string"}},
    )
    run = run_doc(doc, {"id": "1; DROP TABLE t"})
    assert run.status == "succeeded", run.tasks["q"].error
    assert run.tasks["q"].output["count"] == 0
    assert read(db, "SELECT count(*) FROM t") == [(5,)]  # the table is still there


def test_max_rows_truncates_the_output_but_count_is_the_total(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db", rows=1200)
    run = run_doc(make_doc([sql_task(database=str(db), query="SELECT id, data FROM t ORDER BY id", max_rows=3)]))
    out = run.tasks["q"].output
    assert out["count"] == 1200 and out["truncated"] is True and out["columns"] == ["id", "data"]
    assert [r["id"] for r in out["rows"]] == [1, 2, 3]
    assert base64.b64decode(out["rows"][0]["data"]) == b"\x01"  # BLOBs arrive as base64 text


def test_default_max_rows_is_1000(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db", rows=1001)
    run = run_doc(make_doc([sql_task(database=str(db), query="SELECT id FROM t")]))
    out = run.tasks["q"].output
    assert len(out["rows"]) == 1000 and out["count"] == 1001 and out["truncated"] is True


def test_relative_database_path_resolves_against_the_working_directory(run_doc, tmp_path):
    make_db(tmp_path / "rel.db")  # run_doc runs with cwd=tmp_path
    run = run_doc(make_doc([sql_task(database="rel.db", query="SELECT count(*) AS n FROM t")]))
    assert run.tasks["q"].output["rows"] == [{"n": 5}]


def test_duplicate_column_names_are_made_unique(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    run = run_doc(make_doc([sql_task(database=str(db), query="SELECT a.id, b.id FROM t a JOIN t b USING (id) LIMIT 1")]))
    assert run.tasks["q"].output["columns"] == ["id", "id_2"]
    assert run.tasks["q"].output["rows"] == [{"id": 1, "id_2": 1}]


# -- sql: writing ---------------------------------------------------------------------------------------


def test_insert_and_update_return_rowcount_and_are_committed(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    doc = make_doc(
        [
            sql_task("ins", database=str(db), query="INSERT INTO t (id, name) VALUES (:id, :name)",
                     parameters={"id": 10, "name": "ten"}),
            sql_task("upd", database=str(db), query="UPDATE t SET name = upper(name) WHERE id <= :n",
                     parameters={"n": 3}),
        ],
        [{"from": "ins", "to": "upd"}],
    )
    run = run_doc(doc)
    assert run.status == "succeeded"
    assert run.tasks["ins"].output == {"rowcount": 1}
    assert run.tasks["upd"].output == {"rowcount": 3}
    assert read(db, "SELECT id, name FROM t WHERE id IN (1, 10) ORDER BY id") == [(1, "N1"), (10, "ten")]


def test_a_new_database_file_is_created_and_objects_bind_as_json(run_doc, tmp_path):
    db = tmp_path / "new.db"
    doc = make_doc(
        [
            sql_task("make", database=str(db), query="CREATE TABLE IF NOT EXISTS kv (k TEXT, v TEXT)"),
            sql_task("put", database=str(db), query="INSERT INTO kv SELECT key, value FROM json_each(:doc)",
                     parameters={"doc": {"a": 1, "b": "x"}}),
        ],
        [{"from": "make", "to": "put"}],
    )
    run = run_doc(doc)
    assert run.status == "succeeded", {k: v.error for k, v in run.tasks.items()}
    assert run.tasks["make"].output == {"rowcount": -1}
    assert read(db, "SELECT k, v FROM kv ORDER BY k") == [("a", "1"), ("b", "x")]


# -- sql: failures ------------------------------------------------------------------------------------------


def test_syntax_error_fails_with_sqlites_message_and_is_not_retried(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    run = run_doc(make_doc([sql_task(database=str(db), query="SELEC * FROM t", retries=2, retry_delay=0)]))
    task = run.tasks["q"]
    assert run.status == "failed" and task.status == "failed"
    assert len(task.attempt_list) == 1
    assert 'near "SELEC": syntax error' in task.error
    assert str(db) in task.error and "SELEC * FROM t" in task.error


def test_missing_table_is_not_retried_and_lists_the_tables(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    run = run_doc(make_doc([sql_task(database=str(db), query="SELECT * FROM nope", retries=2, retry_delay=0)]))
    task = run.tasks["q"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "no such table: nope" in task.error and "this database has: t" in task.error


def test_more_than_one_statement_is_refused(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    run = run_doc(make_doc([sql_task(database=str(db), query="DELETE FROM t; DROP TABLE t", retries=1, retry_delay=0)]))
    task = run.tasks["q"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "more than one statement" in task.error and "one statement per sql task" in task.error
    assert read(db, "SELECT count(*) FROM t") == [(5,)]


def test_a_placeholder_without_a_parameter_says_which(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    run = run_doc(make_doc([sql_task(database=str(db), query="SELECT * FROM t WHERE id = :wanted")]))
    assert "Add \"wanted\" to 'parameters'" in run.tasks["q"].error


def test_constraint_violation_is_not_retried(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    run = run_doc(make_doc([sql_task(database=str(db), query="INSERT INTO t (id) VALUES (1)", retries=2, retry_delay=0)]))
    task = run.tasks["q"]
    assert len(task.attempt_list) == 1 and "UNIQUE constraint failed: t.id" in task.error


def test_a_locked_database_is_retried(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        run = run_doc(make_doc([sql_task(database=str(db), query="SELECT count(*) FROM t",
                                         timeout=0.3, retries=1, retry_delay=0)]))
    finally:
        holder.rollback()
        holder.close()
    attempts = run.tasks["q"].attempt_list
    assert len(attempts) == 2  # retried
    assert all("database is locked" in a.error for a in attempts)


def test_url_without_sqlalchemy_says_what_to_install(run_doc):
    if HAS_SQLALCHEMY:
        pytest.skip("SQLAlchemy is installed here")
    run = run_doc(make_doc([sql_task(url="postgresql://etl:hunter2@db.example/warehouse", query="SELECT 1",
                                     retries=2, retry_delay=0)]))
    task = run.tasks["q"]
    assert task.status == "failed" and len(task.attempt_list) == 1
    assert "pip install 'taskloom[sql]' psycopg" in task.error
    assert "postgresql://etl:***@db.example/warehouse" in task.error and "hunter2" not in task.error


def test_long_query_times_out_in_about_a_second(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    started = time.monotonic()
    run = run_doc(make_doc([sql_task(database=str(db), query=COUNT_TO_A_BILLION, timeout=1)]))
    elapsed = time.monotonic() - started
    task = run.tasks["q"]
    assert task.status == "timed_out", task.error
    assert "timed out after 1 s" in task.error and "interrupted" in task.error
    assert elapsed < 4


def test_cancel_interrupts_a_running_query(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db")
    runners: list[Runner] = []

    def on_event(event: RunEvent) -> None:
        if event.kind == "task" and event.status == "running":
            threading.Timer(0.3, runners[0].cancel).start()

    started = time.monotonic()
    run = run_doc(make_doc([sql_task(database=str(db), query=COUNT_TO_A_BILLION)]),
                  on_runner=runners.append, on_event=on_event)
    assert time.monotonic() - started < 4
    assert run.status == "cancelled"
    assert run.tasks["q"].status == "cancelled"


# -- validation -----------------------------------------------------------------------------------------------


def test_validation_wants_exactly_one_of_database_and_url():
    both = make_doc([sql_task(database="a.db", url="sqlite:///a.db", query="SELECT 1")])
    assert issues_of(both) == [("/tasks/0/params", "give either 'database' or 'url', not both")]
    neither = make_doc([sql_task(query="SELECT 1")])
    assert issues_of(neither) == [("/tasks/0/params", "give either 'database' or 'url'")]


def test_validation_wants_a_query():
    assert issues_of(make_doc([sql_task(database="a.db")])) == [
        ("/tasks/0/params", "missing required parameter 'query'")
    ]


def test_validation_of_copy_params():
    doc = make_doc([copy_task(query="SELECT 1", database="a.db", table="bad name; drop", mode="merge",
                              batch_size=0)])
    found = issues_of(doc)
    assert ("/tasks/0/params", "give either 'target_database' or 'target_url'") in found
    assert any(path == "/tasks/0/params/table" for path, _ in found)
    assert any(path == "/tasks/0/params/mode" for path, _ in found)
    assert any(path == "/tasks/0/params/batch_size" for path, _ in found)
    ok = make_doc([copy_task(query="SELECT 1", url="postgresql+psycopg://u@h/db", target_database="b.db",
                             table="analytics.events")])
    assert issues_of(ok) == []


# -- sql_copy -----------------------------------------------------------------------------------------------------


def test_copy_creates_the_table_then_appends_and_replaces(run_doc, tmp_path):
    src, dst = make_db(tmp_path / "a.db"), tmp_path / "b.db"
    doc = make_doc([copy_task(database=str(src), target_database=str(dst), table="copied",
                              query="SELECT id, name, data FROM t WHERE id > :after",
                              parameters={"after": "{{ params.after }}"}, mode="append")],
                   params={"after": {"type": "integer", "default": 0}})
    first = run_doc(doc)
    assert first.status == "succeeded", first.tasks["c"].error
    assert first.tasks["c"].output == {"rows_copied": 5, "table": "copied", "mode": "append"}
    assert read(dst, "SELECT sql FROM sqlite_master WHERE name = 'copied'") == [
        ('CREATE TABLE "copied" ("id" INTEGER, "name" TEXT, "data" BLOB)',)
    ]
    assert read(dst, "SELECT * FROM copied ORDER BY id LIMIT 1") == [(1, "n1", b"\x01")]
    second = run_doc(doc)
    assert second.tasks["c"].output["rows_copied"] == 5
    assert read(dst, "SELECT count(*) FROM copied") == [(10,)]
    doc["tasks"][0]["params"]["mode"] = "replace"
    third = run_doc(doc, {"after": "2"})
    assert third.tasks["c"].output == {"rows_copied": 3, "table": "copied", "mode": "replace"}
    assert read(dst, "SELECT id FROM copied ORDER BY id") == [(3,), (4,), (5,)]


def test_copy_into_an_existing_table_keeps_its_schema(run_doc, tmp_path):
    src, dst = make_db(tmp_path / "a.db"), tmp_path / "b.db"
    with sqlite3.connect(dst) as db:
        db.execute("CREATE TABLE main.people (id INTEGER PRIMARY KEY, label TEXT NOT NULL, extra TEXT DEFAULT 'x')")
    db.close()
    run = run_doc(make_doc([copy_task(database=str(src), target_database=str(dst), table="main.people",
                                      query="SELECT id, name AS label FROM t", create=False)]))
    assert run.status == "succeeded", run.tasks["c"].error
    assert read(dst, "SELECT * FROM people WHERE id = 2") == [(2, "n2", "x")]


def test_copy_refuses_unknown_columns_and_a_missing_table_without_create(run_doc, tmp_path):
    src, dst = make_db(tmp_path / "a.db"), make_db(tmp_path / "b.db", rows=0)
    doc = make_doc([
        copy_task("cols", database=str(src), target_database=str(dst), table="t", query="SELECT id, name AS nom FROM t"),
        copy_task("nocreate", database=str(src), target_database=str(dst), table="absent", query="SELECT id FROM t",
                  create=False),
    ])
    run = run_doc(doc)
    assert "has no column 'nom'" in run.tasks["cols"].error and "id, name, data" in run.tasks["cols"].error
    assert "table absent does not exist" in run.tasks["nocreate"].error
    assert read(dst, "SELECT count(*) FROM sqlite_master WHERE name = 'absent'") == [(0,)]


def test_a_failure_half_way_leaves_the_target_as_it_was(run_doc, tmp_path):
    src = make_db(tmp_path / "a.db", rows=10)
    with sqlite3.connect(src) as db:
        db.execute("UPDATE t SET name = 'dup' WHERE id IN (2, 7)")  # the second batch repeats a name
    db.close()
    dst = tmp_path / "b.db"
    with sqlite3.connect(dst) as db:
        db.execute("CREATE TABLE names (id INTEGER, name TEXT UNIQUE)")
        db.execute("INSERT INTO names VALUES (0, 'before')")
    db.close()
    for mode in ("append", "replace"):
        run = run_doc(make_doc([copy_task(database=str(src), target_database=str(dst), table="names", mode=mode,
                                          query="SELECT id, name FROM t ORDER BY id", batch_size=5,
                                          retries=2, retry_delay=0)]))
        task = run.tasks["c"]
        assert task.status == "failed" and len(task.attempt_list) == 1  # a constraint: not retried
        assert "inserting into names failed" in task.error and "UNIQUE constraint failed: names.name" in task.error
        assert read(dst, "SELECT * FROM names") == [(0, "before")]


def test_a_failed_copy_does_not_leave_a_created_table(run_doc, tmp_path):
    src = make_db(tmp_path / "a.db", rows=4)
    dst = tmp_path / "b.db"
    run = run_doc(make_doc([copy_task(database=str(src), target_database=str(dst), table="nums", batch_size=2,
                                      query="SELECT id, CASE WHEN id = 3 THEN abs(-9223372036854775807 - 1) END AS x FROM t")]))
    assert run.tasks["c"].status == "failed" and "integer overflow" in run.tasks["c"].error
    assert f"SQLite database {src}: the source query failed" in run.tasks["c"].error
    assert read(dst, "SELECT count(*) FROM sqlite_master") == [(0,)]


def test_ten_thousand_rows_in_batches_log_batches_not_rows(run_doc, ws, tmp_path):
    src, dst = make_db(tmp_path / "a.db", rows=10_000), tmp_path / "b.db"
    run = run_doc(make_doc([copy_task(database=str(src), target_database=str(dst), table="t", batch_size=500,
                                      query="SELECT * FROM t")]))
    assert run.tasks["c"].output == {"rows_copied": 10_000, "table": "t", "mode": "append"}
    assert read(dst, "SELECT count(*), sum(id) FROM t") == [(10_000, 10_000 * 10_001 // 2)]
    lines = system_lines(ws, run.id, "c")
    batches = [l for l in lines if l.startswith("batch ")]
    assert len(batches) == 20 and len(lines) < 30
    assert batches[-1] == "batch 20: 500 row(s) inserted, 10000 so far"


def test_copy_within_one_file_and_into_the_table_it_reads(run_doc, tmp_path):
    db = make_db(tmp_path / "a.db", rows=3000)
    run = run_doc(make_doc([
        copy_task("other", database=str(db), target_database=str(db), table="t2", query="SELECT * FROM t",
                  batch_size=100),
        copy_task("self", database=str(db), target_database=str(db), table="t", query="SELECT name FROM t",
                  batch_size=100, timeout=20),
    ], [{"from": "other", "to": "self"}]))
    assert run.status == "succeeded", {k: v.error for k, v in run.tasks.items()}
    assert run.tasks["self"].output["rows_copied"] == 3000  # read a snapshot: it did not chase its own rows
    assert read(db, "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM t2)") == [(6000, 3000)]


def test_the_source_is_read_only_and_must_exist(run_doc, tmp_path):
    src, dst = make_db(tmp_path / "a.db"), tmp_path / "b.db"
    run = run_doc(make_doc([
        copy_task("writes", database=str(src), target_database=str(dst), table="x",
                  query="DELETE FROM t RETURNING id"),
        copy_task("missing", database=str(tmp_path / "nope.db"), target_database=str(dst), table="x",
                  query="SELECT 1"),
    ]))
    assert "readonly" in run.tasks["writes"].error
    assert read(src, "SELECT count(*) FROM t") == [(5,)]
    assert "does not exist" in run.tasks["missing"].error and not (tmp_path / "nope.db").exists()


def test_copy_times_out_and_rolls_back(run_doc, tmp_path):
    src, dst = make_db(tmp_path / "a.db"), tmp_path / "b.db"
    started = time.monotonic()
    run = run_doc(make_doc([copy_task(database=str(src), target_database=str(dst), table="n", timeout=1,
                                      query="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                                            " WHERE i < 1000000000) SELECT i FROM n")]))
    assert time.monotonic() - started < 4
    assert run.tasks["c"].status == "timed_out"
    assert read(dst, "SELECT count(*) FROM sqlite_master") == [(0,)]


# -- SQLAlchemy, when it is installed (the 'sql' extra) -----------------------------------------------------


@pytest.mark.skipif(not HAS_SQLALCHEMY, reason="the optional extra taskloom[sql] is not installed")
def test_sqlalchemy_urls_work_for_sql_and_both_ends_of_a_copy(run_doc, tmp_path):
    src, dst = make_db(tmp_path / "a.db"), tmp_path / "b.db"
    run = run_doc(make_doc([
        sql_task("q", url=f"sqlite:///{src}", query="SELECT id, name, data FROM t WHERE id > :n", parameters={"n": 3}),
        sql_task("bad", url=f"sqlite:///{src}", query="SELEC 1", retries=1, retry_delay=0),
        copy_task("to_url", database=str(src), target_url=f"sqlite:///{dst}", table="t", query="SELECT * FROM t"),
        copy_task("from_url", url=f"sqlite:///{src}", target_database=str(dst), table="u", query="SELECT * FROM t"),
    ]))
    assert run.tasks["q"].output["rows"] == [{"id": 4, "name": "n4", "data": "BA=="}, {"id": 5, "name": "n5", "data": "BQ=="}]
    assert 'near "SELEC": syntax error' in run.tasks["bad"].error and len(run.tasks["bad"].attempt_list) == 1
    assert run.tasks["to_url"].output["rows_copied"] == 5 and run.tasks["from_url"].output["rows_copied"] == 5
    assert read(dst, "SELECT count(*) FROM t") == [(5,)] and read(dst, "SELECT count(*) FROM u") == [(5,)]


@pytest.mark.skipif(not HAS_SQLALCHEMY, reason="the optional extra taskloom[sql] is not installed")
def test_sqlalchemy_query_times_out(run_doc, tmp_path):
    src = make_db(tmp_path / "a.db")
    started = time.monotonic()
    run = run_doc(make_doc([sql_task(url=f"sqlite:///{src}", query=COUNT_TO_A_BILLION, timeout=1)]))
    assert time.monotonic() - started < 4
    assert run.tasks["q"].status == "timed_out"


# -- helpers -------------------------------------------------------------------------------------------------------


def test_values_become_json():
    import datetime
    import decimal

    assert json_value(b"\x00\xff") == "AP8="
    assert json_value(decimal.Decimal("1.10")) == "1.10"
    assert json_value(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert json_value(float("inf")) == "inf"
    assert json_value({"a": [1, b"\x01"]}) == {"a": [1, "AQ=="]}
    assert unique_names(["id", "ID", "id", "x"]) == ["id", "ID_2", "id_3", "x"]


def test_urls_are_shown_without_passwords_and_name_their_driver():
    assert hide_password("postgresql+psycopg://me:s3cr%40t@h:5432/db?sslmode=require") == \
        "postgresql+psycopg://me:***@h:5432/db?sslmode=require"
    assert hide_password("mysql+pymysql://h/db?user=me&password=x") == "mysql+pymysql://h/db?user=me&password=***"
    assert hide_password("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert install_command("postgresql+psycopg://h/db") == "pip install 'taskloom[sql]' psycopg"
    assert install_command("mysql+pymysql://h/db") == "pip install 'taskloom[sql]' pymysql"
    assert install_command("postgresql://h/db", "psycopg2") == "pip install 'taskloom[sql]' psycopg2-binary"
    assert install_command("sqlite:///a.db") == "pip install 'taskloom[sql]'"


# -- docs and the example -------------------------------------------------------------------------------------------


def doc_workflows() -> list[str]:
    text = (ROOT / "docs" / "tasks" / "sql.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    return [b for b in blocks if re.sub(r"\s", "", b).startswith('{"format"')]


def test_every_workflow_in_the_docs_validates():
    blocks = doc_workflows()
    assert len(blocks) >= 2
    for block in blocks:
        assert validate_document(json.loads(block)) == [], block[:80]


def test_daily_copy_example_copies_only_new_rows_the_second_time(ws, tmp_path):
    path = ROOT / "assets" / "examples" / "daily-copy.json"
    doc = ws.read_file(path)
    assert [t["type"] for t in doc["tasks"]].count("sql_copy") == 1
    params = {"source": str(tmp_path / "a.db"), "target": str(tmp_path / "b.db")}
    copied = []
    for _ in range(2):
        run_id, _ = ws.start_run(ws.target(str(path)), params)
        execute(ws, run_id, cwd=str(tmp_path))
        run = ws.run(run_id)
        assert run.status == "succeeded", {k: (v.status, v.error) for k, v in run.tasks.items()}
        copied.append(run.tasks["copy"].output["rows_copied"])
    assert copied[0] == copied[1] > 0
    assert read(tmp_path / "b.db", "SELECT count(*) FROM events") == read(tmp_path / "a.db", "SELECT count(*) FROM events")
    assert read(tmp_path / "b.db", "SELECT count(*) FROM events") == [(2 * copied[0],)]
