"""Backup and restore: identical rows after a round trip, refusals that leave the target untouched.

Run here on SQLite; tests/integration/test_postgres.py runs the same functions on PostgreSQL, and
restores a SQLite backup into PostgreSQL and back.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hotline.cli import main
from knowledge_base.errors import BackupRejected
from knowledge_base.records import Entry
from knowledge_base.staff.interactions import InteractionStore
from knowledge_base.storage.backup import backup_database, declared_tables, read_manifest, restore_database
from knowledge_base.storage.database import Database, IntegrityError, open_database
from knowledge_base.storage.migrate import (
    RELEASE_REVISION,
    head_revision,
    schema_differences,
    status,
    table_names,
    upgrade,
)
from knowledge_base.storage.store import SQLStore

pytestmark = pytest.mark.unit

# Written straight into the declared tables: a user row, and a table without an id.
USER = (
    "INSERT INTO users (username, display_name, role, password_hash, disabled, failed_logins, locked_until, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def fill(db: Database) -> None:
    """Every kind of row the application writes, including a deleted entry (its id must stay retired)."""
    store, log = SQLStore(db), InteractionStore(db)
    first = store.add(Entry(question="社保怎么查", answer="登录粤省事。"), author="alice")
    store.import_entries(
        [Entry(key="K-1", question="公积金提取"), Entry(key="K-2", question="'; DROP TABLE x; --")], author="import"
    )
    gone = store.add(Entry(question="临时补贴", answer="已停止"), author="alice")
    store.update(first.replace(answer="登录粤省事或到窗口查询。"), author="bob")
    store.delete(gone.id, expected_version=1, author="bob")  # the highest id: a restore must not hand it out again
    log.create_work_order(channel="web", sender_id="s1", description="噪音", name="张", phone="13812345678")
    log.record_feedback(channel="web", sender_id="s1", entry_key="KB-000001", kb_version=3, useful=True)
    log.log_answer(
        channel="hotline",
        sender_id="c1",
        query="社保",
        decision="answer",
        entry_key="KB-000001",
        score=0.9512345678901234,
        kb_version=3,
        thresholds={"answer_threshold": 0.952},
        candidates=[("KB-000001", 0.95)],
    )
    db.insert(USER, ("admin", "管理员", "admin", "scrypt$x", 0, 0, None, "2026-11-26T09:00:00"))
    db.insert(USER, ("editor", "编辑", "editor", "scrypt$y", 1, 2, "2026-11-26T10:00:00", "2026-11-26T09:00:00"))
    db.execute(
        "INSERT INTO curation_done (fingerprint, action, actor, created_at) VALUES (?, ?, ?, ?)",
        ("社保 卡", "dismissed", "admin", "2026-11-26T09:30:00"),
    )


def dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in key order: what "identical" means across dialects."""
    out = {}
    present = table_names(db)
    for name, table in declared_tables().items():
        if name not in present:
            continue
        order = ", ".join(table.primary_key or table.column_names)
        rows = db.query(f"SELECT * FROM {name} ORDER BY {order}")
        out[name] = [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()} for r in rows]
    return out


def test_round_trip_restores_identical_rows(db, new_database, tmp_path):
    fill(db)
    archive = tmp_path / "backup.tar.gz"
    made = backup_database(db, archive)
    assert made.kb_version == SQLStore(db).kb_version() == 5
    assert made.tables["entries"] == 3 and made.tables["users"] == 2 and made.tables["answer_log"] == 1
    assert archive.stat().st_mode & 0o077 == 0  # phone numbers and password hashes: owner only

    target = new_database()
    restored = restore_database(target, archive)
    assert dump(target) == dump(db)
    assert restored.kb_version == 5 and restored.rows == made.rows
    assert restored.source_dialect == db.dialect
    manifest = read_manifest(archive)
    assert manifest["source_dialect"] == db.dialect and manifest["format_version"] == 2
    assert manifest["schema_revision"] == made.schema_revision == restored.schema_revision == head_revision()
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == made.tables


