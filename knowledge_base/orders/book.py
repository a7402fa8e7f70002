"""The work-order book: every order, its state, its history, and every change made to it.

One class, :class:`WorkOrderBook`, is the only writer of ``work_orders`` and
``work_order_events``: the dialogue creates orders through it, the dispatcher page
and the inbound API move them through their states (:mod:`knowledge_base.orders.states`),
and a citizen's status query reads one through :meth:`WorkOrderBook.lookup`. A change
and the event that records it are written in one transaction; when the city's own
work-order system is configured, so is the order's outbox row (the transactional
outbox: an order is never created without its delivery, nor delivered without existing).

Example:
    >>> book = WorkOrderBook(":memory:")
    >>> order = book.create(channel="web", sender_id="s1", description="楼下装修噪音太大", kind="complaint",
    ...                     phone="13812345678")
    >>> order.state_name, order.kind_name
    ('待受理', '投诉')
    >>> book.lookup(order.number, "5678", sender_id="s1").order == order
    True
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from knowledge_base.errors import EntryNotFound, InvalidEntry
from knowledge_base.orders.states import (
    KIND_NAMES,
    OPEN_STATES,
    STATE_NAMES,
    VISIT_NAMES,
    TransitionError,
    check_transition,
    due_days,
    kind_code,
)
from knowledge_base.plain.privacy import normalise_phone
from knowledge_base.storage.database import Database, adopt
from knowledge_base.storage.migrate import ensure_current

MAX_DESCRIPTION = 2000
MAX_REPLY = 5000
MAX_SHORT = 200  # address, time, department, note
ORDER_NUMBER = re.compile(r"^GD\d{14}$")
WEBHOOK_EVENT = "work_order.created"

log = logging.getLogger(__name__)

Suggest = Callable[[str, str], tuple[str, str] | None]
"""``(text, region) -> (department, reason)`` or None: the responsibility list's suggestion for a new order."""


@dataclass(frozen=True)
class WorkOrder:
    """A citizen's request handed to staff: what they need, where and when, how to reach them, where it stands."""

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
    status: str = "received"
    token: str = ""
    """Random and unique: what the work order's page URL carries (the number can be guessed by counting)."""
    kind: str = "consult"
    address: str = ""
    happened: str = ""
    department: str = ""
    suggested_department: str = ""
    suggestion_reason: str = ""
    due_at: datetime | None = None
    updated_at: datetime | None = None
    reply: str = ""
    closed_at: datetime | None = None
    visit_result: str = ""
    external_id: str = ""
    general_reply: bool = False
    """The reply answers a general question (not a personal case): it waits in the curation queue."""

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.status, self.status)

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind)

    @property
    def visit_name(self) -> str:
        return VISIT_NAMES.get(self.visit_result, self.visit_result)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    def overdue(self, now: datetime | None = None) -> bool:
        """Still open past its due date."""
        return self.is_open and self.due_at is not None and (now or datetime.now()) > self.due_at


@dataclass(frozen=True)
class OrderEvent:
    """One change of one work order: who, when, what, from which state to which."""

    id: int
    created_at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    detail: dict[str, Any]

    @property
    def to_state_name(self) -> str:
        return STATE_NAMES.get(self.to_status, self.to_status)


@dataclass(frozen=True)
class Lookup:
    """The answer to a citizen's status query: ``found`` (with the order), ``not_found`` or ``limited``.

    A wrong pair of number and phone digits is ``not_found``, exactly as a number that does not exist.
    """

    outcome: Literal["found", "not_found", "limited"]
    order: WorkOrder | None = None


@dataclass(frozen=True)
class DepartmentLoad:
    """One department's row on the dashboard."""

    department: str
    open: int
    overdue: int
    closed: int


