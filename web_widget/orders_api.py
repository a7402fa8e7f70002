"""The inbound API of the city's work-order system: read an order, report its progress and reply.

The city's system is a machine, not a staff member: it authenticates with a bearer token
(``order_api_token``; compared in constant time) instead of a session, so the POST is exempt from
the session's CSRF check (no cookie, nothing a browser could be tricked into sending). Every change
goes through :meth:`WorkOrderBook.update`, which checks the transition and writes the change and its
event in one transaction; a refused request writes nothing.

A re-sent change (the city's system retrying a request whose answer it lost) is recognised: the
same target state with the same department / reply / visit result as the order already has is
answered 200 with ``"unchanged": true`` and adds no event.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from knowledge_base.errors import EntryNotFound, InvalidEntry
from knowledge_base.orders.book import MAX_REPLY, MAX_SHORT, OrderEvent, WorkOrder, WorkOrderBook, clean_text
from knowledge_base.orders.states import STATE_NAMES, VISIT_NAMES, TransitionError, check_transition
from knowledge_base.settings import shared_secret
from web_widget.security import client_address
from web_widget.services import services

orders_api = Blueprint("orders_api", __name__)

MAX_BODY_BYTES = 64 * 1024
TEXT_FIELDS = ("status", "department", "reply", "note", "visit_result", "external_id")
SLOW_DOWN = "请求过于频繁，请稍后再试"


def _refuse(status: int, error: str, **extra: str) -> ResponseReturnValue:
    return jsonify(error=error, **extra), status


@orders_api.before_request
def authenticate() -> ResponseReturnValue | None:
    """Bearer token first, then the rate limit: a caller without the token learns nothing, not even what exists."""
    sent = request.headers.get("Authorization", "")
    scheme, _, token = sent.partition(" ")
    expected = shared_secret(current_app.config["HOTLINE_SETTINGS"], "order_api_token")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(401, "缺少访问令牌：请在 Authorization 头中发送 Bearer <order_api_token>")
    if not hmac.compare_digest(token.strip().encode("utf-8"), expected.encode("utf-8")):
        return _refuse(401, "访问令牌不正确")
    if not current_app.config["HOTLINE_LIMITER"].allow(f"orders-api:{client_address()}"):
        return _refuse(429, SLOW_DOWN)
    return None


@orders_api.get("/api/work-orders/<number>")
def show(number: str) -> ResponseReturnValue:
    book = _book()
    try:
        order = book.get(number)
    except EntryNotFound:
        return _refuse(404, "没有这个工单")
    return jsonify(_order_json(order, book.events(order.number)))


@orders_api.post("/api/work-orders/<number>/status")
def set_status(number: str) -> ResponseReturnValue:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _refuse(413, f"请求内容太大（上限 {MAX_BODY_BYTES // 1024} KB）")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _refuse(400, "请求内容必须是 JSON 对象")
    for name in TEXT_FIELDS:
        if name in body and not isinstance(body[name], str):
            return _refuse(400, f"「{name}」必须是字符串", field=name)
    if "general" in body and not isinstance(body["general"], bool):
        return _refuse(400, "「general」必须是 true 或 false", field="general")
    fields: dict[str, Any] = {name: body.get(name, "").strip() for name in TEXT_FIELDS}
    if len(fields["reply"]) > MAX_REPLY:
        return _refuse(400, f"「办理结果」最多 {MAX_REPLY} 个字，现在有 {len(fields['reply'])} 个字", field="reply")
    status = _state_code(fields.pop("status"))
    if status is None:
        allowed = "、".join(f"{code}（{name}）" for code, name in STATE_NAMES.items() if code != "received")
        return _refuse(400, f"「status」只能是：{allowed}", field="status")
    book = _book()
    try:
        order = book.get(number)
    except EntryNotFound:
        return _refuse(404, "没有这个工单")
    general = bool(body.get("general", False))
    events = book.events(order.number)
    if _same_change(order, status, fields, general, events[-1] if events else None):
        return jsonify(_order_json(order, events) | {"unchanged": True})
    try:
        _precheck(book, order, status, fields)
        order = book.update(order.number, status, actor="api", general=general, **fields)
    except InvalidEntry as exc:
        code = 422 if exc.field in ("department", "visit_result") else 400
        return _refuse(code, exc.message, field=exc.field)
    except TransitionError as exc:
        return _refuse(409, str(exc))
    return jsonify(_order_json(order, book.events(order.number)) | {"unchanged": False})


def _book() -> WorkOrderBook:
    return services().interactions.orders


def _precheck(book: WorkOrderBook, order: WorkOrder, status: str, fields: dict[str, str]) -> None:
    """Refuse before anything is written: the book sets ``external_id`` ahead of the change it checks."""
    check_transition(order.status, status)
    if status == "dispatched":
        book.known_department(fields["department"])
    elif fields["department"]:
        raise InvalidEntry("department", "只有派单（已派单）时才能指定承办部门")
    if status == "done":
        clean_text(fields["reply"], limit=MAX_REPLY, field="reply", label="办理结果", required=True)
    if status == "visited" and not any(fields["visit_result"] in pair for pair in VISIT_NAMES.items()):
        raise InvalidEntry("visit_result", f"回访结果只能是：{'、'.join(VISIT_NAMES.values())}")
    required = status == "in_progress" and order.status == "done"
    clean_text(fields["note"], limit=MAX_SHORT, field="note", label="备注", required=required)
    clean_text(fields["external_id"], limit=100, field="external_id", label="外部编号")


def _state_code(value: str) -> str | None:
    code = next((c for c, n in STATE_NAMES.items() if value in (c, n)), None)
    return None if code == "received" else code


def _same_change(order: WorkOrder, status: str, fields: dict[str, str], general: bool, last: OrderEvent | None) -> bool:
    """The order already is where this request would take it, with the same details: a re-send."""
    if order.status != status or (fields["external_id"] and fields["external_id"] != order.external_id):
        return False
    if status == "dispatched":
        return fields["department"] == order.department
    if status == "done":
        return fields["reply"] == order.reply and general == order.general_reply
    if status == "visited":
        code = next((c for c, n in VISIT_NAMES.items() if fields["visit_result"] in (c, n)), None)
        return code == order.visit_result
    # 办理中 again is a progress report: a new note is recorded, the same note as the last event is a re-send.
    return last is not None and last.to_status == status and last.detail.get("note", "") == fields["note"]


def _order_json(order: WorkOrder, events: list[OrderEvent]) -> dict[str, Any]:
    return {
        "number": order.number,
        "status": order.status,
        "state_name": order.state_name,
        "kind": order.kind,
        "department": order.department,
        "reply": order.reply,
        "visit_result": order.visit_result,
        "external_id": order.external_id,
        "due_at": order.due_at.isoformat() if order.due_at else "",
        "updated_at": order.updated_at.isoformat() if order.updated_at else "",
        "events": [
            {
                "at": e.created_at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "from": e.from_status,
                "to": e.to_status,
                "detail": e.detail,
            }
            for e in events
        ],
    }
