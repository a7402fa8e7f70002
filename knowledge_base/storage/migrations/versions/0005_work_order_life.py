"""A work order's life: request type, states, departments, delivery to the city's system, hot topics.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

- ``work_orders`` gains the request type (``kind``: consult, help, complaint, report, suggestion),
  where and when, the suggested and the assigned department with the suggestion's reason, the due
  date, the department's reply (and whether it answers a general question: ``general_reply``, for the
  curation queue), the closing time, the return visit's result and the id the city's
  system gave it. ``status`` takes the states of knowledge_base/orders/states.py: the release's
  ``open`` becomes ``received`` (待受理); existing orders are consultations due two days after
  creation. ``work_orders_status`` serves the dispatcher page and the dashboard.
- ``work_order_events``: who changed what and when, one row per change (the order's history).
- ``departments``: the responsibility list (职责清单) that new orders are matched against.
- ``outbox``: deliveries to the city's work-order system, each with its idempotency key, attempts
  and next attempt; ``dead`` ones wait for staff to retry.
- ``order_lookups``: citizens' work-order status queries, to limit wrong attempts.
- ``topic_alerts``: hot-topic alerts (舆情预警).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

INTEGER: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

_ORDER_COLUMNS = (
    ("kind", "consult"),
    ("address", ""),
    ("happened", ""),
    ("department", ""),
    ("suggested_department", ""),
    ("suggestion_reason", ""),
    ("due_at", ""),
    ("updated_at", ""),
    ("reply", ""),
    ("closed_at", ""),
    ("visit_result", ""),
    ("external_id", ""),
)


def _table(name: str, *columns: sa.Column[Any]) -> None:
    op.create_table(name, sa.Column("id", INTEGER, primary_key=True), *columns, sqlite_autoincrement=True)


def _text(name: str, *, unique: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=False, unique=unique)


def upgrade() -> None:
    bind = op.get_bind()
    for name, default in _ORDER_COLUMNS:
        op.add_column("work_orders", sa.Column(name, sa.Text(), nullable=False, server_default=default))
    op.add_column("work_orders", sa.Column("general_reply", INTEGER, nullable=False, server_default="0"))
    rows = bind.execute(sa.text("SELECT id, created_at FROM work_orders")).all()
    for order_id, created_at in rows:
        due = (datetime.fromisoformat(created_at) + timedelta(days=2)).isoformat(timespec="seconds")
        bind.execute(
            sa.text("UPDATE work_orders SET due_at=:due, updated_at=:created WHERE id=:id"),
            {"due": due, "created": created_at, "id": order_id},
        )
    bind.execute(sa.text("UPDATE work_orders SET status='received' WHERE status='open'"))
    op.create_index("work_orders_status", "work_orders", ["status", "department"])

    _table(
        "work_order_events",
        sa.Column("order_id", INTEGER, nullable=False),
        _text("created_at"),
        _text("actor"),
        _text("action"),
        _text("from_status"),
        _text("to_status"),
        _text("detail"),
    )
    op.create_index("work_order_events_order", "work_order_events", ["order_id", "id"])
    bind.execute(
        sa.text(
            "INSERT INTO work_order_events (order_id, created_at, actor, action, from_status, to_status, detail) "
            "SELECT id, created_at, 'citizen', 'created', '', 'received', '{}' FROM work_orders ORDER BY id"
        )
    )
    _table(
        "departments",
        _text("name", unique=True),
        _text("duties"),
        _text("keywords"),
        _text("region"),
        sa.Column("active", INTEGER, nullable=False),
        _text("updated_at"),
        _text("updated_by"),
    )
    _table(
        "outbox",
        sa.Column("order_id", INTEGER, nullable=False),
        _text("kind"),
        _text("idempotency_key", unique=True),
        _text("body"),
        _text("status"),
        sa.Column("attempts", INTEGER, nullable=False),
        _text("next_attempt_at"),
        _text("last_error"),
        _text("created_at"),
        _text("delivered_at"),
        _text("lease_until"),
    )
    op.create_index("outbox_status", "outbox", ["status", "id"])
    _table(
        "order_lookups",
        _text("created_at"),
        _text("sender_id"),
        _text("number"),
        sa.Column("ok", INTEGER, nullable=False),
    )
    op.create_index("order_lookups_time", "order_lookups", ["created_at"])
    _table(
        "topic_alerts",
        _text("topic_key"),
        _text("topic"),
        _text("started_at"),
        _text("last_hour"),
        sa.Column("count", INTEGER, nullable=False),
        sa.Column("baseline", REAL, nullable=False),
        _text("samples"),
        _text("entries"),
        _text("status"),
        _text("created_at"),
        _text("notified_at"),
    )
    op.create_index("topic_alerts_topic", "topic_alerts", ["topic_key", "status"])


def downgrade() -> None:
    for index, table in (
        ("topic_alerts_topic", "topic_alerts"),
        ("order_lookups_time", "order_lookups"),
        ("outbox_status", "outbox"),
        ("work_order_events_order", "work_order_events"),
    ):
        op.drop_index(index, table_name=table)
        op.drop_table(table)
    op.drop_table("departments")
    op.drop_index("work_orders_status", table_name="work_orders")
    op.execute("UPDATE work_orders SET status='open' WHERE status<>'visited' AND status<>'done'")
    op.execute("UPDATE work_orders SET status='closed' WHERE status IN ('done', 'visited')")
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.batch_alter_table("work_orders", table_kwargs={"sqlite_autoincrement": True}) as batch:
            for name in [*dict(_ORDER_COLUMNS), "general_reply"]:
                batch.drop_column(name)
    else:
        for name in [*dict(_ORDER_COLUMNS), "general_reply"]:
            op.drop_column("work_orders", name)
