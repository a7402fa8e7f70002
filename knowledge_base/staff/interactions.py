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
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from knowledge_base.errors import EntryNotFound, InvalidEntry
from knowledge_base.plain.privacy import normalise_phone
from knowledge_base.storage.database import Database, adopt
from knowledge_base.storage.migrate import ensure_current

MAX_DESCRIPTION = 2000


@dataclass(frozen=True)
class WorkOrder:
    """A citizen's case handed to staff: what they need, how to reach them, what the bot tried."""

    id: int
    number: str
    created_at: datetime
    channel: str
    sender_id: str
    region: str
    name: str
    phone: str
    description: str
    transcript: list[dict[str, Any]] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)
    status: str = "open"
    token: str = ""
    """Random and unique: what the work order's page URL carries (the number can be guessed by counting)."""


class InteractionStore:
    """Work orders, feedback and the answer log, in the knowledge base's database.

    Args:
        database: an open database (shared; the caller closes it), or a URL or path for
            :func:`~knowledge_base.storage.database.open_database` (owned and closed by this store):
            a SQLite file, ``":memory:"`` for tests, or ``postgresql://...``.
    """

    def __init__(self, database: Database | str | Path) -> None:
        self.db, self._owns_db = adopt(database)
        self.path = self.db.url
        ensure_current(self.db)

    def close(self) -> None:
        """Close the database if this store opened it."""
        if self._owns_db:
            self.db.close()

    # -- work orders -----------------------------------------------------------

    def create_work_order(
        self,
        *,
        channel: str,
        sender_id: str,
        description: str,
        name: str = "",
        phone: str = "",
        region: str = "",
        transcript: list[dict[str, Any]] | None = None,
        entries: list[str] | None = None,
    ) -> WorkOrder:
        """Store a work order and give it its number (GD + date + sequence) and URL token, in one transaction.

        Raises:
            InvalidEntry: empty or oversized description, or a phone that is not a phone number.
        """
        description = (description or "").strip()
        if not description:
            raise InvalidEntry("description", "a work order needs a description of the problem")
        if len(description) > MAX_DESCRIPTION:
            raise InvalidEntry("description", f"at most {MAX_DESCRIPTION} characters")
        if phone and normalise_phone(phone) is None:
            raise InvalidEntry("phone", f"{phone!r} is not a phone number")
        now = datetime.now().replace(microsecond=0)
        # The number derives from the id, so the row is written twice; one transaction hides the gap.
        with self.db.transaction():
            order_id = self.db.insert(
                "INSERT INTO work_orders (created_at, channel, sender_id, region, name, phone, description, "
                "transcript, entries, status, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                (
                    now.isoformat(),
                    channel,
                    sender_id,
                    region,
                    (name or "").strip()[:50],
                    normalise_phone(phone) or "" if phone else "",
                    description,
                    json.dumps(transcript or [], ensure_ascii=False),
                    json.dumps(entries or [], ensure_ascii=False),
                    secrets.token_urlsafe(16),  # 128 random bits
                ),
            )
            number = f"GD{now:%Y%m%d}{order_id:06d}"
            self.db.execute("UPDATE work_orders SET number=? WHERE id=?", (number, order_id))
        return self.work_order(number)

    def work_order(self, number: str) -> WorkOrder:
        row = self.db.query_one("SELECT * FROM work_orders WHERE number=?", (number,))
        if row is None:
            raise EntryNotFound(f"no work order {number!r}")
        return _work_order(row)

    def work_order_by_token(self, token: str) -> WorkOrder:
        """The work order whose URL token this is (its page is found by the token, never by the number).

        Raises:
            EntryNotFound: no work order has this token.
        """
        row = self.db.query_one("SELECT * FROM work_orders WHERE token=?", (token,))
        if row is None:
            raise EntryNotFound("no work order with this token")
        return _work_order(row)

    def work_orders(self, *, status: str | None = "open", limit: int = 100) -> list[WorkOrder]:
        if status is None:
            rows = self.db.query("SELECT * FROM work_orders ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.db.query("SELECT * FROM work_orders WHERE status=? ORDER BY id DESC LIMIT ?", (status, limit))
        return [_work_order(r) for r in rows]

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


def _work_order(row: dict[str, Any]) -> WorkOrder:
    return WorkOrder(
        id=row["id"],
        number=row["number"],
        created_at=datetime.fromisoformat(row["created_at"]),
        channel=row["channel"],
        sender_id=row["sender_id"],
        region=row["region"],
        name=row["name"],
        phone=row["phone"],
        description=row["description"],
        transcript=json.loads(row["transcript"]),
        entries=json.loads(row["entries"]),
        status=row["status"],
        token=row["token"],
    )
