"""The dispatcher's pages (派单): every work order, filtered; one order with the changes its state allows;
and the responsibility list (职责清单) the department suggestions come from.

An order moves only through :class:`~knowledge_base.orders.book.WorkOrderBook`, which records each change in
the order's own history; every change made here is also written to the staff audit log with the address.
A refused change (a state that does not allow it, a missing reply, an unknown department) comes back on the
page in Chinese, never as a 500. Phone and ID numbers are masked below ``pii_min_role``, as on the operator's
work-order page, with one exception: the return visit needs the caller's phone, so a closed order offers
"显示电话（回访用）", and every such look is audited.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from knowledge_base.errors import EntryNotFound, ImportRejected, InvalidEntry
from knowledge_base.orders.book import OrderEvent, WorkOrder, WorkOrderBook
from knowledge_base.orders.departments import COLUMNS, DepartmentList, describe, read_departments
from knowledge_base.orders.states import KIND_NAMES, STATE_NAMES, VISIT_NAMES, TransitionError, next_states
from knowledge_base.plain.privacy import mask
from web_widget.auth import current_user, login_required
from web_widget.operator import masked
from web_widget.security import client_address
from web_widget.services import services

dispatch = Blueprint("dispatch", __name__, url_prefix="/dispatch")

PAGE_SIZE = 30
UNASSIGNED = "__none__"
"""The department filter's value for orders not yet assigned."""
ACTION_NAMES = {
    "created": "登记",
    "assigned": "派单",
    "started": "开始办理",
    "closed": "办结",
    "reopened": "重新办理",
    "visited": "回访",
}
ACTOR_NAMES = {"citizen": "市民（智能客服登记）", "api": "外部工单系统"}
CHANNEL_NAMES = {"hotline-operator": "话务员登记", "web": "网站咨询", "hotline": "电话语音", "api": "外部系统"}
DETAIL_NAMES = {
    "department": "承办部门",
    "suggested_department": "建议部门",
    "note": "说明",
    "reply": "答复",
    "general": "可转为知识库条目",
    "result": "回访结果",
}


def _user_name() -> str:
    user = current_user()
    assert user is not None  # login_required let the request through
    return str(user.username)


def _book() -> WorkOrderBook:
    return services().interactions.orders


def _departments() -> DepartmentList:
    # One per app: creating it checks the schema, which need not happen on every page.
    found: DepartmentList | None = current_app.extensions.get("hotline_departments")
    if found is None:
        found = current_app.extensions["hotline_departments"] = DepartmentList(services().db)
    return found


def _audit(action: str, target: str, detail: dict[str, Any]) -> None:
    services().accounts.audit(_user_name(), action, target, detail, ip=client_address())


def overdue_days(order: WorkOrder, now: datetime) -> int:
    """Whole days an open order is past its due date (1 on the first day); 0 when it is not overdue."""
    if not order.overdue(now) or order.due_at is None:
        return 0
    return max(1, (now - order.due_at).days)


def describe_event(event: OrderEvent) -> str:
    """What one history row says, in Chinese: ``派单：承办部门 市生态环境局；说明 …``."""
    name = ACTION_NAMES.get(event.action, event.action)
    if event.action == "assigned" and event.from_status in ("dispatched", "in_progress"):
        name = "改派"
    if event.action == "started" and event.from_status == "in_progress":
        name = "记录进展"
    parts = []
    for key, value in event.detail.items():
        if value in ("", None, False):
            continue
        if key == "result":
            value = VISIT_NAMES.get(str(value), value)
        if value is True:
            value = "是"
        parts.append(f"{DETAIL_NAMES.get(key, key)}：{value}")
    return name + ("（" + "；".join(parts) + "）" if parts else "")


# -- the list --------------------------------------------------------------------------


