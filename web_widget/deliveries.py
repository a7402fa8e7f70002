"""投递失败: the deliveries to the city's work-order system that failed, and the button that tries again.

Lists dead deliveries (every attempt used, or refused by the receiver) and pending ones that have
failed at least once, oldest first: the first of them is what holds the line up. Retrying puts a
delivery back in line with a fresh attempt count; reviewers and administrators may, and it is audited.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from knowledge_base.orders.book import normalise_number
from knowledge_base.orders.outbox import Deliveries
from web_widget.auth import current_user, login_required
from web_widget.security import client_address
from web_widget.services import services

deliveries = Blueprint("deliveries", __name__, url_prefix="/admin/deliveries")


def _deliveries() -> Deliveries:
    return Deliveries(services().db)


@deliveries.get("/")
@login_required("reviewer")
def page() -> ResponseReturnValue:
    outbox = _deliveries()
    return render_template(
        "admin/deliveries.html",
        rows=outbox.troubled(),
        counts=outbox.counts(),
        configured=bool(services().settings.order_webhook_url),
    )


@deliveries.post("/retry")
@login_required("reviewer")
def retry() -> ResponseReturnValue:
    user = current_user()
    assert user is not None  # behind login_required
    outbox = _deliveries()
    if request.form.get("all") == "dead":
        count = outbox.retry_dead()
        services().accounts.audit(
            user.username, "work_order.redeliver", "全部投递失败", {"count": count}, ip=client_address()
        )
        flash(f"已将 {count} 个投递失败的工单重新排入投递队列", "ok")
        return redirect(url_for("deliveries.page"))
    number = normalise_number(request.form.get("number", ""))
    if not number or not outbox.retry(number):
        flash(f"工单 {number[:30]} 没有待重新投递的记录（可能已投递成功）", "error")
        return redirect(url_for("deliveries.page"))
    services().accounts.audit(user.username, "work_order.redeliver", number, {}, ip=client_address())
    flash(f"工单 {number} 已重新排入投递队列，将按顺序投递", "ok")
    return redirect(url_for("deliveries.page"))
