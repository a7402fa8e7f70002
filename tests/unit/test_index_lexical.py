"""FAISS phrasing index and incremental BM25, on small hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.errors import IndexMismatch
from knowledge_base.search.index import Manifest, PhrasingIndex
from knowledge_base.search.lexical import BM25Index

pytestmark = pytest.mark.unit


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def manifest(kb_version: int = 1) -> Manifest:
    return Manifest(model="fake", dim=3, kb_version=kb_version, normaliser="n", index_type="flat", count=0)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_replacing_an_entry_drops_its_old_phrasings(index_type):
    index = PhrasingIndex(3, index_type=index_type)
    index.add_entry(1, ["a", "b"], np.stack([unit(1, 0, 0), unit(0, 1, 0)]))
    index.add_entry(2, ["c"], np.stack([unit(0, 0, 1)]))
    index.add_entry(1, ["a2"], np.stack([unit(0, 0.1, 1)]))
    hits = index.search(unit(0, 1, 0)[None], 5)[0]
    assert {h.text for h in hits} == {"a2", "c"}
    assert len(index) == 2 and index.entry_count == 2
    index.remove_entry(2)
    assert [h.entry_id for h in index.search(unit(0, 0, 1)[None], 5)[0]] == [1]


def test_save_and_load_round_trip(tmp_path):
    index = PhrasingIndex(3)
    index.add_entry(7, ["社保"], unit(1, 2, 3)[None])
    saved = index.save(tmp_path, manifest())
    loaded, m = PhrasingIndex.load(tmp_path)
    assert m == saved and m.count == 1
    assert loaded.search(unit(1, 2, 3)[None], 1)[0][0].entry_id == 7


def test_corrupt_index_file_is_refused(tmp_path):
    index = PhrasingIndex(3)
    index.add_entry(7, ["社保"], unit(1, 2, 3)[None])
    index.save(tmp_path, manifest())
    data = bytearray((tmp_path / "index.faiss").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="checksum"):
        PhrasingIndex.load(tmp_path)


def test_missing_index_is_refused(tmp_path):
    with pytest.raises(IndexMismatch, match="no saved index"):
        PhrasingIndex.load(tmp_path)


def test_wrong_vector_shape_is_refused():
    with pytest.raises(ValueError, match="dimension 3"):
        PhrasingIndex(3).add_entry(1, ["a"], np.zeros((1, 4), dtype=np.float32))


def test_bm25_prefers_rare_shared_terms_and_forgets_removed_docs():
    bm25 = BM25Index()
    bm25.add(1, ["社会保险", "缴费", "查询"])
    bm25.add(2, ["住房公积金", "提取", "查询"])
    bm25.add(3, ["护照", "办理"])
    assert bm25.search(["公积金", "住房公积金", "查询"], 2)[0][0] == 2
    bm25.remove(2)
    assert all(doc != 2 for doc, _ in bm25.search(["住房公积金"], 5))
    assert len(bm25) == 2
    bm25.add(1, ["护照"])  # re-adding replaces
    assert bm25.search(["缴费"], 5) == []
