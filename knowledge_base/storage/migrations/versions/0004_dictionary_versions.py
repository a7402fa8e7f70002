"""Every saved version of a staff-edited dictionary, so a bad change can be undone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

- ``dictionary_versions``: one row per save of a dictionary (search/dictionaries.py): its name,
  version number, whole content, author and time. ``dictionaries`` keeps the version in effect;
  the admin lists these rows as the table's history and restores one as a new version.
  ``dictionary_versions_name`` (unique on name and version) serves the history and guards against
  two rows of one version.
- A table edited before this revision gets its current content as its first recorded version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

INTEGER: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dictionary_versions",
        sa.Column("id", INTEGER, primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", INTEGER, nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("dictionary_versions_name", "dictionary_versions", ["name", "version"], unique=True)
    op.execute(
        "INSERT INTO dictionary_versions (name, version, content, author, created_at) "
        "SELECT name, version, content, updated_by, updated_at FROM dictionaries"
    )


def downgrade() -> None:
    op.drop_index("dictionary_versions_name", table_name="dictionary_versions")
    op.drop_table("dictionary_versions")
