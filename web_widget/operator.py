"""The operator console: what a hotline operator uses on a live call.

The operator types the caller's question and sees the knowledge base's best
entries as they type, copies an answer or reads its spoken version aloud,
reports whether it helped (:mod:`knowledge_base.staff.operator_log`), and opens a
work order (工单) when the knowledge base cannot settle the call.

Every route needs a signed-in staff member whose role includes ``operator``.
Phone and ID numbers are masked everywhere; only the work order's own page shows them
in full, and only to roles from ``pii_min_role`` up, each such view audited with the
address. That page is found by the work order's random token, not by its number.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as SearchTimeout
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue

from knowledge_base.errors import EntryNotFound, InvalidEntry
from knowledge_base.orders.book import WorkOrder
from knowledge_base.orders.states import KIND_NAMES
from knowledge_base.plain.privacy import mask
from knowledge_base.plain.speech import sentences, speakable, spoken_answer
from knowledge_base.records import Entry, Hit
from knowledge_base.staff.operator_log import MAX_QUERY, OperatorLog
from web_widget.auth import current_user, login_required
from web_widget.security import client_address
from web_widget.services import services

log = logging.getLogger("hotline.web")

operator = Blueprint("operator", __name__, url_prefix="/operator")

TOP_K = 5
OPEN_ORDERS_SHOWN = 50
MAX_ORDER_ENTRIES = 20
MAX_FIELD = {"name": 50, "phone": 40, "region": 40, "address": 200, "happened": 200}
# Offered in the region box; any province, city or district the knowledge base knows is accepted too.
GUANGDONG_CITIES = (
    "广州市", "深圳市", "珠海市", "汕头市", "佛山市", "韶关市", "河源市", "梅州市", "惠州市", "汕尾市", "东莞市",
    "中山市", "江门市", "阳江市", "湛江市", "茂名市", "肇庆市", "清远市", "潮州市", "揭阳市", "云浮市",
)  # fmt: skip
FIELD_NAMES = {
    "question": "来电问题",
    "description": "问题描述",
    "name": "姓名",
    "phone": "联系电话",
    "region": "地区",
    "address": "地点",
    "happened": "时间",
    "kind": "诉求类型",
}
# What to tell the operator when the store refuses a field (its own messages are for developers).
REFUSED = {
    "description": "请填写问题描述（最多2000字）",
    "phone": "联系电话格式不对：手机号11位，座机请带区号",
    "query": "查询的问题为空或超过1000字",
    "outcome": "未知的结果类型",
    "entry_key": "条目编号不正确",
    "reason": "请填写原因（最多500字）",
    "kb_version": "知识库版本号不正确",
}
DECISION_NAMES = {
    "answer": "建议直接答复第1条",
    "clarify": "有几条相近，请与来电人确认问的是哪一条",
    "no_answer": "知识库中没有把握的答案，可新建工单",
}


def _username() -> str:
    user = current_user()
    assert user is not None  # login_required let the request through
    return str(user.username)


def _operator_log() -> OperatorLog:
    # One per app: creating it checks the table, which need not happen on every report.
    found: OperatorLog | None = current_app.extensions.get("hotline_operator_log")
    if found is None:
        found = current_app.extensions["hotline_operator_log"] = OperatorLog(services().db)
    return found


def _json_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def guide_json(entry: Entry) -> list[dict[str, Any]]:
    """The entry's service guide as the console shows it: the aspects with text, in guide order.

    Each carries its read-aloud sentences, which begin with the aspect's name so the caller
    hears what follows ("申请材料：身份证……").
    """
    return [
        {
            "name": aspect.name,
            "label": aspect.label,
            "text": text,
            "spoken": sentences(speakable(f"{aspect.label}：{text}")),
        }
        for aspect, text in entry.guide.items()
    ]


def hit_json(hit: Hit) -> dict[str, Any]:
    """One search hit as the console shows it: the entry, its scores, its read-aloud version and its guide."""
    entry = hit.entry
    source = {
        "department": entry.department,
        "policy_title": entry.policy.title,
        "policy_number": entry.policy.number,
        "effective_date": entry.effective_date.isoformat() if entry.effective_date else "",
    }
    return {
        "key": entry.key,
        "question": entry.question,
        "matched_phrasing": hit.matched_phrasing,
        "score": round(hit.score, 3),
        "answer": entry.answer,
        "spoken": spoken_answer(entry.answer, source),
        "department": entry.department,
        "category": entry.category,
        "policy": {"title": entry.policy.title, "number": entry.policy.number, "url": entry.policy.url},
        "effective_date": source["effective_date"] or None,
        "expiry_date": entry.expiry_date.isoformat() if entry.expiry_date else None,
        "regions": [str(r) for r in entry.regions],
        "guide": guide_json(entry),
    }


# -- pages ---------------------------------------------------------------------


@operator.get("", strict_slashes=False)
@login_required("operator")
def console() -> str:
    """The console page; everything on it is filled in by static/operator.js."""
    # The page cuts longer questions itself: a report stores at most MAX_QUERY characters of the question.
    longest = min(services().settings.max_query_chars, MAX_QUERY)
    return render_template("operator/console.html", cities=GUANGDONG_CITIES, max_query=longest, kinds=KIND_NAMES)


def masked(order: WorkOrder) -> WorkOrder:
    """The work order with the middle of every phone and ID-card number starred (contact, description, transcript)."""
    return dataclasses.replace(
        order,
        phone=mask(order.phone),
        name=mask(order.name),
        description=mask(order.description),
        transcript=[{**turn, "text": mask(str(turn.get("text", "")))} for turn in order.transcript],
    )


def _order_url(order: WorkOrder) -> str:
    return url_for("operator.work_order_page", token=order.token)


@operator.get("/work_orders/<token>")
@login_required("operator")
def work_order_page(token: str) -> str:
    """One work order; full phone and ID numbers only for ``pii_min_role`` and up (every view audited, with the IP)."""
    try:
        order = services().interactions.work_order_by_token(token[:64])
    except EntryNotFound:
        abort(404, description="没有这个工单（工单页面的链接不完整或已失效），请从话务台的工单列表打开")
    user = current_user()
    assert user is not None  # login_required let the request through
    unmasked = services().accounts.can(user, services().settings.pii_min_role)
    services().accounts.audit(
        user.username,
        "work_order.view_unmasked" if unmasked else "work_order.view",
        order.number,
        {"unmasked": unmasked},
        ip=client_address(),
    )
    return render_template("operator/work_order.html", order=order if unmasked else masked(order), unmasked=unmasked)


# -- APIs ----------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _searches() -> ThreadPoolExecutor:
    """Threads that run the console's searches, so a request gives up after ``search_timeout``.

    A search that overruns keeps its thread until it ends; the operator is answered at once.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="operator-search")
        return _pool