def clean_text(text: str, *, limit: int, field: str, label: str, required: bool = False) -> str:
    """``text`` without control characters and surrounding space, checked against ``limit``.

    Raises:
        InvalidEntry: empty while ``required``, longer than ``limit``, or (non-empty) with no letter or digit.
    """
    text = "".join(ch for ch in (text or "") if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if not text:
        if required:
            raise InvalidEntry(field, f"「{label}」不能为空")
        return ""
    if len(text) > limit:
        raise InvalidEntry(field, f"「{label}」最多 {limit} 个字，现在有 {len(text)} 个字")
    if not any(unicodedata.category(ch)[0] in "LN" for ch in text):
        raise InvalidEntry(field, f"「{label}」只有标点或符号，请写明内容")
    return text


class WorkOrderBook:
    """Work orders and their history in the knowledge base's database.

    Args:
        database: an open database (shared; the caller closes it), or a URL or path (owned and closed here).
        due_days: days per request type (``order_due_days``: ``"投诉=5 …"`` or a mapping of type codes to days).
        outbox: also queue every new order for delivery to the city's system (``order_webhook_url`` is set).
        suggest: suggests the department of an order created without a suggestion (from its description and
            address, and region): ``DepartmentMatcher.suggest`` of :mod:`knowledge_base.orders.departments`.
    """

    def __init__(
        self,
        database: Database | str | Path,
        *,
        due_days: str | Mapping[str, int] = "",
        outbox: bool = False,
        suggest: Suggest | None = None,
    ) -> None:
        self.db, self._owns_db = adopt(database)
        ensure_current(self.db)
        self.due_days = dict(due_days) if isinstance(due_days, Mapping) else _due_days(due_days)
        self.outbox = outbox
        self.suggest = suggest

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    # -- creating and reading ---------------------------------------------------

    def create(
        self,
        *,
        channel: str,
        sender_id: str,
        description: str,
        kind: str = "consult",
        name: str = "",
        phone: str = "",
        region: str = "",
        address: str = "",
        happened: str = "",
        transcript: list[dict[str, Any]] | None = None,
        entries: list[str] | None = None,
        suggestion: tuple[str, str] | None = None,
        actor: str = "citizen",
        now: datetime | None = None,
    ) -> WorkOrder:
        """Store a new order (待受理) with its number (GD + date + sequence), URL token, due date and first event.

        Args:
            suggestion: the department the responsibility list suggests, and why (shown to the dispatcher).
            actor: who created it: ``citizen`` (the bot) or an operator's username.

        Raises:
            InvalidEntry: an empty or oversized description, a phone that is not a phone number, an address or
                time of punctuation only, an unknown request type.
        """
        description = clean_text(
            description, limit=MAX_DESCRIPTION, field="description", label="问题描述", required=True
        )
        address = clean_text(address, limit=MAX_SHORT, field="address", label="地点")
        happened = clean_text(happened, limit=MAX_SHORT, field="happened", label="时间")
        if phone and normalise_phone(phone) is None:
            raise InvalidEntry("phone", f"「联系电话」{phone[:30]!r} 不是手机号或带区号的固定电话")
        try:
            kind = kind_code(kind)
        except ValueError as exc:
            raise InvalidEntry("kind", str(exc)) from None
        now = (now or datetime.now()).replace(microsecond=0)
        if suggestion is None and self.suggest is not None:
            suggestion = self._suggestion(" ".join(p for p in (description, address) if p), region)
        department, reason = suggestion or ("", "")
        due = now + timedelta(days=self.due_days.get(kind, 5))
        # The number derives from the id, so the row is written twice; one transaction hides the gap.
        with self.db.transaction():
            order_id = self.db.insert(
                "INSERT INTO work_orders (created_at, channel, sender_id, region, name, phone, description, "
                "transcript, entries, status, token, kind, address, happened, suggested_department, "
                "suggestion_reason, due_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now.isoformat(),
                    channel[:20],
                    sender_id[:200],
                    region[:100],
                    clean_text(name, limit=50, field="name", label="姓名") if name else "",
                    normalise_phone(phone) or "" if phone else "",
                    description,
                    json.dumps(transcript or [], ensure_ascii=False),
                    json.dumps(entries or [], ensure_ascii=False),
                    secrets.token_urlsafe(16),  # 128 random bits
                    kind,
                    address,
                    happened,
                    department[:MAX_SHORT],
                    reason[:500],
                    due.isoformat(),
                    now.isoformat(),
                ),
            )
            number = f"GD{now:%Y%m%d}{order_id:06d}"
            self.db.execute("UPDATE work_orders SET number=? WHERE id=?", (number, order_id))
            detail = {"suggested_department": department} if department else {}
            self._event(order_id, actor, "created", "", "received", detail, now)
            order = self.get(number)
            if self.outbox:
                self.db.insert(
                    "INSERT INTO outbox (order_id, kind, idempotency_key, body, status, attempts, next_attempt_at, "
                    "last_error, created_at, delivered_at, lease_until) VALUES (?, ?, ?, ?, 'pending', 0, ?, '', ?, "
                    "'', '')",
                    (
                        order_id,
                        WEBHOOK_EVENT,
                        f"{number}:{WEBHOOK_EVENT}",
                        json.dumps(delivery_body(order), ensure_ascii=False, sort_keys=True),
                        now.isoformat(),
                        now.isoformat(),
                    ),
                )
        return order

    def get(self, number: str) -> WorkOrder:
        """The order with this number.

        Raises:
            EntryNotFound: no such order.
        """
        row = self.db.query_one("SELECT * FROM work_orders WHERE number=?", (normalise_number(number),))
        if row is None:
            raise EntryNotFound(f"没有工单 {str(number)[:30]}")
        return _work_order(row)

    def by_token(self, token: str) -> WorkOrder:
        """The order whose URL token this is (its page is found by the token, never by the number).

        Raises:
            EntryNotFound: no order has this token.
        """
        row = self.db.query_one("SELECT * FROM work_orders WHERE token=?", (token,))
        if row is None:
            raise EntryNotFound("no work order with this token")
        return _work_order(row)

    def orders(
        self,
        *,
        states: tuple[str, ...] | None = None,
        department: str | None = None,
        kind: str | None = None,
        overdue: bool = False,
        text: str = "",
        limit: int = 100,
        offset: int = 0,
        now: datetime | None = None,
    ) -> list[WorkOrder]:
        """Orders, newest first, filtered by state, department (``""``: not yet assigned), type, overdue, text."""
        where, args = [], []
        if states is not None:
            where.append(f"status IN ({', '.join('?' * len(states))})")
            args += list(states)
        if department is not None:
            where.append("department=?")
            args.append(department)
        if kind:
            where.append("kind=?")
            args.append(kind)
        if overdue:
            where.append(f"status IN ({', '.join('?' * len(OPEN_STATES))}) AND due_at<?")
            args += [*OPEN_STATES, (now or datetime.now()).isoformat(timespec="seconds")]
        if text:
            where.append("(number=? OR description LIKE ? OR address LIKE ?)")
            like = "%" + text.replace("%", "").replace("_", "")[:50] + "%"
            args += [text.strip().upper(), like, like]
        sql = "SELECT * FROM work_orders" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset))
        return [_work_order(r) for r in rows]

    def events(self, number: str) -> list[OrderEvent]:
        """The order's history, oldest first."""
        order = self.get(number)
        rows = self.db.query("SELECT * FROM work_order_events WHERE order_id=? ORDER BY id", (order.id,))
        return [
            OrderEvent(
                id=r["id"],
                created_at=datetime.fromisoformat(r["created_at"]),
                actor=r["actor"],
                action=r["action"],
                from_status=r["from_status"],
                to_status=r["to_status"],
                detail=json.loads(r["detail"] or "{}"),
            )
            for r in rows
        ]

    # -- the order's life ---------------------------------------------------------

    def assign(self, number: str, department: str, *, actor: str, note: str = "") -> WorkOrder:
        """派单 (or 改派): give the order to ``department``, which must be on the responsibility list.

        Raises:
            EntryNotFound: no such order.
            InvalidEntry: the department is not on the responsibility list.
            TransitionError: the order is closed.
        """
        department = self.known_department(department)
        note = clean_text(note, limit=MAX_SHORT, field="note", label="备注")
        return self._move(
            number, "dispatched", actor, "assigned", {"department": department, "note": note}, department=department
        )

    def start(self, number: str, *, actor: str, note: str = "") -> WorkOrder:
        """办理中: the department has taken it on (or reports progress)."""
        note = clean_text(note, limit=MAX_SHORT, field="note", label="进展说明")
        return self._move(number, "in_progress", actor, "started", {"note": note} if note else {})

    def finish(self, number: str, reply: str, *, actor: str, general: bool = False) -> WorkOrder:
        """已办结 with the department's reply to the citizen (required).

        ``general``: the reply answers a question others ask too, so the order goes to the curation queue.

        Raises:
            InvalidEntry: no reply, or a reply longer than 5,000 characters.
        """
        reply = clean_text(reply, limit=MAX_REPLY, field="reply", label="办理结果", required=True)
        return self._move(
            number, "done", actor, "closed", {"reply": reply, "general": general}, reply=reply, closing=general
        )

    def reopen(self, number: str, *, actor: str, note: str) -> WorkOrder:
        """Back to 办理中 from 已办结 (the reply did not hold); the reason is required."""
        note = clean_text(note, limit=MAX_SHORT, field="note", label="重新办理原因", required=True)
        return self._move(number, "in_progress", actor, "reopened", {"note": note})

    def visit(self, number: str, result: str, *, actor: str, note: str = "") -> WorkOrder:
        """已回访: the citizen was called back; ``result`` is satisfied, unsatisfied or unreachable (or 满意 …).

        Raises:
            InvalidEntry: an unknown result.
        """
        code = next((c for c, n in VISIT_NAMES.items() if result in (c, n)), None)
        if code is None:
            raise InvalidEntry("visit_result", f"回访结果只能是：{'、'.join(VISIT_NAMES.values())}")
        note = clean_text(note, limit=MAX_SHORT, field="note", label="回访记录")
        return self._move(number, "visited", actor, "visited", {"result": code, "note": note}, visit=code)

    def update(
        self,
        number: str,
        status: str,
        *,
        actor: str,
        department: str = "",
        reply: str = "",
        note: str = "",
        visit_result: str = "",
        external_id: str = "",
        general: bool = False,
    ) -> WorkOrder:
        """One change by state name, as the inbound API and the dispatcher page's form give it.

        Raises:
            EntryNotFound, InvalidEntry, TransitionError: as the single changes above.
        """
        external_id = clean_text(external_id, limit=100, field="external_id", label="外部编号")
        # One transaction around the id and the change: a refused change leaves the id unwritten too.
        with self.db.transaction():
            if external_id:
                self._set_external_id(number, external_id)
            return self._change(number, status, actor, department, reply, note, visit_result, general)

    def _change(
        self,
        number: str,
        status: str,
        actor: str,
        department: str,
        reply: str,
        note: str,
        visit_result: str,
        general: bool,
    ) -> WorkOrder:
        current = self.get(number)
        if status == "dispatched":
            return self.assign(number, department, actor=actor, note=note)
        if department:
            raise InvalidEntry("department", "只有派单（已派单）时才能指定承办部门")
        if status == "in_progress":
            if current.status == "done":
                return self.reopen(number, actor=actor, note=note)
            return self.start(number, actor=actor, note=note)
        if status == "done":
            return self.finish(number, reply, actor=actor, general=general)
        if status == "visited":
            return self.visit(number, visit_result, actor=actor, note=note)
        check_transition(current.status, status)  # raises with the allowed states
        raise TransitionError(f"不能改为“{STATE_NAMES.get(status, status)}”")

    def known_department(self, name: str) -> str:
        """``name`` if it is an active department of the responsibility list.

        Raises:
            InvalidEntry: it is not.
        """
        name = (name or "").strip()
        if not name:
            raise InvalidEntry("department", "请选择承办部门")
        if self.db.query_one("SELECT 1 AS ok FROM departments WHERE name=? AND active=1", (name,)) is None:
            raise InvalidEntry("department", f"职责清单里没有“{name[:50]}”这个部门")
        return name

    # -- citizens asking, the dashboard -------------------------------------------

    def lookup(
        self, number: str, phone_last4: str, *, sender_id: str, attempts: int = 5, now: datetime | None = None
    ) -> Lookup:
        """A citizen's status query: the order only when the number and the phone's last four digits both match.

        Wrong pairs are counted per conversation and per number; past ``attempts`` in an hour, every query of
        that conversation or number is ``limited``, right or wrong, until the hour has passed.
        """
        now = now or datetime.now()
        number = normalise_number(number)
        since = (now - timedelta(hours=1)).isoformat(timespec="seconds")
        failures = self.db.query_one(
            "SELECT COUNT(*) AS n FROM order_lookups WHERE created_at>=? AND ok=0 AND (sender_id=? OR number=?)",
            (since, sender_id[:200], number),
        )
        if failures is not None and failures["n"] >= attempts:
            return Lookup("limited")
        row = self.db.query_one("SELECT * FROM work_orders WHERE number=?", (number,))
        digits = re.sub(r"\D", "", phone_last4 or "")
        found = row is not None and len(digits) == 4 and bool(row["phone"]) and row["phone"].endswith(digits)
        self.db.execute(
            "INSERT INTO order_lookups (created_at, sender_id, number, ok) VALUES (?, ?, ?, ?)",
            (now.isoformat(timespec="seconds"), sender_id[:200], number, int(found)),
        )
        return Lookup("found", _work_order(row)) if found and row is not None else Lookup("not_found")

    def department_load(self, *, now: datetime | None = None) -> list[DepartmentLoad]:
        """Open, overdue and closed orders per department (未派单 for orders not yet assigned), busiest first."""
        stamp = (now or datetime.now()).isoformat(timespec="seconds")
        marks = ", ".join("?" * len(OPEN_STATES))
        rows = self.db.query(
            f"SELECT department, SUM(CASE WHEN status IN ({marks}) THEN 1 ELSE 0 END) AS open_n, "
            f"SUM(CASE WHEN status IN ({marks}) AND due_at<? THEN 1 ELSE 0 END) AS overdue_n, "
            f"SUM(CASE WHEN status IN ({marks}) THEN 0 ELSE 1 END) AS closed_n "
            "FROM work_orders GROUP BY department",
            (*OPEN_STATES, *OPEN_STATES, stamp, *OPEN_STATES),
        )
        loads = [
            DepartmentLoad(r["department"] or "未派单", int(r["open_n"]), int(r["overdue_n"]), int(r["closed_n"]))
            for r in rows
        ]
        return sorted(loads, key=lambda d: (-d.overdue, -d.open, d.department))

    # -- inside ----------------------------------------------------------------------

    def _suggestion(self, text: str, region: str) -> tuple[str, str] | None:
        # A suggestion helps the dispatcher; its failure (model missing, list unreadable) must never cost the order.
        assert self.suggest is not None
        try:
            return self.suggest(text, region)
        except Exception:
            log.exception("department suggestion failed; the order is created without one")
            return None

    def _move(
        self,
        number: str,
        target: str,
        actor: str,
        action: str,
        detail: dict[str, Any],
        *,
        department: str | None = None,
        reply: str | None = None,
        closing: bool | None = None,
        visit: str | None = None,
    ) -> WorkOrder:
        now = datetime.now().replace(microsecond=0)
        with self.db.transaction():
            current = self.get(number)
            check_transition(current.status, target)
            sets: list[str] = ["status=?", "updated_at=?"]
            args: list[Any] = [target, now.isoformat()]
            if department is not None:
                sets.append("department=?")
                args.append(department)
            if reply is not None:
                sets.append("reply=?")
                args.append(reply)
            if closing is not None:  # closing: stamp it, and note whether the reply goes to the curation queue
                sets += ["closed_at=?", "general_reply=?"]
                args += [now.isoformat(), int(closing)]
            elif target == "in_progress" and current.status == "done":
                sets.append("closed_at='', general_reply=0")
            if visit is not None:
                sets.append("visit_result=?")
                args.append(visit)
            # The state in the WHERE clause makes two concurrent changes of one order fail instead of both landing.
            changed = self.db.execute(
                f"UPDATE work_orders SET {', '.join(sets)} WHERE id=? AND status=?", (*args, current.id, current.status)
            )
            if changed != 1:
                raise TransitionError("工单刚被别人改过，请刷新后再试")
            self._event(current.id, actor, action, current.status, target, detail, now)
        return self.get(number)

    def _set_external_id(self, number: str, external_id: str) -> None:
        self.db.execute("UPDATE work_orders SET external_id=? WHERE number=?", (external_id, normalise_number(number)))

    def _event(
        self, order_id: int, actor: str, action: str, before: str, after: str, detail: dict[str, Any], now: datetime
    ) -> None:
        self.db.insert(
            "INSERT INTO work_order_events (order_id, created_at, actor, action, from_status, to_status, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (order_id, now.isoformat(), actor[:60], action, before, after, json.dumps(detail, ensure_ascii=False)),
        )


