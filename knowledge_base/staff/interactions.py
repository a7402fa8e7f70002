"""What happened in conversations: work orders (工单), answer feedback and the answer log.

Kept in the knowledge base's database (SQLite or PostgreSQL), beside the entries, so
the admin and operator pages read one source. Every bot answer is logged with the
entry, score, KB version and thresholds that produced it, so it can be reproduced.

Example:
    >>> log = InteractionStore(":memory:")
    >>> order = log.create_work_order(channel="web", sender_id="s1", description="噪音扰民",
    ...                               name="张先生", phone="13812345678")
    >>> order.number.startswith("GD")
    True
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from knowledge_base.orders.book import WorkOrder, WorkOrderBook
from knowledge_base.orders.states import OPEN_STATES
from knowledge_base.storage.database import Database, adopt
from knowledge_base.storage.migrate import ensure_current


class InteractionStore:
    """Work orders, feedback and the answer log, in the knowledge base's database.

    Args:
        database: an open database (shared; the caller closes it), or a URL or path for
            :func:`~knowledge_base.storage.database.open_database` (owned and closed by this store):
            a SQLite file, ``":memory:"`` for tests, or ``postgresql://...``.
        orders: the work-order book with the deployment's due dates and outbox (default: the book on
            ``database`` with default due dates and no outbox).
    """

    def __init__(self, database: Database | str | Path, *, orders: WorkOrderBook | None = None) -> None:
        self.db, self._owns_db = adopt(database)
        self.path = self.db.url
        ensure_current(self.db)
        self.orders = orders or WorkOrderBook(self.db)

    def close(self) -> None:
        """Close the database if this store opened it."""
        if self._owns_db:
            self.db.close()

    # -- work orders (kept for the callers of the first release; the book has the rest) ------

    def create_work_order(self, **fields: Any) -> WorkOrder:
        """:meth:`WorkOrderBook.create <knowledge_base.orders.book.WorkOrderBook.create>` with default due dates."""
        return self.orders.create(**fields)

    def work_order(self, number: str) -> WorkOrder:
        return self.orders.get(number)

    def work_order_by_token(self, token: str) -> WorkOrder:
        return self.orders.by_token(token)

    def work_orders(self, *, status: str | None = "open", limit: int = 100) -> list[WorkOrder]:
        """Newest first; ``status="open"``: every state in which the order is still someone's work."""
        states = None if status is None else OPEN_STATES if status == "open" else (status,)
        return self.orders.orders(states=states, limit=limit)

    # -- feedback and answer log -----------------------------------------------

    def record_feedback(
        self, *, channel: str, sender_id: str, entry_key: str, kb_version: int, useful: bool, comment: str = ""
    ) -> None:
        """One citizen's judgement of one answer: 有用 pressed twice, or a request delivered twice after a
        worker died, counts once; a change of mind (有用, then 没用) replaces the earlier judgement."""
        with self.db.transaction():
            self.db.execute(
                "DELETE FROM feedback WHERE sender_id=? AND entry_key=? AND kb_version=?",
                (sender_id, entry_key, kb_version),
            )
            self.db.execute(
                "INSERT INTO feedback (created_at, channel, sender_id, entry_key, kb_version, useful, comment) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now().isoformat(timespec="seconds"),
                    channel,
                    sender_id,
                    entry_key,
                    kb_version,
                    int(useful),
                    comment[:500],
                ),
            )

    def feedback(self, entry_key: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM feedback"
        args: tuple[str, ...] = ()
        if entry_key is not None:
            sql, args = sql + " WHERE entry_key=?", (entry_key,)
        return self.db.query(sql + " ORDER BY id", args)

    def log_answer(
        self,
        *,
        channel: str,
        sender_id: str,
        query: str,
        decision: str,
        entry_key: str,
        score: float | None,
        kb_version: int,
        thresholds: dict[str, float],
        candidates: list[tuple[str, float]],
    ) -> None:
        self.db.execute(
            "INSERT INTO answer_log (created_at, channel, sender_id, query, decision, entry_key, score, kb_version, "
            "thresholds, candidates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                datetime.now().isoformat(timespec="seconds"),
                channel,
                sender_id,
                query[:2000],
                decision,
                entry_key,
                score,
                kb_version,
                json.dumps(thresholds),
                json.dumps(candidates, ensure_ascii=False),
            ),
        )

    def answer_log(self, *, limit: int = 100) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM answer_log ORDER BY id DESC LIMIT ?", (limit,))
