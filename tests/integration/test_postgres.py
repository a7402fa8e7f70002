"""The store, the interaction log, the database layer and backups on PostgreSQL, by the same tests as SQLite.

The contract tests of tests/unit are imported, not copied, and run here on both backends:
the ``backend`` fixture gives each one a SQLite file or a fresh schema of a PostgreSQL
database created for this module (random name, dropped at the end). The server comes from
HOTLINE_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres); the user
needs CREATE DATABASE. An unreachable server fails these tests: CI has one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from knowledge_base.records import Entry
from knowledge_base.staff.interactions import InteractionStore
from knowledge_base.storage.backup import backup_database, restore_database
from knowledge_base.storage.database import Database, PostgresDatabase, open_database, redact_url
from knowledge_base.storage.store import SQLStore
from tests.unit.test_backup import (  # noqa: F401 - collected here again, on both backends
    dump,
    fill,
    test_a_backup_of_a_newer_revision_is_refused,
    test_a_backup_without_a_revision_is_of_release_2c742a7_and_is_upgraded,
    test_a_database_behind_the_code_is_backed_up_at_its_revision_but_not_restored_into,
    test_a_failure_while_writing_rolls_every_table_back,
    test_a_restored_database_carries_on_where_the_source_stopped,
    test_a_target_holding_data_is_refused_unless_replaced,
    test_an_altered_archive_is_refused_and_the_target_left_alone,
    test_an_older_revision_that_fails_mid_write_leaves_the_target_as_it_was,
    test_only_declared_tables_and_columns_are_backed_up,
    test_replace_empties_tables_the_backup_does_not_have,
    test_round_trip_restores_identical_rows,
)
from tests.unit.test_database import (  # noqa: F401
    test_a_broken_constraint_raises_integrity_error,
    test_ensure_schema_is_idempotent,
    test_nested_transaction_undoes_only_its_own_work,
    test_rows_are_dicts_and_insert_returns_the_new_id,
    test_snapshot_reads_consistently_and_is_read_only,
    test_transaction_commits_on_exit_and_rolls_back_on_an_exception,
    test_writers_are_serialised_so_no_update_is_lost,
)
from tests.unit.test_interactions import (  # noqa: F401
    test_a_bad_work_order_is_refused_and_nothing_is_stored,
    test_concurrent_work_orders_get_distinct_numbers,
    test_feedback_and_answer_log_round_trip,
    test_work_orders_are_numbered_by_date_and_sequence,
)
from tests.unit.test_store import (  # noqa: F401
    test_add_assigns_id_key_version_and_bumps_kb_version,
    test_changed_since_lists_changed_and_deleted_entries,
    test_concurrent_saves_from_two_hosts_let_exactly_one_win,
    test_concurrent_saves_of_one_entry_let_exactly_one_win,
    test_hostile_text_is_stored_as_text,
    test_import_adds_updates_and_skips_unchanged,
    test_import_is_all_or_nothing,
    test_rollback_checks_version_and_ownership,
    test_rollback_is_a_new_revision,
    test_second_save_of_the_same_version_is_refused_and_nothing_is_lost,
    test_status_filter_and_author_required,
    test_update_keeps_a_full_revision_with_before_and_after,
)

pytestmark = pytest.mark.integration

SERVER_URL = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """The URL of a new, empty database on the test server; dropped after this module."""
    try:
        admin = psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {redact_url(SERVER_URL)}: {str(exc).strip()}. Start it, or set "
            "HOTLINE_TEST_POSTGRES_URL to a server where this user may CREATE DATABASE.",
            pytrace=False,
        )
    name = f"hotline_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield urlunsplit(urlsplit(SERVER_URL)._replace(path=f"/{name}"))
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def empty_schema_url(postgres: str) -> str:
    """A URL whose connections work in a new schema of its own: a fresh database for one test, made cheaply."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    parts = urlsplit(postgres)
    # Not waiting for the disk at each commit makes this module about twice as fast; durability is not under test.
    options = f"options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"
    query = "&".join(filter(None, [parts.query, options]))
    return urlunsplit(parts._replace(query=query))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def new_database(backend, tmp_path, request):
    """Makes fresh, empty databases of the backend under test."""
    made: list[Database] = []

    def make() -> Database:
        if backend == "sqlite":
            made.append(open_database(tmp_path / f"db{len(made)}.sqlite3"))
        else:
            made.append(open_database(empty_schema_url(request.getfixturevalue("postgres"))))
        return made[-1]

    yield make
    for db in made:
        db.close()


@pytest.fixture
def db(new_database) -> Database:
    return new_database()


@pytest.fixture
def store(db) -> SQLStore:
    return SQLStore(db)


@pytest.fixture
def interactions(db) -> InteractionStore:
    return InteractionStore(db)


# -- PostgreSQL only -----------------------------------------------------------------


def test_the_schema_gets_postgres_types(postgres):
    db = open_database(empty_schema_url(postgres))
    SQLStore(db)
    InteractionStore(db)
    types = {
        (r["table_name"], r["column_name"]): r["data_type"]
        for r in db.query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        )
    }
    assert isinstance(db, PostgresDatabase) and db.dialect == "postgresql"
    assert types[("entries", "id")] == types[("entries", "kb_version")] == "bigint"
    assert types[("answer_log", "score")] == "double precision"
    assert types[("entries", "content")] == "text"
    db.close()


def test_a_sqlite_backup_restores_into_postgres_and_back(postgres, tmp_path):
    sqlite = open_database(tmp_path / "source.sqlite3")
    fill(sqlite)
    backup_database(sqlite, tmp_path / "from-sqlite.tar.gz")

    pg = open_database(empty_schema_url(postgres))
    restored = restore_database(pg, tmp_path / "from-sqlite.tar.gz")
    assert restored.source_dialect == "sqlite" and restored.kb_version == 5
    assert dump(pg) == dump(sqlite)
    assert SQLStore(pg).add(Entry(question="新问题"), author="x").id == 5  # counters moved on

    backup_database(pg, tmp_path / "from-postgres.tar.gz")
    back = open_database(tmp_path / "back.sqlite3")
    assert restore_database(back, tmp_path / "from-postgres.tar.gz").source_dialect == "postgresql"
    assert dump(back) == dump(pg)
    for db in (sqlite, pg, back):
        db.close()
