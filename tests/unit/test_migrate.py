"""The schema check of every store, upgrades that race, and the ``hotline db`` commands (SQLite here).

tests/integration/test_upgrade.py upgrades a release-2c742a7 database on SQLite and PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main
from knowledge_base.errors import SchemaOutdated, SchemaTooNew
from knowledge_base.staff.interactions import InteractionStore
from knowledge_base.storage.database import open_database
from knowledge_base.storage.migrate import (
    RELEASE_REVISION,
    ensure_current,
    head_revision,
    known_revisions,
    schema_differences,
    status,
    upgrade,
)
from knowledge_base.storage.store import SQLStore

pytestmark = pytest.mark.unit


def test_a_new_database_is_created_at_head_and_matches_the_declaration():
    db = open_database(":memory:")
    assert status(db).state == "new"
    ensure_current(db)
    assert status(db).current == head_revision() and schema_differences(db) == []
    ensure_current(db)  # checked once per database object: nothing more to do


def test_a_store_on_an_outdated_database_says_to_upgrade(db):
    upgrade(db, RELEASE_REVISION)
    with pytest.raises(SchemaOutdated, match=rf"revision {RELEASE_REVISION}; .* needs revision .*hotline db upgrade"):
        SQLStore(db)
    with pytest.raises(SchemaOutdated) as raised:
        InteractionStore(db)
    assert (raised.value.current, raised.value.head) == (RELEASE_REVISION, head_revision())
    upgrade(db)
    assert SQLStore(db).kb_version() == 0


def test_tables_without_a_revision_are_a_release_before_revisions(db):
    db.ensure_schema("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    with pytest.raises(SchemaOutdated, match=r"release without schema revisions \(2c742a7 or older\)"):
        SQLStore(db)


def test_a_database_of_a_newer_release_is_refused(db):
    SQLStore(db)
    db.execute("UPDATE alembic_version SET version_num='9999'")
    fresh = open_database(db.url.removeprefix("sqlite:///"))  # another process: nothing cached
    with pytest.raises(SchemaTooNew, match="revision 9999, which this hotline-qa"):
        SQLStore(fresh)
    with pytest.raises(SchemaTooNew):
        upgrade(fresh)
    fresh.close()


def _upgrade_at(path: str, start: float) -> tuple[str, ...]:
    time.sleep(max(0.0, start - time.time()))  # both processes begin together
    db = open_database(path)
    try:
        return upgrade(db).applied
    finally:
        db.close()


def test_two_processes_upgrading_one_file_at_once_both_succeed(tmp_path: Path):
    path = str(tmp_path / "kb.sqlite3")
    old = open_database(path)
    upgrade(old, RELEASE_REVISION)
    old.close()
    start = time.time() + 2.0  # past both processes' start-up
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_upgrade_at, [(path, start), (path, start)])
    # One ran the migrations, the other waited for its lock and found them done.
    assert sorted(results) == [(), known_revisions()[1:]]
    db = open_database(path)
    assert status(db).state == "current" and schema_differences(db) == []
    db.close()


def test_two_threads_creating_one_new_file_at_once_both_succeed(tmp_path: Path):
    import threading

    path = tmp_path / "kb.sqlite3"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            db = open_database(path)
            barrier.wait(timeout=60)
            SQLStore(db)
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()  # the others stop waiting for a thread that will not come

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert status(open_database(path)).state == "current"


def test_cli_db_current_and_upgrade(tmp_path: Path):
    runner = CliRunner()
    env = {"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_CONFIG": str(tmp_path / "none.yml")}
    upgrade(open_database(tmp_path / "kb.sqlite3"), RELEASE_REVISION)

    result = runner.invoke(main, ["db", "current"], env=env)
    assert result.exit_code == 1 and f"current:  {RELEASE_REVISION}" in result.output
    assert "run: hotline db upgrade" in result.output

    result = runner.invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert f"upgraded from {RELEASE_REVISION} to revision {head_revision()}" in result.output
    assert "applied 0002: Indexes" in result.output

    result = runner.invoke(main, ["db", "current"], env=env)
    assert result.exit_code == 0 and "(latest)" in result.output
    assert runner.invoke(main, ["db", "upgrade"], env=env).output.strip().endswith("(latest)")


def test_cli_commands_on_an_outdated_database_print_the_fix_not_a_traceback(tmp_path: Path):
    runner = CliRunner()
    env = {"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_CONFIG": str(tmp_path / "none.yml")}
    upgrade(open_database(tmp_path / "kb.sqlite3"), RELEASE_REVISION)
    result = runner.invoke(main, ["user", "list"], env=env)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # click's clean exit, not an escaped SchemaOutdated
    assert "Run: hotline db upgrade" in result.output and "Traceback" not in result.output
