"""The FAISS phrasing index: one vector per phrasing, each tied to its entry.

Every phrasing (standard question and similar questions) gets its own FAISS id
from a counter; a side table maps it to the entry and the text. Changing one
entry removes its ids and adds new ones: no full rebuild.

Flat indexes remove vectors for real. HNSW cannot remove, so a removed id is
dropped from the side table and filtered out of results (a tombstone); the
knowledge base rebuilds when tombstones pile up.

Searches and changes hold one lock: FAISS searches are thread-safe only while
nothing changes the index (FAISS wiki, "Threads and asynchronous calls").
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.errors import IndexMismatch

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a persisted index was built from; a mismatch with the running system means rebuild."""

    model: str
    dim: int
    kb_version: int
    normaliser: str
    index_type: str
    count: int
    format: int = FORMAT_VERSION
    checksum: str = ""


@dataclass(frozen=True)
class PhrasingHit:
    fid: int
    entry_id: int
    text: str
    score: float


class PhrasingIndex:
    """Phrasing vectors in FAISS (``IndexIDMap2`` over flat inner product, or HNSW).

    Args:
        dim: vector dimension.
        index_type: ``"flat"`` (exact) or ``"hnsw"`` (approximate, for very large KBs).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth.
    """

    def __init__(self, dim: int, *, index_type: str = "flat", hnsw_m: int = 32, ef_search: int = 128) -> None:
        import faiss

        if index_type not in ("flat", "hnsw"):
            raise ValueError(f"index_type must be 'flat' or 'hnsw', got {index_type!r}")
        self.dim = dim
        self.index_type = index_type
        self.ef_search = ef_search
        base: Any
        if index_type == "flat":
            base = faiss.IndexFlatIP(dim)
        else:
            base = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = 80
            base.hnsw.efSearch = ef_search
        self._faiss: Any = faiss.IndexIDMap2(base)
        self._owner: dict[int, int] = {}
        self._text: dict[int, str] = {}
        self._by_entry: dict[int, list[int]] = {}
        self._next_fid = 1
        self._tombstones = 0
        self._lock = threading.Lock()

    # -- size ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._owner)

    @property
    def entry_count(self) -> int:
        return len(self._by_entry)

    @property
    def tombstones(self) -> int:
        return self._tombstones

    def set_ef_search(self, ef_search: int) -> None:
        """HNSW search breadth (no effect on flat indexes)."""
        import faiss

        self.ef_search = ef_search
        if self.index_type == "hnsw":
            hnsw: Any = faiss.downcast_index(self._faiss.index)
            hnsw.hnsw.efSearch = ef_search

    def memory_bytes(self) -> int:
        """Size of the FAISS structures (vectors, graph, id map), as FAISS would write them."""
        import faiss

        with self._lock:
            return int(faiss.serialize_index(self._faiss).nbytes)

    def entry_ids(self) -> set[int]:
        return set(self._by_entry)

    def phrasings_of(self, entry_id: int) -> list[str]:
        return [self._text[f] for f in self._by_entry.get(entry_id, [])]

    def fids_of(self, entry_id: int) -> dict[str, int]:
        """An entry's phrasings -> their FAISS ids."""
        with self._lock:
            return {self._text[f]: f for f in self._by_entry.get(entry_id, [])}

    def vectors(self, fids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``fids`` (rows aligned), read back instead of embedding the texts again."""
        with self._lock:
            out = np.zeros((len(fids), self.dim), dtype=np.float32)
            for row, fid in enumerate(fids):
                out[row] = self._faiss.reconstruct(int(fid))
            return out

    # -- changes -------------------------------------------------------------

    def add_entry(self, entry_id: int, phrasings: Sequence[str], vectors: np.ndarray) -> None:
        """Add (or replace) one entry's phrasings with their vectors (rows aligned with ``phrasings``)."""
        self.add_many([entry_id] * len(phrasings), phrasings, vectors, replace=True)

    def add_many(
        self, entry_ids: Sequence[int], phrasings: Sequence[str], vectors: np.ndarray, *, replace: bool = True
    ) -> None:
        """Add many phrasings at once; with ``replace``, the entries' old phrasings go first."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(phrasings), self.dim) or len(entry_ids) != len(phrasings):
            raise ValueError(f"expected {len(phrasings)} vectors of dimension {self.dim}, got {vectors.shape}")
        with self._lock:
            if replace:
                for entry_id in dict.fromkeys(entry_ids):
                    self._remove_locked(entry_id)
            fids = np.arange(self._next_fid, self._next_fid + len(phrasings), dtype=np.int64)
            self._next_fid += len(phrasings)
            if len(fids):
                self._faiss.add_with_ids(vectors, fids)
            for fid, entry_id, text in zip(fids.tolist(), entry_ids, phrasings, strict=True):
                self._owner[fid] = entry_id
                self._text[fid] = text
                self._by_entry.setdefault(entry_id, []).append(fid)

    def remove_entry(self, entry_id: int) -> None:
        with self._lock:
            self._remove_locked(entry_id)

    def _remove_locked(self, entry_id: int) -> None:
        import faiss

        fids = self._by_entry.pop(entry_id, [])
        if not fids:
            return
        for fid in fids:
            del self._owner[fid]
            del self._text[fid]
        if self.index_type == "flat":
            self._faiss.remove_ids(faiss.IDSelectorBatch(np.asarray(fids, dtype=np.int64)))
        else:
            self._tombstones += len(fids)

    # -- search --------------------------------------------------------------

    def search(self, vectors: np.ndarray, k: int) -> list[list[PhrasingHit]]:
        """The ``k`` best live phrasings for each query vector, best first."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            live = len(self._owner)
            if live == 0:
                return [[] for _ in range(len(vectors))]
            # Over-fetch past tombstones so k live hits survive the filter.
            fetch = min(k + self._tombstones, live + self._tombstones)
            scores, ids = self._faiss.search(vectors, fetch)
            results = []
            for row_scores, row_ids in zip(scores, ids, strict=True):
                hits = [
                    PhrasingHit(int(fid), self._owner[int(fid)], self._text[int(fid)], float(score))
                    for score, fid in zip(row_scores, row_ids, strict=True)
                    if fid >= 0 and int(fid) in self._owner
                ]
                results.append(hits[:k])
            return results

    # -- persistence ---------------------------------------------------------

    def save(self, folder: Path, manifest: Manifest) -> Manifest:
        """Write index, side table and manifest; the manifest goes last and holds both files' checksum."""
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            index_bytes = faiss.serialize_index(self._faiss).tobytes()
            table = json.dumps(
                {
                    "next_fid": self._next_fid,
                    "tombstones": self._tombstones,
                    "phrasings": [[fid, self._owner[fid], self._text[fid]] for fid in sorted(self._owner)],
                },
                ensure_ascii=False,
            ).encode("utf-8")
        checksum = hashlib.sha256(index_bytes + table).hexdigest()
        manifest = Manifest(**{**asdict(manifest), "count": len(self._owner), "checksum": checksum})
        _atomic_write(folder / "index.faiss", index_bytes)
        _atomic_write(folder / "phrasings.json", table)
        _atomic_write(folder / "manifest.json", json.dumps(asdict(manifest), ensure_ascii=False, indent=1).encode())
        return manifest

    @classmethod
    def load(cls, folder: Path, *, ef_search: int = 128) -> tuple[PhrasingIndex, Manifest]:
        """Load a saved index, refusing a missing, partial or corrupt one with :class:`IndexMismatch`."""
        import faiss

        try:
            manifest = Manifest(**json.loads((folder / "manifest.json").read_text()))
            index_bytes = (folder / "index.faiss").read_bytes()
            table_bytes = (folder / "phrasings.json").read_bytes()
        except FileNotFoundError as exc:
            raise IndexMismatch(f"no saved index in {folder} ({exc.filename} missing)") from None
        except (ValueError, TypeError) as exc:
            raise IndexMismatch(f"unreadable index manifest in {folder}: {exc}") from None
        if manifest.format != FORMAT_VERSION:
            raise IndexMismatch(f"index format {manifest.format}, this version reads {FORMAT_VERSION}")
        if hashlib.sha256(index_bytes + table_bytes).hexdigest() != manifest.checksum:
            raise IndexMismatch(f"index files in {folder} do not match their manifest checksum (corrupt or partial)")
        table = json.loads(table_bytes)
        index = cls(manifest.dim, index_type=manifest.index_type, ef_search=ef_search)
        index._faiss = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
        index.set_ef_search(ef_search)
        index._next_fid = table["next_fid"]
        index._tombstones = table["tombstones"]
        for fid, entry_id, text in table["phrasings"]:
            index._owner[fid] = entry_id
            index._text[fid] = text
            index._by_entry.setdefault(entry_id, []).append(fid)
        if len(index._owner) != manifest.count:
            raise IndexMismatch(f"index side table has {len(index._owner)} phrasings, manifest says {manifest.count}")
        return index, manifest


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