@operator.get("/api/search")
@login_required("operator")
def search() -> ResponseReturnValue:
    """``?q=...&region=...``: the decision and the top entries for the caller's question."""
    if not current_app.config["HOTLINE_OPERATOR_LIMITER"].allow(f"search:{_username()}"):
        return jsonify(error="查询过于频繁，请稍等片刻再试（每分钟次数有上限）"), 429
    query = request.args.get("q", "")
    region = request.args.get("region", "").strip()[: MAX_FIELD["region"]]
    if not query.strip():
        return jsonify(error="请输入来电人的问题再查询"), 400
    kb, seconds = services().fresh_kb(), services().settings.search_timeout
    try:
        result = _searches().submit(kb.search, query, region=region or None, top_k=TOP_K).result(seconds)
    except SearchTimeout:
        log.error("operator search took longer than search_timeout (%g s): %r", seconds, query[:40])
        return jsonify(error="知识库查询超时，请稍后重试或按工单流程处理"), 503
    except ValueError as exc:  # an unknown region (the query itself was checked above)
        return jsonify(error=f"无法按此条件查询：{exc}"), 400
    except Exception:
        log.exception("operator search failed")
        return jsonify(error="知识库暂时无法查询，请稍后重试或按工单流程处理"), 503
    return jsonify(
        query=result.query,
        decision=result.decision.value,
        decision_text=DECISION_NAMES.get(result.decision.value, ""),
        reason=result.reason,
        kb_version=result.kb_version,
        truncated=result.truncated,
        max_query=services().settings.max_query_chars,
        hits=[hit_json(hit) for hit in result.hits[:TOP_K]],
    )


