"""Indexes for the dashboard's reads by date, and NOT NULL on the text keys of SQLite tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

- ``feedback_time`` and ``work_orders_time``: the admin dashboard (staff/reports.py) and the
  curation queue read feedback and work orders by ``created_at`` over a window of days, which
  scanned both tables; ``answer_log`` and ``operator_reports`` had such an index already.
- ``feedback_entry``: an entry's feedback (staff/interactions.py ``feedback(entry_key=...)``).
- ``meta.name``, ``dictionaries.name`` and ``curation_done.fingerprint``: SQLite, unlike
  PostgreSQL, lets a ``TEXT PRIMARY KEY`` hold NULL (a legacy of its own); SQLite tables are
  copied with NOT NULL (batch mode). These three tables are small. PostgreSQL has it already.

No stored value changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = {
    "feedback_time": ("feedback", ["created_at"]),
    "feedback_entry": ("feedback", ["entry_key"]),
    "work_orders_time": ("work_orders", ["created_at"]),
}
TEXT_KEYS = {"meta": "name", "dictionaries": "name", "curation_done": "fingerprint"}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)
    if op.get_bind().dialect.name == "sqlite":
        for table, column in TEXT_KEYS.items():
            with op.batch_alter_table(table) as batch:
                batch.alter_column(column, existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, column in TEXT_KEYS.items():
            with op.batch_alter_table(table) as batch:
                batch.alter_column(column, existing_type=sa.Text(), nullable=True)
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
