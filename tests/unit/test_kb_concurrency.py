"""Searches keep working, and never mix versions, while the knowledge base is imported into, rebuilt
and re-normalised (FAKE embedder: this is about the locking and swapping logic)."""

from __future__ import annotations

import threading

import pytest

from knowledge_base.records import Entry
from knowledge_base.search.textnorm import TextNormaliser

pytestmark = pytest.mark.unit


def _search_while(kb, work) -> list[Exception]:
    errors: list[Exception] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                result = kb.search("深圳公积金提取流程")
                best = result.best
                assert best is not None and best.entry.key == "T-GJJ-SZ"
                # One version per answer: the entry served is the one the index held at that version.
                assert best.entry.answer.startswith("深圳")
            except Exception as exc:  # collected, so the test reports every failure
                errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        work()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return errors


def test_import_rebuild_and_new_dictionaries_while_citizens_search(fake_kb):
    def work() -> None:
        for round_ in range(5):
            batch = [
                Entry(key=f"C-{round_}-{i}", question=f"第{round_}批问题{i}怎么办理", answer="答") for i in range(20)
            ]
            fake_kb.import_entries(batch, author="importer")
            sz = fake_kb.store.get_by_key("T-GJJ-SZ")
            fake_kb.update(sz.replace(answer=f"深圳：第{round_}版答案"), author="editor")
        fake_kb.rebuild()
        fake_kb.use_normaliser(TextNormaliser.from_dir())

    assert _search_while(fake_kb, work) == []
    assert fake_kb.search("深圳公积金提取流程").best.entry.answer == "深圳：第4版答案"
    assert fake_kb.store.count() >= 100