@dispatch.get("", strict_slashes=False)
@login_required("dispatcher")
def orders() -> str:
    """Every order, newest first, by state, department, type, overdue and number or text; 30 a page."""
    args = request.args
    state = args.get("state", "") if args.get("state", "") in STATE_NAMES else ""
    kind = args.get("kind", "") if args.get("kind", "") in KIND_NAMES else ""
    department = args.get("department", "")[:60]
    only_overdue = args.get("overdue") == "1"
    text = args.get("q", "").strip()[:50]
    page = max(1, min(args.get("page", 1, type=int) or 1, 10_000))
    now = datetime.now()
    found = _book().orders(
        states=(state,) if state else None,
        department=("" if department == UNASSIGNED else department) if department else None,
        kind=kind or None,
        overdue=only_overdue,
        text=text,
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
        now=now,
    )
    rows = [(masked(o), overdue_days(o, now)) for o in found[:PAGE_SIZE]]
    filters = {
        "state": state,
        "kind": kind,
        "department": department,
        "overdue": "1" if only_overdue else "",
        "q": text,
    }
    return render_template(
        "dispatch/orders.html",
        rows=rows,
        filters=filters,
        page=page,
        more=len(found) > PAGE_SIZE,
        states=STATE_NAMES,
        kinds=KIND_NAMES,
        departments=_departments().names(),
        unassigned=UNASSIGNED,
        query={k: v for k, v in filters.items() if v},
    )


# -- one order ------------------------------------------------------------------------


def _order_or_404(number: str) -> WorkOrder:
    try:
        return _book().get(number[:40])
    except EntryNotFound:
        abort(404, description=f"没有工单 {number[:30]}，请从派单列表打开")


def _page(order: WorkOrder, *, error: str = "", status: int = 200, reveal: bool = False) -> ResponseReturnValue:
    user = current_user()
    assert user is not None
    unmasked = services().accounts.can(user, services().settings.pii_min_role)
    if unmasked and not reveal:
        _audit("work_order.view_unmasked", order.number, {"unmasked": True})
    allowed = next_states(order.status)
    names = _departments().names()
    current = order.department or order.suggested_department
    html = render_template(
        "dispatch/order.html",
        order=order if unmasked else masked(order),
        phone=order.phone if (unmasked or reveal) else mask(order.phone),
        unmasked=unmasked,
        revealed=reveal,
        can_reveal=order.status == "done" and not unmasked and bool(order.phone),
        events=[
            (e, ACTOR_NAMES.get(e.actor, e.actor), describe_event(e) if unmasked else mask(describe_event(e)))
            for e in _book().events(order.number)
        ],
        overdue=overdue_days(order, datetime.now()),
        can_assign="dispatched" in allowed,
        can_start=order.status in ("dispatched", "in_progress"),
        can_finish="done" in allowed,
        can_reopen=order.status == "done",
        can_visit="visited" in allowed,
        departments=names,
        preselect=current if current in names else "",
        channel=CHANNEL_NAMES.get(order.channel, order.channel),
        visit_names=VISIT_NAMES,
        error=error,
    )
    return html, status


@dispatch.get("/orders/<number>")
@login_required("dispatcher")
def order_page(number: str) -> ResponseReturnValue:
    """One order: everything about it, its history, and the changes its state allows."""
    return _page(_order_or_404(number))


@dispatch.post("/orders/<number>/phone")
@login_required("dispatcher")
def reveal_phone(number: str) -> ResponseReturnValue:
    """The full phone for the return visit, on a closed order only; audited with the address."""
    order = _order_or_404(number)
    if order.status != "done":
        return _page(order, error="只有已办结、待回访的工单才能显示完整电话", status=409)
    _audit("work_order.reveal_phone", order.number, {"reason": "回访"})
    return _page(order, reveal=True)


@dispatch.post("/orders/<number>/<action>")
@login_required("dispatcher")
def change(number: str, action: str) -> ResponseReturnValue:
    """派单/改派 (assign), 开始办理 (start), 办结 (finish), 重新办理 (reopen), 回访 (visit)."""
    order = _order_or_404(number)
    book, actor, form = _book(), _user_name(), request.form
    note = form.get("note", "")
    try:
        if action == "assign":
            changed = book.assign(order.number, form.get("department", ""), actor=actor, note=note)
            detail: dict[str, Any] = {"department": changed.department}
        elif action == "start":
            changed = book.start(order.number, actor=actor, note=note)
            detail = {}
        elif action == "finish":
            general = form.get("general") == "1"
            changed = book.finish(order.number, form.get("reply", ""), actor=actor, general=general)
            detail = {"general": general}
        elif action == "reopen":
            changed = book.reopen(order.number, actor=actor, note=note)
            detail = {"note": note[:200]}
        elif action == "visit":
            changed = book.visit(order.number, form.get("result", ""), actor=actor, note=note)
            detail = {"result": changed.visit_result}
        else:
            abort(404, description="没有这个操作")
    except TransitionError as exc:
        return _page(_book().get(order.number), error=str(exc), status=409)
    except InvalidEntry as exc:
        return _page(_book().get(order.number), error=exc.message, status=400)
    _audit(f"work_order.{action}", order.number, {"from": order.status, "to": changed.status, **detail})
    flash(f"工单 {order.number} 已改为“{changed.state_name}”", "ok")
    return redirect(url_for("dispatch.order_page", number=order.number))


