"""The schema of release 2c742a7, the last one without schema revisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Every table and index is created only where missing, so this revision also adopts a database
that release made (or an older one, which lacked some of the tables): its tables and rows stay.
Types are those the release's SQLite-style DDL had on each dialect (on PostgreSQL through its
``postgres_ddl``): INTEGER is BIGINT there, REAL is DOUBLE PRECISION, an ``id`` key is BIGSERIAL;
on SQLite an ``id`` key is a rowid alias with AUTOINCREMENT.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here rather than imported from schema.py, which moves on with later revisions.
INTEGER: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", INTEGER, primary_key=True)


def _int(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, INTEGER, nullable=nullable)


def _text(name: str, nullable: bool = False, unique: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable, unique=unique)


def _table(name: str, *columns: sa.Column[Any], numbered: bool = True) -> None:
    first = [_id()] if numbered else []
    op.create_table(name, *first, *columns, if_not_exists=True, sqlite_autoincrement=numbered)


def _index(name: str, table: str, *columns: str) -> None:
    op.create_index(name, table, list(columns), if_not_exists=True)


def upgrade() -> None:
    # knowledge_base/store.py
    _table("meta", sa.Column("name", sa.Text(), primary_key=True), _text("value"), numbered=False)
    _table(
        "entries",
        _text("key", unique=True),
        _text("status"),
        _text("content"),
        _int("version"),
        _text("updated_by"),
        _text("updated_at"),
        _int("kb_version"),
    )
    _index("entries_kb_version", "entries", "kb_version")
    _table(
        "revisions",
        _int("entry_id"),
        _int("kb_version"),
        _text("author"),
        _text("created_at"),
        _text("action"),
        _text("before", nullable=True),
        _text("after", nullable=True),
    )
    _index("revisions_entry", "revisions", "entry_id", "id")
    _index("revisions_kb_version", "revisions", "kb_version")
    op.execute(
        "INSERT INTO meta (name, value) VALUES ('kb_version', '0'), ('schema_version', '1') "
        "ON CONFLICT (name) DO NOTHING"
    )
    # knowledge_base/dictionaries.py
    _table(
        "dictionaries",
        sa.Column("name", sa.Text(), primary_key=True),
        _text("content"),
        _int("version"),
        _text("updated_by"),
        _text("updated_at"),
        numbered=False,
    )
    # knowledge_base/accounts.py
    _table(
        "users",
        _text("username", unique=True),
        _text("display_name"),
        _text("role"),
        _text("password_hash"),
        _int("disabled"),
        _int("failed_logins"),
        _text("locked_until", nullable=True),
        _text("created_at"),
    )
    _table("audit_log", *(_text(n) for n in ("created_at", "actor", "action", "target", "detail", "ip")))
    _index("audit_log_time", "audit_log", "created_at")
    # knowledge_base/workflow.py
    _table(
        "drafts",
        _int("entry_id", nullable=True),
        _int("base_version"),
        _text("content"),
        _text("state"),
        _int("version"),
        *(_text(n) for n in ("author", "reviewer", "note", "created_at", "updated_at")),
    )
    _index("drafts_entry", "drafts", "entry_id")
    # knowledge_base/operator_log.py
    _table(
        "operator_reports",
        *(_text(n) for n in ("created_at", "operator", "query", "entry_key", "outcome", "reason")),
        _int("kb_version"),
    )
    _index("operator_reports_time", "operator_reports", "created_at")
    # knowledge_base/curation.py
    _table(
        "curation_done",
        sa.Column("fingerprint", sa.Text(), primary_key=True),
        *(_text(n) for n in ("action", "actor", "created_at")),
        numbered=False,
    )
    # knowledge_base/interactions.py
    _table(
        "work_orders",
        _text("number", nullable=True, unique=True),
        *(
            _text(n)
            for n in (
                "created_at", "channel", "sender_id", "region", "name", "phone",
                "description", "transcript", "entries", "status",
            )
        ),
    )  # fmt: skip
    _table(
        "feedback",
        *(_text(n) for n in ("created_at", "channel", "sender_id", "entry_key")),
        _int("kb_version"),
        _int("useful"),
        _text("comment"),
    )
    _table(
        "answer_log",
        *(_text(n) for n in ("created_at", "channel", "sender_id", "query", "decision", "entry_key")),
        sa.Column("score", REAL, nullable=True),
        _int("kb_version"),
        _text("thresholds"),
        _text("candidates"),
    )
    _index("answer_log_time", "answer_log", "created_at")


def downgrade() -> None:
    for table in (
        "answer_log", "feedback", "work_orders", "curation_done", "operator_reports", "drafts",
        "audit_log", "users", "dictionaries", "revisions", "entries", "meta",
    ):  # fmt: skip
        op.drop_table(table)
