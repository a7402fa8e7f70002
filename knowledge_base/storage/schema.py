"""The one declaration of every table, column and index (SQLAlchemy Core), on SQLite and PostgreSQL alike.

The stores write plain SQL against these tables; nothing else declares them. A new
database is created from :data:`metadata` (see :mod:`knowledge_base.storage.migrate`),
a database of an earlier release is brought here by the migrations in
``knowledge_base/storage/migrations/``, and backups list their tables and columns
from it. A change here needs a migration too: ``tests/integration/test_upgrade.py``
fails while the migrations and this declaration disagree.

Types are those the release's SQLite-style DDL had on each dialect: ``INTEGER`` is
SQLite's 64-bit integer and PostgreSQL's ``BIGINT``, ``REAL`` is ``DOUBLE PRECISION``
there, an ``id`` key is a rowid alias with ``AUTOINCREMENT`` on SQLite (ids of deleted
rows are never handed out again) and ``BIGSERIAL`` on PostgreSQL.

Example:
    >>> [t.name for t in metadata.sorted_tables][:3]
    ['answer_log', 'audit_log', 'curation_done']
    >>> entries.c.key.unique, entries.c.kb_version.nullable
    (True, False)
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import BigInteger, Column, Double, Index, Integer, MetaData, Table, Text
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

__all__ = [
    "SEED_ROWS",
    "answer_log",
    "audit_log",
    "curation_done",
    "departments",
    "dictionaries",
    "dictionary_versions",
    "drafts",
    "entries",
    "feedback",
    "meta",
    "metadata",
    "numbered",
    "operator_reports",
    "order_lookups",
    "outbox",
    "revisions",
    "topic_alerts",
    "users",
    "work_order_events",
    "work_orders",
]

metadata = MetaData()
"""Every table of a hotline-qa database (the migrations' own ``alembic_version`` aside)."""

# SQLite's INTEGER holds 64 bits; PostgreSQL's INTEGER only 32.
_INTEGER: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
_REAL: TypeEngine[float] = Double().with_variant(sqlite.REAL(), "sqlite")


def _id() -> Column[int]:
    # BIGSERIAL on PostgreSQL; on SQLite exactly INTEGER (a rowid alias) with the table's AUTOINCREMENT.
    return Column("id", _INTEGER, primary_key=True)


def _integer(name: str, *, nullable: bool = False) -> Column[int]:
    return Column(name, _INTEGER, nullable=nullable)


def _text(name: str, *, nullable: bool = False, unique: bool = False) -> Column[str]:
    return Column(name, Text(), nullable=nullable, unique=unique)


def _numbered(name: str, *columns: Column[Any]) -> Table:
    """A table keyed by an ``id`` the database numbers."""
    return Table(name, metadata, _id(), *columns, sqlite_autoincrement=True)


# -- the knowledge base (storage/store.py) ------------------------------------------------

meta = Table(
    "meta",
    metadata,
    Column("name", Text(), primary_key=True),
    _text("value"),
)
"""Named values: ``kb_version`` (the KB-wide version counter) and ``schema_version`` (kept as the release wrote it;
the migrations' ``alembic_version`` table is what says which schema a database has)."""

entries = _numbered(
    "entries",
    _text("key", unique=True),
    _text("status"),
    _text("content"),
    _integer("version"),
    _text("updated_by"),
    _text("updated_at"),
    _integer("kb_version"),
)
Index("entries_kb_version", entries.c.kb_version)

revisions = _numbered(
    "revisions",
    _integer("entry_id"),
    _integer("kb_version"),
    _text("author"),
    _text("created_at"),
    _text("action"),
    _text("before", nullable=True),
    _text("after", nullable=True),
)
Index("revisions_entry", revisions.c.entry_id, revisions.c.id)
Index("revisions_kb_version", revisions.c.kb_version)

# -- search (search/dictionaries.py) -----------------------------------------------------

dictionaries = Table(
    "dictionaries",
    metadata,
    Column("name", Text(), primary_key=True),
    _text("content"),
    _integer("version"),
    _text("updated_by"),
    _text("updated_at"),
)

dictionary_versions = _numbered(
    "dictionary_versions",
    _text("name"),
    _integer("version"),
    _text("content"),
    _text("author"),
    _text("created_at"),
)
"""Every saved version of each dictionary: its history, and what a restore goes back to (revision 0004)."""
Index("dictionary_versions_name", dictionary_versions.c.name, dictionary_versions.c.version, unique=True)

# -- staff (staff/accounts.py, workflow.py, operator_log.py, curation.py) ---------------------

users = _numbered(
    "users",
    _text("username", unique=True),
    _text("display_name"),
    _text("role"),
    _text("password_hash"),
    _integer("disabled"),
    _integer("failed_logins"),
    _text("locked_until", nullable=True),
    _text("created_at"),
    # Every session carries the generation it began in; a bump (sign-out, new password, new role,
    # disabling) ends all of the account's sessions at their next request (revision 0003).
    Column("session_generation", _INTEGER, nullable=False, server_default="0"),
)

audit_log = _numbered(
    "audit_log",
    _text("created_at"),
    _text("actor"),
    _text("action"),
    _text("target"),
    _text("detail"),
    _text("ip"),
)
Index("audit_log_time", audit_log.c.created_at)

drafts = _numbered(
    "drafts",
    _integer("entry_id", nullable=True),  # None: a draft of a new entry
    _integer("base_version"),
    _text("content"),
    _text("state"),
    _integer("version"),
    _text("author"),
    _text("reviewer"),
    _text("note"),
    _text("created_at"),
    _text("updated_at"),
)
Index("drafts_entry", drafts.c.entry_id)

operator_reports = _numbered(
    "operator_reports",
    _text("created_at"),
    _text("operator"),
    _text("query"),
    _text("entry_key"),
    _text("outcome"),
    _text("reason"),
    _integer("kb_version"),
)
Index("operator_reports_time", operator_reports.c.created_at)

curation_done = Table(
    "curation_done",
    metadata,
    Column("fingerprint", Text(), primary_key=True),
    _text("action"),
    _text("actor"),
    _text("created_at"),
)

# -- what citizens did (staff/interactions.py) ---------------------------------------------

work_orders = _numbered(
    "work_orders",
    _text("number", nullable=True, unique=True),  # set right after the insert, from the id
    _text("created_at"),
    _text("channel"),
    _text("sender_id"),
    _text("region"),
    _text("name"),
    _text("phone"),
    _text("description"),
    _text("transcript"),
    _text("entries"),
    _text("status"),
    # What the work order's page URL carries: random, so a page cannot be found by counting up numbers
    # (the number stays on screen for people; revision 0003).
    _text("token"),
    # The order's life (revision 0005, knowledge_base/orders/): request type, where and when, the
    # responsible department (suggested, then confirmed), due date, the department's reply, the return visit.
    Column("kind", Text(), nullable=False, server_default="consult"),
    Column("address", Text(), nullable=False, server_default=""),
    Column("happened", Text(), nullable=False, server_default=""),
    Column("department", Text(), nullable=False, server_default=""),
    Column("suggested_department", Text(), nullable=False, server_default=""),
    Column("suggestion_reason", Text(), nullable=False, server_default=""),
    Column("due_at", Text(), nullable=False, server_default=""),
    Column("updated_at", Text(), nullable=False, server_default=""),
    Column("reply", Text(), nullable=False, server_default=""),
    Column("closed_at", Text(), nullable=False, server_default=""),
    Column("visit_result", Text(), nullable=False, server_default=""),
    Column("external_id", Text(), nullable=False, server_default=""),
    # 1: the dispatcher marked the reply as answering a general question, so it waits in the curation queue.
    Column("general_reply", _INTEGER, nullable=False, server_default="0"),
)
# The dashboard reads work orders by date (revision 0002).
Index("work_orders_time", work_orders.c.created_at)
Index("work_orders_token", work_orders.c.token, unique=True)
# The dispatcher page and the dashboard read orders by state and department (revision 0005).
Index("work_orders_status", work_orders.c.status, work_orders.c.department)

work_order_events = _numbered(
    "work_order_events",
    _integer("order_id"),
    _text("created_at"),
    _text("actor"),  # a staff username, "citizen", "system" or "api" (the city's system)
    _text("action"),
    _text("from_status"),
    _text("to_status"),
    _text("detail"),  # JSON: department, reply, note, visit result …
)
Index("work_order_events_order", work_order_events.c.order_id, work_order_events.c.id)

departments = _numbered(
    "departments",
    _text("name", unique=True),
    _text("duties"),  # what the department handles (职责), as the responsibility list says it
    _text("keywords"),  # space-separated
    _text("region"),  # empty: the whole city
    _integer("active"),
    _text("updated_at"),
    _text("updated_by"),
)

outbox = _numbered(
    "outbox",
    _integer("order_id"),
    _text("kind"),  # work_order.created
    _text("idempotency_key", unique=True),
    _text("body"),  # the exact JSON delivered (and signed)
    _text("status"),  # pending, delivered, dead
    _integer("attempts"),
    _text("next_attempt_at"),
    _text("last_error"),
    _text("created_at"),
    _text("delivered_at"),
    _text("lease_until"),  # a worker delivering it holds it until then; another may take it over after
)
Index("outbox_status", outbox.c.status, outbox.c.id)

order_lookups = _numbered(
    "order_lookups",
    _text("created_at"),
    _text("sender_id"),
    _text("number"),
    _integer("ok"),
)
Index("order_lookups_time", order_lookups.c.created_at)

topic_alerts = _numbered(
    "topic_alerts",
    _text("topic_key"),
    _text("topic"),
    _text("started_at"),  # the first hot hour
    _text("last_hour"),  # the latest hour counted as hot
    _integer("count"),  # questions and work orders in the hottest hour
    Column("baseline", _REAL, nullable=False),
    _text("samples"),  # JSON list of wordings
    _text("entries"),  # JSON list of entry keys
    _text("status"),  # active, ended
    _text("created_at"),
    _text("notified_at"),
)
Index("topic_alerts_topic", topic_alerts.c.topic_key, topic_alerts.c.status)

feedback = _numbered(
    "feedback",
    _text("created_at"),
    _text("channel"),
    _text("sender_id"),
    _text("entry_key"),
    _integer("kb_version"),
    _integer("useful"),
    _text("comment"),
)
# The dashboard and the curation queue read feedback by date, an entry's page by entry (revision 0002).
Index("feedback_time", feedback.c.created_at)
Index("feedback_entry", feedback.c.entry_key)

answer_log = _numbered(
    "answer_log",
    _text("created_at"),
    _text("channel"),
    _text("sender_id"),
    _text("query"),
    _text("decision"),
    _text("entry_key"),
    Column("score", _REAL, nullable=True),
    _integer("kb_version"),
    _text("thresholds"),
    _text("candidates"),
)
Index("answer_log_time", answer_log.c.created_at)


SEED_ROWS: Final[dict[str, tuple[dict[str, str], ...]]] = {
    "meta": ({"name": "kb_version", "value": "0"}, {"name": "schema_version", "value": "1"}),
}
"""Rows every new database starts with (the migrations' first revision writes the same)."""


def numbered(table: Table) -> bool:
    """True when the database numbers ``table``'s ``id`` (a sequence or SQLite's AUTOINCREMENT counter).

    Example:
        >>> numbered(entries), numbered(meta)
        (True, False)
    """
    return [c.name for c in table.primary_key.columns] == ["id"]
