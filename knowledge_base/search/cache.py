"""Search-result cache for questions citizens and operators ask again and again.

A cached value holds what a :class:`~knowledge_base.records.SearchResult` needs
beyond the entries themselves: the decision, how many hits it offers, its reason
and, per hit, the entry id and version, the scores and the matched phrasing. The knowledge base turns it
back into a result with the entries of its own index, so a hit costs no
embedding and no FAISS search.

The key hashes everything that decides a result: the KB version, the text the
model reads and the text BM25 reads (both after normalisation), region,
department, ``top_k``, today's date (entries start and expire), whether the
question was cut, and a scope naming the model, the normaliser tables and the
ranking settings. An edit raises the KB version, so stale results are never
looked up again: no invalidation is needed; they age out of the LRU or the
Redis TTL.

Two caches: :class:`LRUResultCache` in the process (default) and
:class:`RedisResultCache`, shared by every worker, when ``redis_url`` is set.

Example:
    >>> cache = LRUResultCache(max_entries=2)
    >>> cache.get("missing") is None
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

from knowledge_base.records import Decision, Entry, Hit, SearchResult

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# Part of every key: raised when a cached value changes shape, so values of the old shape are never read.
_FORMAT = 2
# Results of a KB version nobody asks for any more just wait for expiry; an hour keeps a
# morning's repeated questions without holding yesterday's versions.
DEFAULT_TTL_S = 3600
DEFAULT_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class CachedHit:
    """One ranked entry of a cached result, by id and version."""

    entry_id: int
    entry_version: int
    score: float
    dense: float
    lexical: float
    matched_phrasing: str


@dataclass(frozen=True)
class CachedResult:
    """The part of a :class:`SearchResult` that is not the question or the entries."""

    kb_version: int
    decision: Decision
    reason: str
    hits: tuple[CachedHit, ...]
    offered: int

    @classmethod
    def of(cls, result: SearchResult) -> CachedResult:
        """What to keep of ``result``."""
        return cls(
            result.kb_version,
            result.decision,
            result.reason,
            tuple(
                CachedHit(
                    h.entry_id, h.entry.version, float(h.score), float(h.dense), float(h.lexical), h.matched_phrasing
                )
                for h in result.hits
            ),
            result.offered,
        )

    def rebuild(
        self,
        *,
        query: str,
        normalised: str,
        entries: Mapping[int, Entry],
        thresholds: dict[str, float],
        truncated: bool,
    ) -> SearchResult | None:
        """The full result again, with ``entries`` (id -> entry) supplying the hits' entries.

        Returns:
            None when an entry is missing or at another version than when cached (the
            caller then searches for real).
        """
        hits = []
        for h in self.hits:
            entry = entries.get(h.entry_id)
            if entry is None or entry.version != h.entry_version:
                return None
            hits.append(
                Hit(entry=entry, score=h.score, dense=h.dense, lexical=h.lexical, matched_phrasing=h.matched_phrasing)
            )
        return SearchResult(
            query,
            normalised,
            self.decision,
            tuple(hits),
            self.reason,
            self.kb_version,
            thresholds,
            (),
            truncated,
            offered=self.offered,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": self.kb_version,
                "d": self.decision.value,
                "r": self.reason,
                "o": self.offered,
                "h": [
                    [h.entry_id, h.entry_version, h.score, h.dense, h.lexical, h.matched_phrasing] for h in self.hits
                ],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CachedResult:
        """Parse :meth:`to_json`'s output.

        Raises:
            ValueError: not a cached result.
        """
        try:
            data = json.loads(text)
            return cls(
                int(data["v"]),
                Decision(data["d"]),
                str(data["r"]),
                tuple(
                    CachedHit(int(i), int(v), float(s), float(d), float(lx), str(p)) for i, v, s, d, lx, p in data["h"]
                ),
                int(data["o"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a cached search result: {exc}") from None


def result_key(
    *,
    scope: str,
    kb_version: int,
    today: date,
    embed_text: str,
    lexical_text: str,
    region: str,
    department: str,
    top_k: int,
    truncated: bool,
) -> str:
    """The cache key of one search: a hex digest of everything that decides its result.

    Args:
        scope: names the model, normaliser tables and ranking settings (:func:`scope_of`).
        kb_version: the version the index is at.
        today: the date entries are filtered by ("in effect today").
        embed_text: the text the model reads.
        lexical_text: the normalised text BM25 reads.
        region: the parsed region (its ``repr``), empty for none.
        department: the department filter, empty for none.
        top_k: how many hits.
        truncated: whether the question was cut (the reason says so).
    """
    parts = [
        _FORMAT,
        scope,
        kb_version,
        today.isoformat(),
        embed_text,
        lexical_text,
        region,
        department,
        top_k,
        truncated,
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def scope_of(model: str, normaliser: str, ranking: Mapping[str, object]) -> str:
    """A short digest of what besides the question shapes results; workers differing in it never share entries."""
    text = json.dumps([model, normaliser, sorted((k, str(v)) for k, v in ranking.items())], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class ResultCache(Protocol):
    """Where :meth:`KnowledgeBase.search <knowledge_base.search.kb.KnowledgeBase.search>` keeps results."""

    def get(self, key: str) -> CachedResult | None: ...
    def put(self, key: str, value: CachedResult) -> None: ...


class LRUResultCache:
    """In-process cache of the ``max_entries`` most recently used results (thread-safe).

    Args:
        max_entries: how many results to keep (a few hundred bytes each).

    Raises:
        ValueError: max_entries below 1.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._items: OrderedDict[str, CachedResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> CachedResult | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: CachedResult) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


