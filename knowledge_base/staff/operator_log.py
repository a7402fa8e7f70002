"""What hotline operators reported about the knowledge base's suggestions during calls.

An operator who read an entry to a caller reports it ``used``; one who found
nothing that answers the caller reports ``not_found``; one who found an entry
that is wrong or out of date reports ``wrong``. The last two say why, and feed
the curation queue (:mod:`knowledge_base.staff.curation`) and the admin dashboard
(:mod:`knowledge_base.staff.reports`), which read the ``operator_reports`` table as
this module writes it.

Example:
    >>> from knowledge_base.storage.database import open_database
    >>> log = OperatorLog(open_database(":memory:"))
    >>> log.record("wang", "社保怎么查", "wrong", "GD-SB-001", "电话号码已停用", kb_version=7).outcome
    'wrong'
    >>> [r.entry_key for r in log.reports(outcomes=["wrong", "not_found"])]
    ['GD-SB-001']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from knowledge_base.errors import InvalidEntry
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

__all__ = ["MAX_QUERY", "MAX_REASON", "NEEDS_ENTRY", "NEEDS_REASON", "OUTCOMES", "OperatorLog", "OperatorReport"]

OUTCOMES = ("used", "not_found", "wrong")
"""What an operator can report: the entry answered the caller, nothing did, or the entry is wrong."""

NEEDS_REASON = frozenset({"not_found", "wrong"})
"""Outcomes that go to the curation queue, where an editor needs to know what was missing or wrong."""

NEEDS_ENTRY = frozenset({"used", "wrong"})
"""Outcomes about one entry, so they name it."""

MAX_QUERY = 1000
MAX_REASON = 500
MAX_OPERATOR = 100
MAX_ENTRY_KEY = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ENTRY_KEY = re.compile(r"^[\w.:/-]*$")  # the entries' own key syntax (records.Entry.key)


@dataclass(frozen=True)
class OperatorReport:
    """One stored report: who, when, about which question and entry, and what they found."""

    id: int
    created_at: datetime
    operator: str
    query: str
    entry_key: str
    outcome: str
    reason: str
    kb_version: int


class OperatorLog:
    """The operators' reports, in the knowledge base's database.

    Args:
        db: the knowledge base's database (its table is created if missing).
        clock: the current time (injectable for tests).
    """

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = datetime.now) -> None:
        self.db = db
        self.clock = clock
        ensure_current(db)

    def record(
        self,
        operator: str,
        query: str,
        outcome: str,
        entry_key: str = "",
        reason: str = "",
        *,
        kb_version: int,
    ) -> OperatorReport:
        """Store one report.

        Args:
            operator: the signed-in operator's username.
            query: the question as the operator searched it (whitespace is collapsed).
            outcome: one of :data:`OUTCOMES`.
            entry_key: the entry's key (编号); required for ``used`` and ``wrong``.
            reason: what was missing or wrong; required for ``not_found`` and ``wrong``.
            kb_version: the KB version of the search the operator looked at.

        Returns:
            The stored report.

        Raises:
            InvalidEntry: a value is missing, too long, of the wrong type, or contains control
                characters; the message names the field and what is allowed.
        """
        operator = _text(operator, "operator", MAX_OPERATOR)
        if not operator:
            raise InvalidEntry("operator", "the operator's username is required")
        query = " ".join(_text(query, "query", None).split())
        if not query:
            raise InvalidEntry("query", "the question the operator searched is required")
        if len(query) > MAX_QUERY:
            raise InvalidEntry("query", f"is {len(query)} characters long; at most {MAX_QUERY} allowed")
        if outcome not in OUTCOMES:
            raise InvalidEntry("outcome", f"{outcome!r} is not an outcome; allowed: {', '.join(OUTCOMES)}")
        entry_key = _text(entry_key, "entry_key", MAX_ENTRY_KEY)
        if not _ENTRY_KEY.match(entry_key):
            raise InvalidEntry(
                "entry_key", f"{entry_key!r} is not an entry key: letters, digits, '-', '_', '.', ':' or '/'"
            )
        if outcome in NEEDS_ENTRY and not entry_key:
            raise InvalidEntry("entry_key", f"a {outcome!r} report names the entry it is about")
        reason = _text(reason, "reason", MAX_REASON)
        if outcome in NEEDS_REASON and not reason:
            raise InvalidEntry(
                "reason", f"a {outcome!r} report needs a reason: what the caller asked that is missing or wrong"
            )
        if isinstance(kb_version, bool) or not isinstance(kb_version, int) or not 0 <= kb_version < 2**63:
            raise InvalidEntry("kb_version", f"must be an integer from 0 to 2**63 - 1, got {kb_version!r}")
        created = self.clock().replace(microsecond=0)
        new_id = self.db.insert(
            "INSERT INTO operator_reports (created_at, operator, query, entry_key, outcome, reason, kb_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (created.isoformat(timespec="seconds"), operator, query, entry_key, outcome, reason, kb_version),
        )
        return OperatorReport(int(new_id), created, operator, query, entry_key, outcome, reason, kb_version)

    def reports(
        self,
        since: datetime | date | str | None = None,
        outcomes: Iterable[str] | None = None,
        limit: int = 200,
    ) -> list[OperatorReport]:
        """Stored reports, newest first.

        Args:
            since: only reports made at or after this time (a date means its midnight; ISO text is accepted).
            outcomes: only these outcomes (None: all).
            limit: at most this many reports, 1-10000.

        Raises:
            ValueError: an unknown outcome, a ``since`` that is not a time, or a limit out of range.
        """
        if not 1 <= limit <= 10_000:
            raise ValueError(f"limit must be between 1 and 10000, got {limit}")
        sql, params = "SELECT * FROM operator_reports WHERE 1=1", []
        if since is not None:
            sql += " AND created_at >= ?"
            params.append(_iso(since))
        if outcomes is not None:
            wanted = list(dict.fromkeys(outcomes))
            unknown = [o for o in wanted if o not in OUTCOMES]
            if unknown:
                raise ValueError(f"unknown outcome(s) {unknown}; allowed: {', '.join(OUTCOMES)}")
            if not wanted:
                return []
            sql += f" AND outcome IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_report(row) for row in rows]


def _text(value: object, field: str, limit: int | None) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidEntry(field, f"must be text, got {type(value).__name__}")
    text = value.strip()
    if limit is not None and len(text) > limit:
        raise InvalidEntry(field, f"is {len(text)} characters long; at most {limit} allowed")
    if _CONTROL.search(text):
        raise InvalidEntry(field, "contains control characters; remove them and send it again")
    return text


def _iso(since: datetime | date | str) -> str:
    # created_at is ISO text to the second, so ISO text compares in time order.
    if isinstance(since, datetime):
        return since.isoformat(timespec="seconds")
    if isinstance(since, date):
        return datetime.combine(since, datetime.min.time()).isoformat(timespec="seconds")
    try:
        return datetime.fromisoformat(str(since)).isoformat(timespec="seconds")
    except ValueError:
        raise ValueError(f"since must be a date or time (ISO, e.g. 2026-11-26T09:00:00), got {since!r}") from None


def _report(row: dict[str, Any]) -> OperatorReport:
    return OperatorReport(
        id=int(row["id"]),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        operator=str(row["operator"]),
        query=str(row["query"]),
        entry_key=str(row["entry_key"]),
        outcome=str(row["outcome"]),
        reason=str(row["reason"]),
        kb_version=int(row["kb_version"]),
    )