def test_a_restored_database_carries_on_where_the_source_stopped(db, new_database, tmp_path):
    fill(db)
    backup_database(db, tmp_path / "b.tar.gz")
    target = new_database()
    restore_database(target, tmp_path / "b.tar.gz")
    store = SQLStore(target)
    assert store.kb_version() == 5  # restore bumps nothing
    added = store.add(Entry(question="新问题"), author="carol")
    assert added.id == 5 and store.kb_version() == 6  # not 4, the deleted entry's id
    order = InteractionStore(target).create_work_order(channel="web", sender_id="s", description="又一个问题")
    assert order.number.endswith("000002")
    with pytest.raises(IntegrityError):  # the tables the restore created keep their constraints
        target.insert(USER, ("admin", "又一个", "admin", "scrypt$z", 0, 0, None, "2026-11-27T09:00:00"))


def test_a_target_holding_data_is_refused_unless_replaced(db, new_database, tmp_path):
    fill(db)
    backup_database(db, tmp_path / "b.tar.gz")
    target = new_database()
    SQLStore(target).add(Entry(question="目标里已有的"), author="x")
    InteractionStore(target).create_work_order(channel="web", sender_id="s", description="目标的工单")
    before = dump(target)
    with pytest.raises(BackupRejected, match=r"not empty: .*entries \(1 row.*--replace"):
        restore_database(target, tmp_path / "b.tar.gz")
    assert dump(target) == before

    restored = restore_database(target, tmp_path / "b.tar.gz", replace=True)
    # The backup's rows, plus one KB version past both histories that marks every entry changed,
    # so workers that served the replaced data re-read everything.
    assert restored.kb_version == 6
    got, want = dump(target), dump(db)
    assert {k: v for k, v in got.items() if k not in ("entries", "revisions", "meta")} == {
        k: v for k, v in want.items() if k not in ("entries", "revisions", "meta")
    }
    strip = [{k: v for k, v in row.items() if k != "kb_version"} for row in got["entries"]]
    assert strip == [{k: v for k, v in row.items() if k != "kb_version"} for row in want["entries"]]
    restore_rows = [r for r in got["revisions"] if r["action"] == "restore"]
    assert [r for r in got["revisions"] if r["action"] != "restore"] == want["revisions"]
    assert sorted(r["entry_id"] for r in restore_rows) == sorted({*(e["id"] for e in want["entries"]), 1})


def test_workers_serving_the_replaced_data_move_onto_the_restored_entries(db, new_database, tmp_path, normaliser):
    from knowledge_base.search.embedder import FakeEmbedder
    from knowledge_base.search.kb import KnowledgeBase

    SQLStore(db).add(Entry(key="R-1", question="居住证怎么办理", answer="备份里的答案"), author="x")
    backup_database(db, tmp_path / "b.tar.gz")
    target = new_database()
    store = SQLStore(target)
    for i in range(6):  # the served database is further along than the backup
        store.add(Entry(key=f"LIVE-{i}", question=f"线上问题{i}怎么办", answer="线上"), author="y")
    kb = KnowledgeBase(store, FakeEmbedder(), normaliser)
    kb.warm_up()
    assert kb.search("线上问题3怎么办").best.entry.key == "LIVE-3"
    restore_database(target, tmp_path / "b.tar.gz", replace=True)
    kb.sync()
    assert kb.search("居住证怎么办理").best.entry.answer == "备份里的答案"
    assert all(not h.entry.key.startswith("LIVE") for h in kb.search("线上问题3怎么办").hits)


def without_users(name: str, data: bytes) -> bytes | None:
    return None if name == "tables/users.jsonl" else data


def drop_users_from_manifest(m: dict[str, Any]) -> None:
    m["tables"] = [t for t in m["tables"] if t["name"] != "users"]


def test_replace_empties_tables_the_backup_does_not_have(db, new_database, tmp_path):
    SQLStore(db).add(Entry(question="甲"), author="x")
    backup_database(db, tmp_path / "b.tar.gz")
    # Release 2c742a7 backed up the tables its stores had made: here no users table.
    partial = rewrite(
        tmp_path / "b.tar.gz", tmp_path / "partial.tar.gz", change=without_users, manifest=drop_users_from_manifest
    )
    target = new_database()
    fill(target)
    restored = restore_database(target, partial, replace=True)
    assert "users" in restored.emptied and target.query("SELECT * FROM users") == []
    assert [e.question for e in SQLStore(target).entries()] == ["甲"]


