"""The curation queue: questions the knowledge base failed, grouped so staff fix each gap once.

Sources, all from the last ``days`` days: questions that got no answer; "您是想问"
choices nobody picked (no choice or answer from the same citizen within ten
minutes); answers a citizen marked 没用 (with the question that produced them);
operators' "not found" and "wrong answer" reports; and closed work orders whose reply the
dispatcher marked 答复具有普遍性 (工单答复): the city already answered them, so one click
turns the order into a draft entry. Similar questions are clustered with the same embedding
model the search uses, and each cluster gets the entry it comes closest to, so one click can
add it there as a similar question.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge_base.errors import InvalidEntry
from knowledge_base.orders.book import WorkOrder, WorkOrderBook
from knowledge_base.plain.privacy import mask
from knowledge_base.records import MAX_QUESTION_CHARS, MAX_SIMILAR_QUESTIONS, Entry, Hit, Status
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

if TYPE_CHECKING:
    from knowledge_base.search.kb import KnowledgeBase
    from knowledge_base.staff.workflow import Draft, Workflow

SOURCE_NAMES = {
    "no_answer": "未能回答",
    "unresolved": "澄清后未选择",
    "not_useful": "市民反馈没用",
    "not_found": "话务员：未找到",
    "wrong": "话务员：答案有误",
    "order_reply": "工单答复",
}
CLOSED_STATES = ("done", "visited")
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
    order: str = ""
    """The work order's number (source ``order_reply``); its reply is ``detail``."""


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

    @property
    def orders(self) -> list[QueueItem]:
        """The closed work orders of the cluster whose reply is general (each one click from a draft entry)."""
        return [i for i in self.items if i.order]


def order_wording(order: WorkOrder) -> str:
    """The order's description as a question anyone may read: phone and ID numbers masked, the citizen's name
    (and 张先生 / 张女士 for 张三) replaced by 市民."""
    text = mask(order.description)
    name = order.name.strip()
    if len(name) >= 2:
        for said in (name, name[0] + "先生", name[0] + "女士"):
            text = text.replace(said, "市民")
    return text.strip()[:MAX_QUESTION_CHARS]


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
        for order in self._general_replies(since):
            found.append(
                QueueItem(
                    "order_reply",
                    order_wording(order),
                    (order.closed_at or order.created_at).isoformat(timespec="seconds"),
                    order.channel,
                    detail=order.reply,
                    order=order.number,
                )
            )
        done = {r["fingerprint"] for r in self.db.query("SELECT fingerprint FROM curation_done")}
        open_items = [
            i
            for i in found
            if i.query.strip() and self.fingerprint(i.query) not in done and _order_mark(i.order) not in done
        ]
        open_items.sort(key=lambda i: i.created_at, reverse=True)
        return open_items[:MAX_ITEMS]

    def group(self, texts: list[str], *, similarity: float = CLUSTER_SIMILARITY) -> list[tuple[str, list[int]]]:
        """``texts`` grouped by meaning: the same normalised text, then cosine >= ``similarity`` to a group's
        first wording, the most frequent first. Returns each group's key (its most frequent normalised text)
        and the indices of its texts; the queue and the hot topics (orders/topics.py) group alike."""
        by_print: dict[str, list[int]] = defaultdict(list)
        for i, text in enumerate(texts):
            by_print[self.fingerprint(text)].append(i)
        if not by_print:
            return []
        prints = sorted(by_print, key=lambda p: -len(by_print[p]))
        vectors = self.kb.embed([Counter(texts[i] for i in by_print[p]).most_common(1)[0][0] for p in prints])
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
        return [(prints[head], [t for m in members[head] for t in by_print[prints[m]]]) for head in heads]

    def clusters(
        self, *, days: int = 30, similarity: float = CLUSTER_SIMILARITY, limit: int = 50, now: datetime | None = None
    ) -> list[Cluster]:
        """The open failures grouped by meaning, largest group first, each with its closest entry."""
        items = self.items(days=days, now=now)
        if not items:
            return []
        queries = [i.query for i in items]
        clusters = []
        for key, members in self.group(queries, similarity=similarity):
            own = Counter(queries[m] for m in members if self.fingerprint(queries[m]) == key)
            clusters.append(Cluster(id=key, representative=own.most_common(1)[0][0], items=[items[m] for m in members]))
        clusters.sort(key=lambda c: -len(c.items))
        clusters = clusters[:limit]
        for cluster in clusters:
            hits = self.kb.search(cluster.representative, top_k=1).hits
            cluster.suggestion = hits[0] if hits else None
        return clusters

    def resolve(self, queries: list[str], *, action: str, actor: str, orders: Sequence[str] = ()) -> int:
        """Take questions (and work orders, by number) off the queue (added to an entry, or dismissed);
        returns how many."""
        now = datetime.now().isoformat(timespec="seconds")
        prints = sorted({self.fingerprint(q) for q in queries if q.strip()} | {_order_mark(n) for n in orders if n})
        with self.db.transaction():
            for fp in prints:
                self.db.execute("DELETE FROM curation_done WHERE fingerprint=?", (fp,))
                self.db.execute(
                    "INSERT INTO curation_done (fingerprint, action, actor, created_at) VALUES (?, ?, ?, ?)",
                    (fp, action[:40], actor[:100], now),
                )
        return len(prints)

    def draft_from_order(self, number: str, *, wordings: list[str], workflow: Workflow, author: str) -> Draft:
        """A draft entry from a closed order's general reply: its description (masked) as the question, the
        citizens' ``wordings`` of its cluster as similar questions, the reply as the answer, the department
        that replied as the entry's; then the order and the wordings leave the queue.

        Raises:
            EntryNotFound: no such order.
            InvalidEntry: the order is not closed with a general reply, or already has its draft.
        """
        order = WorkOrderBook(self.db).get(number)
        if order.status not in CLOSED_STATES or not order.general_reply:
            raise InvalidEntry("order", f"工单 {order.number} 没有办结或答复不具有普遍性，不能生成草稿")
        done = self.db.query_one("SELECT action FROM curation_done WHERE fingerprint=?", (_order_mark(order.number),))
        if done is not None:
            raise InvalidEntry("order", f"工单 {order.number} 已经处理过（{done['action']}），请到草稿列表查看")
        question = order_wording(order)
        similar = [w.strip()[:MAX_QUESTION_CHARS] for w in wordings if w.strip() and w.strip() != question]
        entry = Entry(
            question=question,
            similar_questions=tuple(dict.fromkeys(similar))[:MAX_SIMILAR_QUESTIONS],
            answer=order.reply,
            department=order.department,
            status=Status.DRAFT,
        )
        draft = workflow.save(entry, author=author)
        self.resolve([question, *similar], action=f"draft:{draft.id}", actor=author, orders=[order.number])
        return draft

    def _general_replies(self, since: str) -> list[WorkOrder]:
        book = WorkOrderBook(self.db)
        marks = ", ".join("?" * len(CLOSED_STATES))
        rows = self.db.query(
            f"SELECT number FROM work_orders WHERE general_reply=1 AND status IN ({marks}) AND closed_at>=? "
            "ORDER BY closed_at DESC LIMIT ?",
            (*CLOSED_STATES, since, MAX_ITEMS),
        )
        return [book.get(r["number"]) for r in rows]


def _order_mark(number: str) -> str:
    """An order's row in ``curation_done`` (a fingerprint is normalised text and never starts with this)."""
    return f"order:{number}" if number else ""