# -- the responsibility list -----------------------------------------------------------


@dispatch.get("/departments")
@login_required("reviewer")
def departments() -> str:
    """The responsibility list: every department, a form to add one, one to edit each, and the import."""
    return render_template("admin/departments.html", departments=_departments().all(), columns=COLUMNS)


def _department_form() -> dict[str, str]:
    form = request.form
    return {k: form.get(k, "")[:3000] for k in ("name", "duties", "keywords", "region")}


@dispatch.post("/departments")
@login_required("reviewer")
def add_department() -> ResponseReturnValue:
    fields = _department_form()
    try:
        added = _departments().add(**fields, actor=_user_name())
    except InvalidEntry as exc:
        flash(f"未能添加：{exc.message}", "error")
        return render_template(
            "admin/departments.html", departments=_departments().all(), columns=COLUMNS, form=fields
        ), 400
    _audit("department.add", added.name, {"region": added.region})
    flash(f"已添加“{added.name}”", "ok")
    return redirect(url_for("dispatch.departments"))


@dispatch.post("/departments/<int:department_id>")
@login_required("reviewer")
def edit_department(department_id: int) -> ResponseReturnValue:
    fields = _department_form()
    try:
        before = _departments().get(department_id)
        changed = _departments().edit(department_id, **fields, active=before.active, actor=_user_name())
    except EntryNotFound:
        abort(404, description="职责清单里没有这个部门")
    except InvalidEntry as exc:
        flash(f"未能保存“{before.name}”：{exc.message}", "error")
        return render_template("admin/departments.html", departments=_departments().all(), columns=COLUMNS), 400
    _audit("department.edit", changed.name, {"before": before.name})
    flash(f"已保存“{changed.name}”", "ok")
    return redirect(url_for("dispatch.departments"))


@dispatch.post("/departments/<int:department_id>/active")
@login_required("reviewer")
def set_department_active(department_id: int) -> ResponseReturnValue:
    active = request.form.get("active") == "1"
    try:
        changed = _departments().set_active(department_id, active, actor=_user_name())
    except EntryNotFound:
        abort(404, description="职责清单里没有这个部门")
    _audit("department.activate" if active else "department.deactivate", changed.name, {})
    flash(f"“{changed.name}”已{'启用' if active else '停用（不再派单给它，历史工单不变）'}", "ok")
    return redirect(url_for("dispatch.departments"))


@dispatch.post("/departments/import")
@login_required("reviewer")
def import_departments() -> ResponseReturnValue:
    """An uploaded Excel or CSV list: every row checked first, then all written in one transaction, or none."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择要导入的职责清单文件（.xlsx 或 .csv）", "error")
        return redirect(url_for("dispatch.departments"))
    name = Path(upload.filename).name[:100]
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix if suffix in ('.xlsx', '.csv') else '.bin'}"
        upload.save(path)
        try:
            rows = read_departments(path, name=name)
        except ImportRejected as exc:
            problems = [describe(p) for p in exc.problems]
            return render_template(
                "admin/departments.html",
                departments=_departments().all(),
                columns=COLUMNS,
                problems=problems,
                file=name,
            ), 400
    summary = _departments().import_departments(rows, actor=_user_name())
    _audit("department.import", name, {"added": summary.added, "updated": summary.updated})
    flash(f"已从 {name} 导入：新增 {summary.added} 个部门，更新 {summary.updated} 个", "ok")
    return redirect(url_for("dispatch.departments"))
