"""The curation queue: questions the knowledge base failed, grouped so staff fix each gap once.

Sources, all from the last ``days`` days: questions that got no answer; "您是想问"
choices nobody picked (no choice or answer from the same citizen within ten
minutes); answers a citizen marked 没用 (with the question that produced them);
operators' "not found" and "wrong answer" reports. Similar questions are
clustered with the same embedding model the search uses, and each cluster gets
the entry it comes closest to, so one click can add it there as a similar question.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge_base.records import Hit
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

if TYPE_CHECKING:
    from knowledge_base.search.kb import KnowledgeBase

SOURCE_NAMES = {
    "no_answer": "未能回答",
    "unresolved": "澄清后未选择",
    "not_useful": "市民反馈没用",
    "not_found": "话务员：未找到",
    "wrong": "话务员：答案有误",
}
RESOLVE_WINDOW = timedelta(minutes=10)
CLUSTER_SIMILARITY = 0.93  # e5 cosine; at this level two questions ask for the same thing
SUGGESTION_FLOOR = 0.92
"""e5 cosine (the hit's dense score, which no lexical weight moves) below which a cluster's closest entry is only
shown, not proposed: the queue's main button is then 新建条目. Measured on the sample (knowledge_base/sample, 199
test questions): of the 154 questions whose closest entry is the right one, 96.8 % score at least 0.92; of the 36
the sample cannot answer, 78 % score below. "我要投诉噪音" comes closest to the entry about leaked personal data
at 0.915."""
MAX_ITEMS = 5000


@dataclass(frozen=True)
class QueueItem:
    source: str
    query: str
    created_at: str
    channel: str
    entry_key: str = ""
    detail: str = ""


@dataclass
class Cluster:
    """Questions that ask the same thing; ``representative`` is the most frequent wording."""

    id: str
    representative: str
    items: list[QueueItem] = field(default_factory=list)
    suggestion: Hit | None = None

    @property
    def sources(self) -> dict[str, int]:
        return dict(Counter(SOURCE_NAMES[i.source] for i in self.items))

    @property
    def close_enough(self) -> bool:
        """Whether the closest entry is near enough to propose adding the cluster's wordings to it."""
        return self.suggestion is not None and self.suggestion.dense >= SUGGESTION_FLOOR

    @property
    def wordings(self) -> list[str]:
        return [q for q, _ in Counter(i.query for i in self.items).most_common()]


class CurationQueue:
    """Read the failures, cluster them, remember which ones staff handled.

    Args:
        kb: the KnowledgeBase (its normaliser, embedder and search).
        db: the knowledge base's database.
    """

    def __init__(self, kb: KnowledgeBase, db: Database) -> None:
        from knowledge_base.staff.operator_log import OperatorLog

        self.kb = kb
        self.db = db
        OperatorLog(db)  # its table must exist before the queue reads it
        ensure_current(db)

    def fingerprint(self, query: str) -> str:
        return self.kb.normaliser.normalise(query) or query.strip()

    def items(self, *, days: int = 30, now: datetime | None = None) -> list[QueueItem]:
        """Every open failure of the window, newest first (handled ones left out)."""
        since = ((now or datetime.now()) - timedelta(days=days)).isoformat(timespec="seconds")
        found: list[QueueItem] = []
        log = self.db.query(
            "SELECT created_at, channel, sender_id, query, decision, entry_key FROM answer_log "
            "WHERE created_at >= ? ORDER BY created_at",
            (since,),
        )
        by_sender: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in log:
            by_sender[row["sender_id"]].append(row)
            if row["decision"] == "no_answer":
                found.append(QueueItem("no_answer", row["query"], row["created_at"], row["channel"]))
        for rows in by_sender.values():
            for i, row in enumerate(rows):
                if row["decision"] != "clarify":
                    continue
                limit = (datetime.fromisoformat(row["created_at"]) + RESOLVE_WINDOW).isoformat(timespec="seconds")
                later = rows[i + 1 :]
                if not any(r["decision"] in ("chosen", "answer") and r["created_at"] <= limit for r in later):
                    found.append(QueueItem("unresolved", row["query"], row["created_at"], row["channel"]))
        feedback = self.db.query(
            "SELECT created_at, channel, sender_id, entry_key FROM feedback WHERE useful = 0 AND created_at >= ?",
            (since,),
        )
        for fb in feedback:
            asked = [
                r
                for r in by_sender.get(fb["sender_id"], [])
                if r["entry_key"] == fb["entry_key"] and r["created_at"] <= fb["created_at"]
            ]
            query = asked[-1]["query"] if asked else ""
            if query:
                found.append(QueueItem("not_useful", query, fb["created_at"], fb["channel"], fb["entry_key"]))
        reports = self.db.query(
            "SELECT created_at, operator, query, entry_key, outcome, reason FROM operator_reports "
            "WHERE outcome IN ('not_found', 'wrong') AND created_at >= ?",
            (since,),
        )
        for rep in reports:
            found.append(
                QueueItem(rep["outcome"], rep["query"], rep["created_at"], "operator", rep["entry_key"], rep["reason"])
            )
        done = {r["fingerprint"] for r in self.db.query("SELECT fingerprint FROM curation_done")}
        open_items = [i for i in found if i.query.strip() and self.fingerprint(i.query) not in done]
        open_items.sort(key=lambda i: i.created_at, reverse=True)
        return open_items[:MAX_ITEMS]

    def clusters(
        self, *, days: int = 30, similarity: float = CLUSTER_SIMILARITY, limit: int = 50, now: datetime | None = None
    ) -> list[Cluster]:
        """The open failures grouped by meaning, largest group first, each with its closest entry."""
        items = self.items(days=days, now=now)
        if not items:
            return []
        by_print: dict[str, list[QueueItem]] = defaultdict(list)
        for item in items:
            by_print[self.fingerprint(item.query)].append(item)
        prints = sorted(by_print, key=lambda p: -len(by_print[p]))
        texts = [Counter(i.query for i in by_print[p]).most_common(1)[0][0] for p in prints]
        vectors = self.kb.embed(texts)
        heads: list[int] = []
        members: dict[int, list[int]] = {}
        for i in range(len(prints)):
            if heads:
                sims = vectors[heads] @ vectors[i]
                best = int(np.argmax(sims))
                if float(sims[best]) >= similarity:
                    members[heads[best]].append(i)
                    continue
            heads.append(i)
            members[i] = [i]
        clusters = [
            Cluster(
                id=prints[head],
                representative=texts[head],
                items=[item for m in members[head] for item in by_print[prints[m]]],
            )
            for head in heads
        ]
        clusters.sort(key=lambda c: -len(c.items))
        clusters = clusters[:limit]
        for cluster in clusters:
            hits = self.kb.search(cluster.representative, top_k=1).hits
            cluster.suggestion = hits[0] if hits else None
        return clusters

    def resolve(self, queries: list[str], *, action: str, actor: str) -> int:
        """Take questions off the queue (they were added to an entry, or dismissed); returns how many."""
        now = datetime.now().isoformat(timespec="seconds")
        prints = sorted({self.fingerprint(q) for q in queries if q.strip()})
        with self.db.transaction():
            for fp in prints:
                self.db.execute("DELETE FROM curation_done WHERE fingerprint=?", (fp,))
                self.db.execute(
                    "INSERT INTO curation_done (fingerprint, action, actor, created_at) VALUES (?, ?, ?, ?)",
                    (fp, action[:40], actor[:100], now),
                )
        return len(prints)