class RedisResultCache:
    """Cache shared by every worker in Redis, under ``<prefix>search:<key>`` with a TTL.

    Redis trouble never fails a search: a failed read is a miss, a failed write is
    skipped, both are logged (once per outage, then again after recovery), and after
    a failure Redis is left alone for ``pause_s`` seconds, so that searches during an
    outage do not each wait for a connection timeout.

    Args:
        client: a Redis client.
        prefix: the deployment's ``redis_prefix``.
        ttl_s: seconds a result is kept.
        pause_s: seconds to search without the cache after a Redis error.

    Raises:
        ValueError: ttl_s below 1 or pause_s negative.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = "hotline:", ttl_s: int = DEFAULT_TTL_S, pause_s: float = 5.0
    ) -> None:
        if ttl_s < 1:
            raise ValueError(f"ttl_s must be at least 1 second, got {ttl_s}")
        if pause_s < 0:
            raise ValueError(f"pause_s must not be negative, got {pause_s}")
        self.client = client
        self.prefix = f"{prefix}search:"
        self.ttl_s = ttl_s
        self.pause_s = pause_s
        self.hits = 0
        self.misses = 0
        self._failing = False
        self._paused_until = 0.0

    def get(self, key: str) -> CachedResult | None:
        import redis

        if self._paused():
            self.misses += 1
            return None
        try:
            raw = self.client.get(self.prefix + key)
        except redis.RedisError as exc:
            self._failed("read", exc)
            self.misses += 1
            return None
        self._recovered()
        if raw is None:
            self.misses += 1
            return None
        try:
            value = CachedResult.from_json(raw)
        except ValueError as exc:
            log.warning("ignored an unreadable cached search result %s: %s", key, exc)
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: CachedResult) -> None:
        import redis

        if self._paused():
            return
        try:
            self.client.set(self.prefix + key, value.to_json(), ex=self.ttl_s)
        except redis.RedisError as exc:
            self._failed("write", exc)
            return
        self._recovered()

    def _paused(self) -> bool:
        return self._failing and time.monotonic() < self._paused_until

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._failing:
            log.warning(
                "search cache in Redis unavailable (%s failed: %s); searching without it, retrying every %.0f s",
                what,
                exc,
                self.pause_s,
            )
        self._failing = True
        self._paused_until = time.monotonic() + self.pause_s

    def _recovered(self) -> None:
        if self._failing:
            log.info("search cache in Redis is available again")
        self._failing = False
