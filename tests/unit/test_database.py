"""The database layer: SQL translation for PostgreSQL, and the behaviour both dialects share.

The behaviour tests run here on SQLite; tests/integration/test_postgres.py runs them on PostgreSQL too.
"""

from __future__ import annotations

import threading

import pytest

from knowledge_base import factory
from knowledge_base.errors import DatabaseError
from knowledge_base.settings import Settings
from knowledge_base.storage.database import (
    IntegrityError,
    SQLiteDatabase,
    open_database,
    postgres_ddl,
    postgres_sql,
    redact_url,
    split_statements,
)

pytestmark = pytest.mark.unit

NOTES = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL UNIQUE, n INTEGER)"


# -- SQL translation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a=? AND b=?", "SELECT * FROM t WHERE a=%s AND b=%s"),
        ("SELECT '?' || ? FROM t", "SELECT '?' || %s FROM t"),
        ("SELECT * FROM t WHERE a LIKE '50%' AND b=?", "SELECT * FROM t WHERE a LIKE '50%%' AND b=%s"),
        ('SELECT "odd?name" FROM t -- why?\nWHERE a=?', 'SELECT "odd?name" FROM t -- why?\nWHERE a=%s'),
        ("SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , %s"),
    ],
)
def test_placeholders_become_psycopg_style_outside_quotes(sql, expected):
    assert postgres_sql(sql) == expected


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        ("id INTEGER PRIMARY KEY AUTOINCREMENT", "id BIGSERIAL PRIMARY KEY"),
        ("id integer primary key", "BIGSERIAL PRIMARY KEY"),
        ("n INTEGER NOT NULL, r REAL, b BLOB, t TEXT", "n BIGINT NOT NULL, r DOUBLE PRECISION, b BYTEA, t TEXT"),
        ("interval_s INTEGER DEFAULT 'REAL'", "interval_s BIGINT DEFAULT 'REAL'"),
    ],
)
def test_ddl_gets_postgres_types(ddl, expected):
    assert expected in postgres_ddl(ddl)


def test_statements_split_at_unquoted_semicolons_only():
    script = "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n-- a comment; with a semicolon\n;\nCREATE INDEX i ON a (x);"
    assert split_statements(script) == ["CREATE TABLE a (x TEXT DEFAULT 'a;b')", "CREATE INDEX i ON a (x)"]


# -- behaviour both dialects share -------------------------------------------------


def test_rows_are_dicts_and_insert_returns_the_new_id(db):
    db.ensure_schema(NOTES)
    assert db.insert("INSERT INTO notes (body, n) VALUES (?, ?)", ("甲", 1)) == 1
    assert db.insert("INSERT INTO notes (body, n) VALUES (?, ?)", ("乙 100%", None)) == 2
    assert db.query("SELECT id, body, n FROM notes ORDER BY id") == [
        {"id": 1, "body": "甲", "n": 1},
        {"id": 2, "body": "乙 100%", "n": None},
    ]
    assert db.query_one("SELECT body FROM notes WHERE id=?", (2,)) == {"body": "乙 100%"}
    assert db.query_one("SELECT body FROM notes WHERE id=?", (3,)) is None
    assert db.execute("UPDATE notes SET n=? WHERE n IS NULL OR n=?", (5, 1)) == 2


def test_ensure_schema_is_idempotent(db):
    db.ensure_schema(NOTES + ";\nCREATE INDEX IF NOT EXISTS notes_n ON notes (n);")
    db.insert("INSERT INTO notes (body) VALUES (?)", ("甲",))
    db.ensure_schema(NOTES + ";\nCREATE INDEX IF NOT EXISTS notes_n ON notes (n);")
    assert db.query_one("SELECT COUNT(*) AS c FROM notes") == {"c": 1}


def test_transaction_commits_on_exit_and_rolls_back_on_an_exception(db):
    db.ensure_schema(NOTES)
    with db.transaction():
        db.insert("INSERT INTO notes (body) VALUES (?)", ("kept",))
    with pytest.raises(ZeroDivisionError), db.transaction():
        db.insert("INSERT INTO notes (body) VALUES (?)", ("undone",))
        raise ZeroDivisionError
    assert [r["body"] for r in db.query("SELECT body FROM notes")] == ["kept"]


def test_nested_transaction_undoes_only_its_own_work(db):
    db.ensure_schema(NOTES)
    with db.transaction():
        db.insert("INSERT INTO notes (body) VALUES (?)", ("outer",))
        with pytest.raises(KeyError), db.transaction():
            db.insert("INSERT INTO notes (body) VALUES (?)", ("inner",))
            raise KeyError
        db.insert("INSERT INTO notes (body) VALUES (?)", ("outer again",))
    assert [r["body"] for r in db.query("SELECT body FROM notes ORDER BY id")] == ["outer", "outer again"]