def normalise_number(number: str) -> str:
    """``" gd2026 1130 000001 "`` → ``"GD20261130000001"`` (spaces, dashes and case do not matter)."""
    return re.sub(r"[\s\-－—_]", "", str(number or "")).upper()[:40]


def delivery_body(order: WorkOrder) -> dict[str, Any]:
    """What the city's system receives for a new order (README "Work orders: the webhook contract")."""
    return {
        "event": WEBHOOK_EVENT,
        "idempotency_key": f"{order.number}:{WEBHOOK_EVENT}",
        "work_order": {
            "number": order.number,
            "created_at": order.created_at.isoformat(),
            "channel": order.channel,
            "kind": order.kind,
            "kind_name": order.kind_name,
            "description": order.description,
            "address": order.address,
            "happened": order.happened,
            "region": order.region,
            "name": order.name,
            "phone": order.phone,
            "suggested_department": order.suggested_department,
            "suggestion_reason": order.suggestion_reason,
            "due_at": order.due_at.isoformat() if order.due_at else "",
            "entries": order.entries,
        },
    }


def _due_days(spec: str) -> dict[str, int]:
    try:
        return due_days(spec)
    except ValueError as exc:
        raise InvalidEntry("order_due_days", str(exc)) from None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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
        kind=row["kind"],
        address=row["address"],
        happened=row["happened"],
        department=row["department"],
        suggested_department=row["suggested_department"],
        suggestion_reason=row["suggestion_reason"],
        due_at=_when(row["due_at"]),
        updated_at=_when(row["updated_at"]),
        reply=row["reply"],
        closed_at=_when(row["closed_at"]),
        visit_result=row["visit_result"],
        external_id=row["external_id"],
        general_reply=bool(row["general_reply"]),
    )