@operator.post("/api/report")
@login_required("operator")
def report() -> ResponseReturnValue:
    """JSON ``{query, outcome, entry_key, reason, kb_version}``: the operator's verdict on a suggestion."""
    body = _json_body()
    if body is None:
        return jsonify(error="请求体必须是 JSON 对象"), 400
    kb_version = body.get("kb_version")
    if kb_version is None:
        kb_version = services().kb.kb_version
    try:
        stored = _operator_log().record(
            _username(),
            body.get("query", ""),  # record checks every value's type
            body.get("outcome", ""),
            body.get("entry_key") or "",
            body.get("reason") or "",
            kb_version=kb_version,
        )
    except InvalidEntry as exc:
        return jsonify(error=f"未能记录：{REFUSED.get(exc.field, exc.message)}", field=exc.field, detail=str(exc)), 400
    return jsonify(id=stored.id, outcome=stored.outcome, entry_key=stored.entry_key), 201


@operator.post("/api/work_orders")
@login_required("operator")
def create_work_order() -> ResponseReturnValue:
    """JSON ``{question, description, kind, address, happened, name, phone, region, entries}``: a work order.

    The order gets the responsibility list's suggested department, as the bot's orders do; the reply says which.
    """
    body = _json_body()
    if body is None:
        return jsonify(error="请求体必须是 JSON 对象"), 400
    fields: dict[str, str] = {}
    limits = {"question": MAX_QUERY, "description": None, "kind": 20, **MAX_FIELD}
    for name, limit in limits.items():
        value = body.get(name) or ""
        if not isinstance(value, str):
            return jsonify(error=f"{FIELD_NAMES[name]}必须是文字", field=name), 400
        if limit is not None and len(value.strip()) > limit:
            too_long = f"{FIELD_NAMES[name]}最多 {limit} 个字（现有 {len(value.strip())} 个）"
            return jsonify(error=too_long, field=name), 400
        fields[name] = value.strip()
    fields["kind"] = fields["kind"] or "consult"
    entries = body.get("entries") or []
    if (
        not isinstance(entries, list)
        or len(entries) > MAX_ORDER_ENTRIES
        or not all(isinstance(k, str) and 0 < len(k) <= 64 for k in entries)
    ):
        return jsonify(error=f"entries 须为条目编号的列表（最多 {MAX_ORDER_ENTRIES} 个）", field="entries"), 400
    question = fields.pop("question")
    try:
        order = services().interactions.create_work_order(
            channel="hotline-operator",
            sender_id=_username(),
            transcript=[{"role": "caller", "text": question}] if question else [],
            entries=list(dict.fromkeys(entries)),
            **fields,
        )
    except InvalidEntry as exc:
        reason = REFUSED.get(exc.field, exc.message)
        return jsonify(error=f"未能创建工单：{reason}", field=exc.field, detail=str(exc)), 400
    services().accounts.audit(
        _username(), "work_order.create", order.number, {"channel": "hotline-operator", "kind": order.kind}
    )
    return jsonify(
        number=order.number,
        url=_order_url(order),
        kind=order.kind_name,
        suggested_department=order.suggested_department,
        suggestion_reason=order.suggestion_reason,
    ), 201


@operator.get("/api/work_orders")
@login_required("operator")
def open_work_orders() -> ResponseReturnValue:
    """The newest open work orders, phone and ID numbers masked (the full ones only on each order's page)."""
    orders = services().interactions.work_orders(status="open", limit=OPEN_ORDERS_SHOWN)
    return jsonify(
        work_orders=[
            {
                "number": o.number,
                "created_at": o.created_at.isoformat(timespec="minutes"),
                "channel": o.channel,
                "region": o.region,
                "name": mask(o.name),
                "phone": mask(o.phone),
                "description": mask(o.description),
                "entries": o.entries,
                "status": o.status,
                "url": _order_url(o),
            }
            for o in orders
        ]
    )
