"""Server-side session ends and unguessable work-order URLs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

- ``users.session_generation`` (0 for every existing account): a staff session remembers the
  generation it began in and is refused once the account's generation has moved on. Sign-out,
  a new password, a new role and disabling bump it, so a copied or stolen cookie stops working
  (staff/accounts.py, web_widget/auth.py).
- ``work_orders.token``: a random value that the work order's page URL carries instead of its
  sequential number, which anyone could count up. Existing work orders get one here; the unique
  index ``work_orders_token`` guards against a repeat. SQLite adds NOT NULL by copying the table
  (batch mode), keeping its AUTOINCREMENT counter so ids of deleted work orders are not reused.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

INTEGER: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _sqlite_sequence(bind: sa.Connection) -> int | None:
    row = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name='work_orders'")).first()
    return None if row is None else int(row[0])


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.add_column("users", sa.Column("session_generation", INTEGER, nullable=False, server_default="0"))
    op.add_column("work_orders", sa.Column("token", sa.Text(), nullable=True))
    for (order_id,) in bind.execute(sa.text("SELECT id FROM work_orders ORDER BY id")).all():
        bind.execute(
            sa.text("UPDATE work_orders SET token=:token WHERE id=:id"),
            {"token": secrets.token_urlsafe(16), "id": order_id},
        )
    if sqlite:
        counter = _sqlite_sequence(bind)
        with op.batch_alter_table("work_orders", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.alter_column("token", existing_type=sa.Text(), nullable=False)
        if counter is not None:
            bind.execute(sa.text("UPDATE sqlite_sequence SET seq=:seq WHERE name='work_orders'"), {"seq": counter})
    else:
        op.alter_column("work_orders", "token", existing_type=sa.Text(), nullable=False)
    op.create_index("work_orders_token", "work_orders", ["token"], unique=True)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("work_orders_token", table_name="work_orders")
    if sqlite:
        with op.batch_alter_table("work_orders", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.drop_column("token")
        with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.drop_column("session_generation")
    else:
        op.drop_column("work_orders", "token")
        op.drop_column("users", "session_generation")
