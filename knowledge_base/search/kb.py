"""The knowledge base every channel answers from: store + normaliser + embedder + FAISS index.

Question path: :meth:`KnowledgeBase.search` normalises the question, embeds it,
searches the phrasing index, keeps each entry's best phrasing, filters by status,
dates, region and department, and decides: answer, clarify or no answer.

Edit path: every write goes to the store (the source of truth, which bumps the
KB version), the notifier announces the new version (:mod:`knowledge_base.storage.events`),
then :meth:`KnowledgeBase.sync` brings this process's index up to that version by
re-embedding only the entries that changed. Other processes sync when the
announcement reaches them and on every search, so they catch up too.

Example:
    >>> from knowledge_base.search.embedder import FakeEmbedder
    >>> from knowledge_base.storage.store import SQLStore
    >>> from knowledge_base.search.textnorm import TextNormaliser
    >>> kb = KnowledgeBase(SQLStore(":memory:"), FakeEmbedder(), TextNormaliser.from_dir())
    >>> _ = kb.add(Entry(question="怎么查询社保缴费记录", answer="登录粤省事查询。"), author="editor")
    >>> kb.search("社保缴费记录在哪查").best.entry.answer
    '登录粤省事查询。'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge_base.errors import IndexMismatch
from knowledge_base.records import Decision, Entry, Hit, Region, Revision, SearchResult, Status
from knowledge_base.search.cache import CachedResult, ResultCache, result_key, scope_of
from knowledge_base.search.calibration import Calibration, CalibrationSource, effective_settings, source_for
from knowledge_base.search.embedder import Embedder
from knowledge_base.search.index import Manifest, PhrasingIndex
from knowledge_base.search.lexical import BM25Index, char_ngrams
from knowledge_base.search.ranking import EntryScore, Thresholds, best_per_entry, decide, fuse
from knowledge_base.search.textnorm import Normalised, TextNormaliser, truncate
from knowledge_base.settings import Settings
from knowledge_base.storage.events import Notifier, NullNotifier
from knowledge_base.storage.store import ImportSummary, Store

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

_MIN_FETCH = 50
_RESCORED = 20


def index_manifest(
    embedder: Embedder, normaliser: TextNormaliser, settings: Settings, kb_version: int, count: int = 0
) -> Manifest:
    """The manifest an index built from these parts carries (``hotline doctor`` compares it with the saved one)."""
    return Manifest(
        model=embedder.name,
        dim=embedder.dim,
        kb_version=kb_version,
        normaliser=f"{normaliser.version()}|embed_text={settings.embed_text}",
        index_type=settings.index_type,
        count=count,
    )


def manifest_differences(saved: Manifest, running: Manifest) -> list[str]:
    """Why an index saved with ``saved`` cannot serve a process that would build ``running`` (empty: it can)."""
    return [
        f"{name}: saved {getattr(saved, name)!r}, running {getattr(running, name)!r}"
        for name in ("model", "dim", "normaliser", "index_type")
        if getattr(saved, name) != getattr(running, name)
    ]


@dataclass(frozen=True)
class Wording:
    """One similar question of an entry, as a held-out query of the leave-one-out calibration."""

    entry_id: int
    key: str
    text: str


@dataclass(frozen=True)
class Evidence:
    """One question's scores before fusion: each candidate entry's dense cosine and scaled BM25.

    The lexical scores are computed for the best dense candidates whatever the weight, so
    :meth:`ranked` can try many weights on one search.
    """

    dense: dict[int, tuple[float, str]]
    lexical: dict[int, tuple[float, str]]
    keys: dict[int, str]

    def ranked(self, weight: float) -> list[EntryScore]:
        """The entries as a search with ``lexical_weight`` = ``weight`` ranks them, best first."""
        return fuse(self.dense, self.lexical, weight)


@dataclass(frozen=True)
class SyncReport:
    """What one :meth:`KnowledgeBase.sync` did."""

    from_version: int
    to_version: int
    entries_changed: int
    seconds: float
    rebuilt: bool = False


class KnowledgeBase:
    """Search and curate the shared policy Q&A knowledge base.

    Args:
        store: the database (source of truth).
        embedder: text -> unit vectors.
        normaliser: the one Chinese normalisation used at index and query time.
        settings: thresholds, index type and paths (defaults when None).
        index_dir: where the FAISS index is persisted (None: kept in memory only).
        today: clock for "in effect today" (injectable for tests).
        notifier: told the new KB version after every committed write (default: nobody).
        cache: keeps search results per KB version (default: none); explained searches bypass it.
        calibration: where the applied calibration is read (default: the store's database, when it has one).
            Its values replace config.yml's unless an environment variable pins them; see ``effective``.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        normaliser: TextNormaliser,
        *,
        settings: Settings | None = None,
        index_dir: Path | None = None,
        today: Callable[[], date] = date.today,
        notifier: Notifier | None = None,
        cache: ResultCache | None = None,
        calibration: CalibrationSource | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.normaliser = normaliser
        self.configured_settings = settings or Settings()
        self.settings = self.configured_settings
        """The settings searches run with: the configured ones with the applied calibration (see ``sources``)."""
        self.sources: dict[str, str] = effective_settings(self.settings, None)[1]
        """Tuned setting -> where its value in effect comes from: environment, calibration or config."""
        self.applied_calibration: Calibration | None = None
        self._calibrations = calibration if calibration is not None else source_for(store)
        self.index_dir = index_dir
        self._today = today
        self._index: PhrasingIndex | None = None
        self._entries: dict[int, Entry] = {}
        self._index_version = -1
        self._lexical: BM25Index | None = None
        self._sync_lock = threading.RLock()
        self.notifier: Notifier = notifier or NullNotifier()
        self.cache = cache
        self._cache_scope = ("", "")  # (normaliser version, scope): use_normaliser() may swap the tables

    # -- set-up --------------------------------------------------------------

    def _manifest(self, kb_version: int, count: int = 0) -> Manifest:
        return index_manifest(self.embedder, self.normaliser, self.settings, kb_version, count)

    def warm_up(self, *, progress: bool = False) -> SyncReport:
        """Load the persisted index (or build it), then catch up with the store. Idempotent."""
        with self._sync_lock:
            if self._index is not None:
                return self.sync()
            started = time.perf_counter()
            self.refresh_calibration()
            loaded = self._load_index()
            if loaded is None:
                return self.rebuild(progress=progress)
            self._index, manifest = loaded
            self._index_version = manifest.kb_version
            self._entries = self.store.get_many(self._index.entry_ids()) if len(self._index) else {}
            report = self.sync()
            # The model loads lazily; a loaded index would otherwise leave it for the first citizen's question.
            self.embedder.encode(["预热"])
            log.info(
                "index and model loaded at KB version %d in %.1fs, caught up to %d (%d entries changed)",
                manifest.kb_version,
                time.perf_counter() - started,
                report.to_version,
                report.entries_changed,
            )
            return report

    def _load_index(self) -> tuple[PhrasingIndex, Manifest] | None:
        if self.index_dir is None:
            return None
        try:
            index, manifest = PhrasingIndex.load(self.index_dir, ef_search=self.settings.hnsw_ef_search)
        except IndexMismatch as exc:
            if (self.index_dir / "manifest.json").exists():
                log.warning("saved index not usable, rebuilding: %s", exc)
            return None
        mismatched = manifest_differences(manifest, self._manifest(manifest.kb_version, manifest.count))
        if manifest.kb_version > self.store.kb_version():
            mismatched.append(f"kb_version: saved {manifest.kb_version} is newer than the database's")
        if mismatched:
            log.warning("saved index does not match, rebuilding: %s", "; ".join(mismatched))
            return None
        return index, manifest

    def rebuild(self, *, progress: bool = False) -> SyncReport:
        """Embed every published entry into a new index, then swap it in (searches go on meanwhile)."""
        with self._sync_lock:
            started = time.perf_counter()
            from_version = self._index_version
            version = self.store.kb_version()
            entries = {e.id: e for e in self.store.entries(statuses=[Status.PUBLISHED]) if e.id is not None}
            index = PhrasingIndex(
                self.embedder.dim,
                index_type=self.settings.index_type,
                hnsw_m=self.settings.hnsw_m,
                ef_search=self.settings.hnsw_ef_search,
            )
            owners: list[int] = []
            texts: list[str] = []
            for entry_id, entry in entries.items():
                for phrasing in entry.phrasings():
                    owners.append(entry_id)
                    texts.append(phrasing)
            if texts:
                vectors = self.embedder.encode([self._embed_text(t) for t in texts], progress=progress)
                index.add_many(owners, texts, vectors, replace=False)
            self._index, self._entries, self._index_version = index, entries, version
            self._lexical = None
            self.refresh_calibration()
            if self.settings.lexical_weight > 0:
                self._lexical_index()
            report = SyncReport(from_version, version, len(entries), time.perf_counter() - started, rebuilt=True)
            log.info(
                "index rebuilt: %d entries, %d phrasings, KB version %d, %.1fs",
                len(entries),
                len(texts),
                version,
                report.seconds,
            )
            self.save_index()
            return report

    def save_index(self) -> None:
        """Persist the index with its manifest (no-op without an index folder)."""
        if self.index_dir is None or self._index is None:
            return
        with self._sync_lock:
            self._index.save(self.index_dir, self._manifest(self._index_version))

    def sync(self) -> SyncReport:
        """Bring the index up to the store's KB version, re-embedding only the changed entries."""
        if self._index is None:
            return self.warm_up()
        started = time.perf_counter()
        with self._sync_lock:
            from_version = self._index_version
            version, changed = self.store.changed_since(from_version)
            if version == from_version:
                return SyncReport(from_version, version, 0, 0.0)
            current = self.store.get_many(changed)
            publish = [e for e in current.values() if e.status is Status.PUBLISHED]
            texts = [p for e in publish for p in e.phrasings()]
            owners = [e.id for e in publish for _ in e.phrasings()]
            vectors = self.embedder.encode([self._embed_text(t) for t in texts]) if texts else None
            index = self._index
            for entry_id in changed:
                if entry_id not in current or current[entry_id].status is not Status.PUBLISHED:
                    index.remove_entry(entry_id)
                    self._entries.pop(entry_id, None)
                    if self._lexical is not None:
                        self._lexical_remove(entry_id)
            if vectors is not None:
                index.add_many(owners, texts, vectors, replace=True)  # type: ignore[arg-type]
            for entry in publish:
                assert entry.id is not None
                self._entries[entry.id] = entry
                if self._lexical is not None:
                    self._lexical_add(entry)
            self._index_version = version
            # Applying a calibration moves the KB version without changing an entry: re-read it with them.
            self.refresh_calibration()
            report = SyncReport(from_version, version, len(changed), time.perf_counter() - started)
            log.info(
                "index caught up from KB version %d to %d: %d entries changed, %.0f ms",
                from_version,
                version,
                len(changed),
                report.seconds * 1000,
            )
        if index.tombstones > max(1000, len(index)):
            self.rebuild()
        return report

    @property
    def kb_version(self) -> int:
        """The KB version this process's index reflects."""
        return self._index_version

    def refresh_calibration(self) -> bool:
        """Read the applied calibration and put it in effect; True when the settings in effect changed.

        Runs at start-up and whenever the KB version moves (applying one bumps it). A database that
        cannot be read keeps the values in effect: the next version change tries again.
        """
        try:
            applied = self._calibrations.applied()
        except Exception:
            log.exception("could not read the applied calibration; keeping the values in effect")
            return False
        effective, sources = effective_settings(self.configured_settings, applied)
        self.applied_calibration = applied
        self.sources = sources
        if effective == self.settings:
            return False
        self.settings = effective
        self._cache_scope = ("", "")  # the ranking knobs are part of the cache's scope
        log.info(
            "search calibration in effect: %s",
            ", ".join(f"{name}={getattr(effective, name)} ({sources[name]})" for name in sources),
        )
        return True

    def _embed_text(self, text: str, analysed: Normalised | None = None) -> str:
        """The form of ``text`` the model reads (setting ``embed_text``); reuses ``analysed`` when given."""
        if self.settings.embed_text == "folded":
            return (analysed.folded if analysed else self.normaliser.fold(text)) or text
        if self.settings.embed_text == "normalised":
            return (analysed.text if analysed else self.normaliser.normalise(text)) or text
        return text

    # -- lexical re-scoring (built on first use) -------------------------------

    def _lexical_tokens(self, text: str | Normalised) -> list[str]:
        if self.settings.lexical_tokens == "words":
            return list(text.tokens) if isinstance(text, Normalised) else self.normaliser.tokens(text)
        return char_ngrams(text.text if isinstance(text, Normalised) else self.normaliser.normalise(text))

    def _lexical_index(self) -> BM25Index:
        with self._sync_lock:
            if self._lexical is None:
                self._lexical = BM25Index()
                self._lexical_docs: dict[int, list[int]] = {}
                self._next_doc = 1
                for entry in self._entries.values():
                    self._lexical_add(entry)
            return self._lexical

    def _lexical_add(self, entry: Entry) -> None:
        assert self._lexical is not None and entry.id is not None
        self._lexical_remove(entry.id)
        docs = []
        for phrasing in entry.phrasings():
            self._lexical.add(self._next_doc, self._lexical_tokens(phrasing))
            docs.append(self._next_doc)
            self._next_doc += 1
        self._lexical_docs[entry.id] = docs

    def _lexical_remove(self, entry_id: int) -> None:
        assert self._lexical is not None
        for doc_id in self._lexical_docs.pop(entry_id, []):
            self._lexical.remove(doc_id)

    def _lexical_scores(
        self,
        analysed: Normalised,
        entry_ids: Sequence[int],
        entries: dict[int, Entry],
        *,
        held_out: Wording | None = None,
    ) -> dict[int, tuple[float, str]]:
        """Best-phrasing BM25 of each candidate entry, scaled so the best candidate has 1."""
        index = self._lexical_index()
        with self._sync_lock:
            docs = {
                doc: (entry_id, i)
                for entry_id in entry_ids
                for i, doc in enumerate(self._lexical_docs.get(entry_id, []))
            }
            held_doc = None
            if held_out is not None and held_out.entry_id in self._entries:
                phrasings = self._entries[held_out.entry_id].phrasings()
                own = self._lexical_docs.get(held_out.entry_id, [])
                held_doc = next((d for d, t in zip(own, phrasings, strict=False) if t == held_out.text), None)
        scores = index.score_docs(self._lexical_tokens(analysed), list(docs), held_out=held_doc)
        best = best_per_entry(
            (entry_id, entries[entry_id].phrasings()[i], scores.get(doc, 0.0))
            for doc, (entry_id, i) in docs.items()
            if entry_id in entries and i < len(entries[entry_id].phrasings())
        )
        top = max((score for score, _ in best.values()), default=0.0)
        return {k: (score / top if top > 0 else 0.0, phrase) for k, (score, phrase) in best.items()}

    # -- search --------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        region: Region | str | None = None,
        department: str | None = None,
        top_k: int = 5,
        explain: bool = False,
    ) -> SearchResult:
        """Find the entry that answers ``query`` and decide what to do with it.

        Only published entries in effect today are considered.

        Args:
            query: the citizen's or operator's question, as typed or recognised.
            region: the citizen's region (e.g. ``"深圳"`` or a :class:`Region`); entries for other regions drop out.
            department: keep only entries of this department (承办单位), matched as a substring.
            top_k: how many ranked hits to return.
            explain: also compute lexical scores and tokens for every hit (for ``--explain`` and the admin pane).

        Returns:
            The decision, the ranked hits and the thresholds and KB version that produced them.

        Raises:
            ValueError: the query is not text, is empty or whitespace only, or top_k is not 1-50.
        """
        if not isinstance(query, str):
            raise ValueError(f"query must be text, got {type(query).__name__}")
        if not query.strip():
            raise ValueError("query is empty: type a question")
        if not 1 <= top_k <= 50:
            raise ValueError(f"top_k must be between 1 and 50, got {top_k}")
        text, truncated = truncate(query.strip(), self.settings.max_query_chars)
        where = self._region(region)
        self.sync()
        thresholds = self.settings.thresholds()
        analysed = self.normaliser.analyse(text)
        tokens = analysed.tokens if explain else ()
        if not analysed.text:
            return SearchResult(
                text,
                "",
                Decision.NO_ANSWER,
                (),
                "the question has no words to search for",
                self._index_version,
                thresholds,
                tokens,
                truncated,
                offered=0,
            )
        index = self._index
        assert index is not None
        today = self._today()
        key, key_version = None, self._index_version
        if self.cache is not None and not explain:
            key = self._cache_key(text, analysed, where, department, top_k, truncated, today)
            cached = self.cache.get(key)
            if cached is not None:
                found = cached.rebuild(
                    query=text,
                    normalised=analysed.text,
                    entries=self._entries,
                    thresholds=thresholds,
                    truncated=truncated,
                )
                if found is not None:
                    return found
        vector = self.embedder.encode([self._embed_text(text, analysed)])

        # Entries as this search saw them: a concurrent sync may drop one from self._entries meanwhile.
        seen: dict[int, Entry] = {}

        def usable(entry_id: int) -> bool:
            entry = seen.get(entry_id) or self._entries.get(entry_id)
            ok = (
                entry is not None
                and entry.in_effect(today)
                and entry.applies_to(where)
                and (not department or department in entry.department)
            )
            if ok:
                assert entry is not None
                seen[entry_id] = entry
            return ok

        weight = self.settings.lexical_weight
        dense, lexical = self._gather(index, vector, analysed, usable, seen, top_k, lexical=weight > 0 or explain)
        ranked = fuse(dense, lexical, weight)
        t = Thresholds.from_mapping(thresholds)
        verdict = decide([r.score for r in ranked], t)
        reason = verdict.reason
        hits = tuple(
            Hit(
                entry=seen[r.entry_id],
                score=r.score,
                dense=r.dense,
                lexical=r.lexical,
                matched_phrasing=r.phrasing,
            )
            for r in ranked[:top_k]
        )
        if truncated:
            reason += f"; the question was cut to {self.settings.max_query_chars} characters"
        result = SearchResult(
            text,
            analysed.text,
            verdict.decision,
            hits,
            reason,
            self._index_version,
            thresholds,
            tokens,
            truncated,
            offered=verdict.offered,
        )
        if key is not None and self.cache is not None and self._unchanged_since(index, key_version):
            self.cache.put(key, CachedResult.of(result))
        return result

    def _gather(
        self,
        index: PhrasingIndex,
        vector: np.ndarray,
        analysed: Normalised,
        usable: Callable[[int], bool],
        seen: dict[int, Entry],
        top_k: int,
        *,
        lexical: bool,
        held_out: Wording | None = None,
    ) -> tuple[dict[int, tuple[float, str]], dict[int, tuple[float, str]]]:
        """The candidates' dense scores (best phrasing per usable entry) and, if asked, their lexical ones.

        ``held_out`` is one phrasing searched as if it were not indexed (leave-one-out calibration).
        """
        fetch = max(_MIN_FETCH, top_k * 10)
        while True:
            phrasing_hits = index.search(vector, fetch + (held_out is not None))[0]
            if held_out is not None:
                phrasing_hits = [
                    h for h in phrasing_hits if not (h.entry_id == held_out.entry_id and h.text == held_out.text)
                ]
            dense = best_per_entry((h.entry_id, h.text, h.score) for h in phrasing_hits if usable(h.entry_id))
            if len(dense) >= top_k + 1 or len(phrasing_hits) < fetch or fetch >= len(index):
                break
            fetch *= 4
        scores: dict[int, tuple[float, str]] = {}
        if lexical:
            # Lexical evidence re-scores the dense candidates only: cheap, and an entry with no
            # semantic similarity is never promoted by shared characters alone.
            candidates = sorted(dense, key=lambda k: -dense[k][0])[: max(_RESCORED, top_k * 2)]
            scores = self._lexical_scores(analysed, candidates, seen, held_out=held_out)
        return dense, scores

    # -- evidence for calibration ---------------------------------------------

    def held_out_wordings(self) -> tuple[list[Wording], int]:
        """Every similar question of the entries in effect, and how many entries have none (skipped).

        An entry's standard question always stays indexed, so each of its similar questions can be
        held out and searched for, with the entry as its right answer.
        """
        self.sync()
        today = self._today()
        wordings: list[Wording] = []
        skipped = 0
        for entry_id, entry in sorted(self._entries.items()):
            if not entry.in_effect(today):
                continue
            if not entry.similar_questions:
                skipped += 1
                continue
            wordings.extend(Wording(entry_id, entry.key, text) for text in dict.fromkeys(entry.similar_questions))
        return wordings, skipped

    def held_out_evidence(self, wordings: Sequence[Wording], *, top_k: int = 10) -> Iterator[tuple[Wording, Evidence]]:
        """Search each wording with itself left out of the dense and the lexical index: leave-one-out.

        Nothing is rebuilt: each wording's stored vector is read back from the index and its own
        phrasing is masked in both searches (BM25's statistics leave it out too).
        """
        self.sync()
        index = self._index
        assert index is not None
        for wording in wordings:
            fid = index.fids_of(wording.entry_id).get(wording.text)
            if fid is None:
                continue  # edited since it was listed: not a question any more
            vector = index.vectors([fid])
            yield wording, self._evidence(index, wording.text, vector, top_k, held_out=wording)

    def evidence(self, query: str, *, top_k: int = 10) -> Evidence:
        """One question's dense and lexical scores, ready to be ranked at any lexical weight."""
        self.sync()
        index = self._index
        assert index is not None
        text = truncate(query.strip(), self.settings.max_query_chars)[0]
        analysed = self.normaliser.analyse(text)
        if not analysed.text:
            return Evidence({}, {}, {})
        return self._evidence(index, text, self.embedder.encode([self._embed_text(text, analysed)]), top_k)

    def _evidence(
        self, index: PhrasingIndex, text: str, vector: np.ndarray, top_k: int, held_out: Wording | None = None
    ) -> Evidence:
        today = self._today()
        seen: dict[int, Entry] = {}

        def usable(entry_id: int) -> bool:
            entry = self._entries.get(entry_id)
            if entry is None or not entry.in_effect(today):
                return False
            seen[entry_id] = entry
            return True

        analysed = self.normaliser.analyse(text)
        dense, lexical = self._gather(index, vector, analysed, usable, seen, top_k, lexical=True, held_out=held_out)
        return Evidence(dense, lexical, {entry_id: seen[entry_id].key for entry_id in dense})

    def _unchanged_since(self, index: PhrasingIndex, kb_version: int) -> bool:
        """No sync or rebuild ran or runs since a search began with ``index`` at ``kb_version``.

        A result computed across a change (say, new dictionary tables with the old vectors) is
        returned once, but never cached.
        """
        if not self._sync_lock.acquire(blocking=False):
            return False
        try:
            return self._index is index and self._index_version == kb_version
        finally:
            self._sync_lock.release()

    def _cache_key(
        self,
        text: str,
        analysed: Normalised,
        where: Region | None,
        department: str | None,
        top_k: int,
        truncated: bool,
        today: date,
    ) -> str:
        tables = self.normaliser.version()
        if self._cache_scope[0] != tables:
            ranking = {
                **self.settings.thresholds(),
                "embed_text": self.settings.embed_text,
                "lexical_tokens": self.settings.lexical_tokens,
                "index_type": self.settings.index_type,
                "hnsw_ef_search": self.settings.hnsw_ef_search,
            }
            self._cache_scope = (tables, scope_of(self.embedder.name, tables, ranking))
        return result_key(
            scope=self._cache_scope[1],
            kb_version=self._index_version,
            today=today,
            embed_text=self._embed_text(text, analysed),
            lexical_text=analysed.text,
            region=repr(where) if where else "",
            department=department or "",
            top_k=top_k,
            truncated=truncated,
        )

    def _region(self, region: Region | str | None) -> Region | None:
        if region is None or isinstance(region, Region):
            return region
        if not region.strip():
            return None
        found = self.normaliser.extract_region(region)
        if found is None:
            try:
                found = Region.parse(region)
            except ValueError:
                raise ValueError(f"unknown region {region!r}: name a province, city or district") from None
        return found

    # -- curation (write, then catch up) --------------------------------------

    def _committed(self) -> None:
        """Announce the store's new KB version; the write stands whatever happens here."""
        try:
            self.notifier.published(self.store.kb_version())
        except Exception:
            log.exception("committed, but the change could not be announced; other workers catch up on search")

    def announce_change(self) -> SyncReport:
        """After a committed write beside the entries (an applied calibration): tell the workers, catch up here."""
        self._committed()
        return self.sync()

    def add(self, entry: Entry, *, author: str) -> Entry:
        stored = self.store.add(entry, author=author)
        self._committed()
        self.sync()
        return stored

    def update(self, entry: Entry, *, author: str) -> Entry:
        stored = self.store.update(entry, author=author)
        self._committed()
        self.sync()
        return stored

    def set_status(self, entry_id: int, status: Status | str, *, expected_version: int, author: str) -> Entry:
        entry = self.store.get(entry_id).replace(status=Status.parse(status), version=expected_version)
        return self.update(entry, author=author)

    def delete(self, entry_id: int, *, expected_version: int, author: str) -> None:
        self.store.delete(entry_id, expected_version=expected_version, author=author)
        self._committed()
        self.sync()

    def rollback(self, entry_id: int, revision_id: int, *, expected_version: int, author: str) -> Entry:
        stored = self.store.rollback(entry_id, revision_id, expected_version=expected_version, author=author)
        self._committed()
        self.sync()
        return stored

    def import_entries(self, entries: Sequence[Entry], *, author: str) -> ImportSummary:
        summary = self.store.import_entries(entries, author=author)
        self._committed()
        self.sync()
        self.save_index()
        return summary

    def revisions(self, entry_id: int) -> list[Revision]:
        return self.store.revisions(entry_id)

    def get(self, entry_id: int) -> Entry:
        return self.store.get(entry_id)

    def use_normaliser(self, normaliser: TextNormaliser) -> SyncReport:
        """Switch to a normaliser built from edited tables: every phrasing is embedded again with it.

        Searches wait for the new index (seconds for a city's knowledge base); then it is saved.
        """
        with self._sync_lock:
            self.normaliser = normaliser
            self._lexical = None
            report = self.rebuild()
            self.save_index()
            return report

    def today(self) -> date:
        """The date "in effect" is judged by (injectable for tests)."""
        return self._today()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` exactly as the index embeds phrasings (for quality checks and clustering)."""
        return self.embedder.encode([self._embed_text(t) for t in texts])

    def stats(self) -> dict[str, int | str]:
        index = self._index
        return {
            "kb_version": self._index_version,
            "entries_indexed": index.entry_count if index else 0,
            "phrasings_indexed": len(index) if index else 0,
            "index_type": self.settings.index_type,
            "model": self.embedder.name,
        }
