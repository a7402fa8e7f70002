"""The store's contract: versions, revisions, optimistic concurrency, atomic imports.

Run here on SQLite; tests/integration/test_postgres.py runs the same functions on PostgreSQL too.
"""

from __future__ import annotations

import threading

import pytest

from knowledge_base.errors import EntryNotFound, InvalidEntry, StaleVersion
from knowledge_base.records import Entry, Status
from knowledge_base.storage.store import SQLStore

pytestmark = pytest.mark.unit


def test_add_assigns_id_key_version_and_bumps_kb_version(store):
    assert store.kb_version() == 0
    e = store.add(Entry(question="社保怎么查"), author="alice")
    assert (e.id, e.key, e.version, e.updated_by) == (1, "KB-000001", 1, "alice")
    assert e.updated_at is not None
    assert store.kb_version() == 1
    assert store.get(e.id) == e
    assert store.get_by_key("KB-000001") == e


def test_update_keeps_a_full_revision_with_before_and_after(store):
    e = store.add(Entry(question="社保怎么查", answer="旧答案"), author="alice")
    e2 = store.update(e.replace(answer="新答案"), author="bob")
    assert e2.version == 2 and e2.updated_by == "bob"
    revs = store.revisions(e.id)
    assert [r.action for r in revs] == ["create", "update"]
    assert revs[1].before.answer == "旧答案" and revs[1].after.answer == "新答案"
    assert revs[1].author == "bob" and revs[1].kb_version == 2


def test_second_save_of_the_same_version_is_refused_and_nothing_is_lost(store):
    e = store.add(Entry(question="社保怎么查", answer="A"), author="alice")
    store.update(e.replace(answer="alice's edit"), author="alice")
    with pytest.raises(StaleVersion, match="reload"):
        store.update(e.replace(answer="bob's edit"), author="bob")
    assert store.get(e.id).answer == "alice's edit"
    assert store.kb_version() == 2


def _save_concurrently(stores: list[SQLStore], entry: Entry, editors: int = 8) -> list[str]:
    """``editors`` threads save ``entry`` at once, in turn through each of ``stores``; their outcomes."""
    outcomes: list[str] = []
    start = threading.Barrier(editors)

    def save(i: int) -> None:
        start.wait()
        try:
            stores[i % len(stores)].update(entry.replace(answer=f"editor{i}"), author=f"editor{i}")
            outcomes.append("ok")
        except StaleVersion:
            outcomes.append("stale")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(editors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_concurrent_saves_of_one_entry_let_exactly_one_win(store):
    e = store.add(Entry(question="社保怎么查", answer="A"), author="alice")
    assert _save_concurrently([store], e) == ["ok"] + ["stale"] * 7
    assert store.get(e.id).version == 2 and store.kb_version() == 2


def test_concurrent_saves_from_two_hosts_let_exactly_one_win(store):
    """Two handles on one database, as two hosts (or worker processes) would have."""
    other = SQLStore(store.db.url)
    try:
        e = store.add(Entry(question="社保怎么查", answer="A"), author="alice")
        assert _save_concurrently([store, other], e) == ["ok"] + ["stale"] * 7
        assert other.get(e.id).version == 2 and other.kb_version() == 2
    finally:
        other.close()


def test_rollback_is_a_new_revision(store):
    e = store.add(Entry(question="社保怎么查", answer="v1"), author="alice")
    e2 = store.update(e.replace(answer="v2"), author="bob")
    first = store.revisions(e.id)[0]
    back = store.rollback(e.id, first.id, expected_version=e2.version, author="carol")
    assert back.answer == "v1" and back.version == 3
    assert store.revisions(e.id)[-1].action == f"rollback to revision {first.id}"


def test_rollback_checks_version_and_ownership(store):
    a = store.add(Entry(question="甲"), author="x")
    b = store.add(Entry(question="乙"), author="x")
    with pytest.raises(InvalidEntry, match="belongs to entry"):
        store.rollback(a.id, store.revisions(b.id)[0].id, expected_version=1, author="x")
    with pytest.raises(StaleVersion):
        store.rollback(a.id, store.revisions(a.id)[0].id, expected_version=5, author="x")


def test_import_is_all_or_nothing(store):
    store.add(Entry(key="K1", question="已有问题"), author="x")
    before = store.kb_version()
    with pytest.raises(InvalidEntry, match="duplicate"):
        store.import_entries([Entry(key="K2", question="a"), Entry(key="K2", question="b")], author="x")
    assert store.count() == 1 and store.kb_version() == before


def test_import_adds_updates_and_skips_unchanged(store):
    store.import_entries([Entry(key="K1", question="问一"), Entry(key="K2", question="问二")], author="x")
    summary = store.import_entries(
        [Entry(key="K1", question="问一"), Entry(key="K2", question="问二改"), Entry(key="K3", question="问三")],
        author="y",
    )
    assert (summary.added, summary.updated, summary.unchanged) == (1, 1, 1)
    assert store.get_by_key("K2").question == "问二改"


def test_changed_since_lists_changed_and_deleted_entries(store):
    a = store.add(Entry(question="甲"), author="x")
    v = store.kb_version()
    b = store.add(Entry(question="乙"), author="x")
    store.delete(a.id, expected_version=1, author="x")
    version, changed = store.changed_since(v)
    assert version == store.kb_version() and changed == sorted([a.id, b.id])
    with pytest.raises(EntryNotFound):
        store.get(a.id)


def test_status_filter_and_author_required(store):
    store.add(Entry(question="甲", status=Status.DRAFT), author="x")
    store.add(Entry(question="乙"), author="x")
    assert [e.question for e in store.entries(statuses=[Status.PUBLISHED])] == ["乙"]
    with pytest.raises(InvalidEntry, match="author"):
        store.add(Entry(question="丙"), author=" ")


def test_hostile_text_is_stored_as_text(store):
    text = "'; DROP TABLE entries; -- <script>alert(1)</script>"
    e = store.add(Entry(question=text, answer=text), author="x")
    assert store.get(e.id).answer == text and store.count() == 1


def test_data_survives_reopening(tmp_path):
    path = tmp_path / "kb.sqlite3"
    s = SQLStore(path)
    s.add(Entry(question="甲"), author="x")
    s.close()
    assert SQLStore(path).get_by_key("KB-000001").question == "甲"


def test_in_memory_store_is_shared_between_threads():
    s = SQLStore(":memory:")
    s.add(Entry(question="甲"), author="x")
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(s.count()))
    t.start()
    t.join()
    assert seen == [1]