def test_a_broken_constraint_raises_integrity_error(db):
    db.ensure_schema(NOTES)
    db.insert("INSERT INTO notes (body) VALUES (?)", ("甲",))
    with pytest.raises(IntegrityError):
        db.insert("INSERT INTO notes (body) VALUES (?)", ("甲",))
    with pytest.raises(IntegrityError), db.transaction():
        db.insert("INSERT INTO notes (body) VALUES (?)", ("乙",))
        db.insert("INSERT INTO notes (body) VALUES (?)", (None,))
    assert db.query_one("SELECT COUNT(*) AS c FROM notes") == {"c": 1}


def test_writers_are_serialised_so_no_update_is_lost(db):
    """Read-modify-write inside transaction() from many threads and two handles: every increment counts."""
    db.ensure_schema(NOTES)
    db.insert("INSERT INTO notes (body, n) VALUES ('counter', 0)")
    handles = [db, open_database(db.url)]

    def bump(handle, times: int = 10) -> None:
        for _ in range(times):
            with handle.transaction():
                row = handle.query_one("SELECT n FROM notes WHERE body='counter'")
                handle.execute("UPDATE notes SET n=? WHERE body='counter'", (row["n"] + 1,))

    threads = [threading.Thread(target=bump, args=(handles[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handles[1].close()
    assert db.query_one("SELECT n FROM notes WHERE body='counter'") == {"n": 60}


def test_snapshot_reads_consistently_and_is_read_only(db):
    db.ensure_schema(NOTES)
    with db.snapshot():
        assert db.query("SELECT * FROM notes") == []
        with pytest.raises(RuntimeError, match="read-only"), db.transaction():
            pass
    with db.transaction(), db.snapshot():  # inside a write transaction it adds nothing
        db.insert("INSERT INTO notes (body) VALUES (?)", ("甲",))
    assert db.query_one("SELECT COUNT(*) AS c FROM notes") == {"c": 1}


def test_a_closed_database_says_so(db):
    db.close()
    db.close()
    with pytest.raises(DatabaseError, match="closed"):
        db.query("SELECT 1")


# -- SQLite, URLs and settings ----------------------------------------------------------


def test_urls_and_paths_open_sqlite(tmp_path):
    by_url = open_database(f"sqlite:///{tmp_path}/a.sqlite3")
    by_path = open_database(tmp_path / "b" / "b.sqlite3")
    assert isinstance(by_url, SQLiteDatabase) and by_url.url == f"sqlite:///{tmp_path}/a.sqlite3"
    assert by_path.dialect == "sqlite" and (tmp_path / "b" / "b.sqlite3").exists()
    assert open_database(by_url.url).url == by_url.url  # the url opens the same file again
    for db in (by_url, by_path):
        db.close()


def test_in_memory_database_is_shared_between_its_threads():
    db = open_database(":memory:")
    db.ensure_schema(NOTES)
    threads = [
        threading.Thread(target=db.insert, args=("INSERT INTO notes (body) VALUES (?)", (f"t{i}",))) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.query_one("SELECT COUNT(*) AS c FROM notes") == {"c": 4}
    assert open_database(":memory:").query("SELECT name FROM sqlite_master") == []  # private to its owner


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite://relative.db", "redis://h:6379/0"])
def test_other_urls_are_refused_with_the_forms_allowed(url):
    with pytest.raises(ValueError, match="postgresql://"):
        open_database(url)


def test_unreachable_postgres_names_the_server_but_not_the_password():
    with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL") as caught:
        open_database("postgresql://hotline:s3cret@127.0.0.1:1/kb")
    assert "127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)
    assert redact_url("postgresql://u:pw@h:5/db?x=1") == "postgresql://u:***@h:5/db?x=1"


def test_every_store_of_a_process_shares_one_database(settings):
    db = factory.open_database(settings)
    assert factory.open_database(settings) is db
    assert factory.open_store(settings).db is db and factory.open_interactions(settings).db is db
    assert db.url == f"sqlite:///{(settings.data_path / 'kb.sqlite3').resolve()}"
    db.close()
    assert factory.open_database(settings) is not db  # a closed one is opened again


@pytest.mark.parametrize(
    ("url", "ok"),
    [("", True), ("sqlite:///x.db", True), ("postgresql://u@h:5432/kb", True), ("mysql://u:pw@h/kb", False)],
)
def test_settings_check_database_url_without_echoing_it(url, ok):
    if ok:
        Settings(database_url=url)
        return
    with pytest.raises(ValueError, match="database_url") as caught:
        Settings(database_url=url)
    assert "pw" not in str(caught.value)


def test_a_postgres_setting_has_no_sqlite_path():
    with pytest.raises(ValueError, match="open_database"):
        _ = Settings(database_url="postgresql://u@h/kb").sqlite_path


def test_workers_opening_a_new_file_together_all_get_it(tmp_path):
    # Switching a new file to WAL answers "database is locked" at once to a second connection doing the same;
    # before the retry, about 1 open in 60 failed like this with six threads at once.
    failures: list[BaseException] = []
    for round_ in range(40):
        path = tmp_path / f"kb-{round_}.sqlite3"
        barrier = threading.Barrier(6)

        def open_it(path=path, barrier=barrier) -> None:
            try:
                barrier.wait(timeout=60)
                open_database(path).query("SELECT 1 AS one")
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