# -- damaged and altered archives --------------------------------------------------------


def rewrite(
    archive: Path,
    out: Path,
    *,
    change: Callable[[str, bytes], bytes | None] = lambda name, data: data,
    manifest: Callable[[dict[str, Any]], None] = lambda m: None,
    fix_checksums: bool = False,
    add: dict[str, bytes] | None = None,
) -> Path:
    """A copy of ``archive`` with members changed (None drops one), its manifest edited, files added."""
    with tarfile.open(archive, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    man = json.loads(files.pop("manifest.json"))
    files = {k: v for k, v in ((k, change(k, v)) for k, v in files.items()) if v is not None}
    files.update(add or {})
    if fix_checksums:
        for table in man["tables"]:
            data = files.get(table["file"], b"")
            table["sha256"] = hashlib.sha256(data).hexdigest()
            table["rows"] = data.count(b"\n")
    manifest(man)
    with tarfile.open(out, "w:gz") as tar:
        for name, data in [("manifest.json", json.dumps(man).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _edit_first_entry(name: str, data: bytes) -> bytes:
    return data.replace("登录粤省事".encode(), "登录假网站".encode(), 1) if name == "tables/entries.jsonl" else data


def _drop_column(name: str, data: bytes) -> bytes:
    if name != "tables/feedback.jsonl":
        return data
    rows = [json.loads(line) for line in data.splitlines()]
    return b"".join(json.dumps({k: v for k, v in r.items() if k != "comment"}).encode() + b"\n" for r in rows)


def _newer(m: dict[str, Any]) -> None:
    m["format_version"] = 99


def _one_more_row(m: dict[str, Any]) -> None:
    next(t for t in m["tables"] if t["name"] == "entries")["rows"] += 1


def _other_kb_version(m: dict[str, Any]) -> None:
    m["kb_version"] = 40


DAMAGE = {
    "edited table file": (dict(change=_edit_first_entry), "checksum mismatch"),
    "missing table file": (dict(change=lambda n, d: None if n == "tables/revisions.jsonl" else d), "missing"),
    "file not in the manifest": (dict(add={"tables/evil.jsonl": b"{}\n"}), "does not list"),
    "newer format": (dict(manifest=_newer), "format version 99"),
    "row count": (dict(manifest=_one_more_row), "rows, the manifest says"),
    "column dropped, checksums redone": (dict(change=_drop_column, fix_checksums=True), "columns"),
    "kb_version edited": (dict(manifest=_other_kb_version), "KB version 40"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_an_altered_archive_is_refused_and_the_target_left_alone(db, new_database, tmp_path, damage):
    fill(db)
    good = tmp_path / "good.tar.gz"
    backup_database(db, good)
    options, message = DAMAGE[damage]
    bad = rewrite(good, tmp_path / "bad.tar.gz", **options)  # type: ignore[arg-type]
    target = new_database()
    SQLStore(target).add(Entry(question="目标里已有的"), author="x")
    before = dump(target)
    with pytest.raises(BackupRejected, match=message):
        restore_database(target, bad, replace=True)
    assert dump(target) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda good: good[: len(good) // 2], "not a readable"),
        (lambda good: b"PK\x03\x04 a zip file, say", "not a readable"),
        (lambda good: _tar_gz({"notes.txt": b"hello"}), "no manifest.json"),
        (lambda good: _tar_gz({"manifest.json": b'{"format": "other"}'}), "not a hotline-qa backup"),
    ],
    ids=["truncated", "not a tar.gz", "no manifest", "another format"],
)
def test_a_damaged_or_foreign_file_is_refused(db, new_database, tmp_path, content, message):
    fill(db)
    backup_database(db, tmp_path / "good.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(content((tmp_path / "good.tar.gz").read_bytes()))
    target = new_database()
    with pytest.raises(BackupRejected, match=message):
        restore_database(target, bad)
    assert all(not rows for name, rows in dump(target).items() if name != "meta")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_failure_while_writing_rolls_every_table_back(db, new_database, tmp_path):
    """An archive consistent in itself whose rows break a constraint: the error comes mid-write."""
    fill(db)
    good = tmp_path / "good.tar.gz"
    backup_database(db, good)

    def duplicate_key(name: str, data: bytes) -> bytes:
        if name != "tables/entries.jsonl":
            return data
        rows = [json.loads(line) for line in data.splitlines()]
        rows.append({**rows[-1], "id": 99})  # same key as the row before
        return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)

    bad = rewrite(good, tmp_path / "bad.tar.gz", change=duplicate_key, fix_checksums=True)
    target = new_database()
    SQLStore(target).add(Entry(question="目标里已有的"), author="x")
    before = dump(target)
    with pytest.raises(BackupRejected, match="rolled back, the target is unchanged"):
        restore_database(target, bad, replace=True)
    assert dump(target) == before


# -- schema revisions ------------------------------------------------------------------


def as_release_backup(m: dict[str, Any]) -> None:
    """The manifest as release 2c742a7 wrote it: format 1, no schema revision."""
    del m["schema_revision"]
    m["format_version"] = 1


def as_revision(revision: str) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        m["schema_revision"] = revision

    return edit


# Columns later revisions added: a backup of an older revision has none of them (0003: new random tokens on upgrade;
# 0005: the work order's life).
ADDED_SINCE_RELEASE = {
    "users": ("session_generation",),
    "work_orders": (
        "token", "kind", "address", "happened", "department", "suggested_department", "suggestion_reason", "due_at",
        "updated_at", "reply", "closed_at", "visit_result", "external_id", "general_reply",
    ),
}  # fmt: skip


# Tables later revisions added: a backup of an older revision does not hold them (0004: dictionary_versions; 0005).
TABLES_ADDED_SINCE_RELEASE = (
    "dictionary_versions", "work_order_events", "departments", "outbox", "order_lookups", "topic_alerts",
)  # fmt: skip


def without_added_columns(name: str, data: bytes) -> bytes | None:
    table = name.removeprefix("tables/").removesuffix(".jsonl")
    if table in TABLES_ADDED_SINCE_RELEASE:
        return None
    drop = ADDED_SINCE_RELEASE.get(table, ())
    rows = [json.loads(line) for line in data.splitlines()]
    return b"".join(
        json.dumps({k: v for k, v in r.items() if k not in drop}, ensure_ascii=False).encode() + b"\n" for r in rows
    )


def described_without_added_columns(m: dict[str, Any]) -> None:
    m["tables"] = [t for t in m["tables"] if t["name"] not in TABLES_ADDED_SINCE_RELEASE]
    for table in m["tables"]:
        drop = ADDED_SINCE_RELEASE.get(table["name"], ())
        table["columns"] = [c for c in table["columns"] if c["name"] not in drop]
        table["indexes"] = [i for i in table["indexes"] if not set(i["columns"]) & set(drop)]


def older_backup(archive: Path, out: Path, revision: str | None, **kwargs: Any) -> Path:
    """``archive`` as an older release would have written it: its columns, its revision (None: release 2c742a7)."""

    def manifest(m: dict[str, Any]) -> None:
        described_without_added_columns(m)
        (as_release_backup if revision is None else as_revision(revision))(m)

    change = kwargs.pop("change", lambda name, data: data)
    return rewrite(
        archive,
        out,
        change=lambda name, data: without_added_columns(name, change(name, data)),
        manifest=manifest,
        fix_checksums=True,
        **kwargs,
    )


def without_tokens(dumped: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {**dumped, "work_orders": [{k: v for k, v in r.items() if k != "token"} for r in dumped["work_orders"]]}


def test_a_backup_without_a_revision_is_of_release_2c742a7_and_is_upgraded(db, new_database, tmp_path):
    fill(db)
    backup_database(db, tmp_path / "b.tar.gz")
    old = older_backup(tmp_path / "b.tar.gz", tmp_path / "old.tar.gz", None)
    fresh, served = new_database(), new_database()
    SQLStore(served).add(Entry(question="目标里已有的"), author="x")  # at this code's revision, rebuilt
    restored = restore_database(fresh, old)
    assert restored.schema_revision == RELEASE_REVISION and without_tokens(dump(fresh)) == without_tokens(dump(db))
    assert all(r["token"] for r in dump(fresh)["work_orders"])  # given by revision 0003
    restore_database(served, old, replace=True)
    for target in (fresh, served):
        assert status(target).state == "current" and schema_differences(target) == []
    assert dump(served)["users"] == dump(db)["users"]
    assert [e.question for e in SQLStore(served).entries()] == [e.question for e in SQLStore(db).entries()]


def test_an_older_revision_that_fails_mid_write_leaves_the_target_as_it_was(db, new_database, tmp_path):
    fill(db)
    backup_database(db, tmp_path / "good.tar.gz")

    def duplicate_user(name: str, data: bytes) -> bytes:
        if name != "tables/users.jsonl":
            return data
        rows = [json.loads(line) for line in data.splitlines()]
        rows.append({**rows[0], "id": 99})  # same username
        return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)

    bad = older_backup(tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz", RELEASE_REVISION, change=duplicate_user)
    target = new_database()
    SQLStore(target).add(Entry(question="目标里已有的"), author="x")
    before = dump(target)
    with pytest.raises(BackupRejected, match="rolled back, the target is unchanged"):
        restore_database(target, bad, replace=True)
    assert dump(target) == before and status(target).state == "current"


def test_a_backup_of_a_newer_revision_is_refused(db, new_database, tmp_path):
    fill(db)
    backup_database(db, tmp_path / "b.tar.gz")
    newer = rewrite(tmp_path / "b.tar.gz", tmp_path / "newer.tar.gz", manifest=as_revision("9999"))
    target = new_database()
    with pytest.raises(BackupRejected, match=r"revision 9999, which this hotline-qa .* does not know"):
        restore_database(target, newer)
    assert status(target).state == "new"  # not even created


def test_a_database_behind_the_code_is_backed_up_at_its_revision_but_not_restored_into(new_database, tmp_path):
    old = new_database()
    upgrade(old, RELEASE_REVISION)
    old.execute("UPDATE meta SET value='3' WHERE name='kb_version'")
    made = backup_database(old, tmp_path / "old.tar.gz")
    assert made.schema_revision == RELEASE_REVISION and made.kb_version == 3
    with pytest.raises(BackupRejected, match="hotline db upgrade"):
        restore_database(old, tmp_path / "old.tar.gz", replace=True)
    fresh = new_database()
    assert restore_database(fresh, tmp_path / "old.tar.gz").kb_version == 3
    assert status(fresh).state == "current"


def test_only_declared_tables_and_columns_are_backed_up(db, new_database, tmp_path):
    fill(db)
    db.ensure_schema("CREATE TABLE IF NOT EXISTS scratch (id INTEGER PRIMARY KEY, note TEXT)")
    made = backup_database(db, tmp_path / "b.tar.gz")
    assert "scratch" not in made.tables and set(made.tables) == set(declared_tables())


# -- the command line ----------------------------------------------------------------


def test_cli_backup_and_restore(tmp_path):
    runner = CliRunner()

    def hotline(data_dir: str, *args: str):
        env = {"HOTLINE_DATA_DIR": str(tmp_path / data_dir), "HOTLINE_CONFIG": str(tmp_path / "none.yml")}
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    source = open_database(tmp_path / "source" / "kb.sqlite3")
    fill(source)
    archive = str(tmp_path / "kb-backup.tar.gz")
    result = hotline("source", "backup", archive)
    assert result.exit_code == 0, result.output
    assert "KB version 5" in result.output and "tables" in result.output

    result = hotline("target", "restore", archive)
    assert result.exit_code == 0, result.output
    assert "restored" in result.output and "index rebuild" in result.output
    target = open_database(tmp_path / "target" / "kb.sqlite3")
    assert dump(target) == dump(source)

    result = hotline("target", "restore", archive)
    assert result.exit_code == 2 and "not empty" in result.output and "--replace" in result.output
    assert hotline("target", "restore", archive, "--replace").exit_code == 0
