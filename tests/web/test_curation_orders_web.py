"""The queue's 生成草稿 button for a closed work order's general reply, through Flask's test client."""

from __future__ import annotations

import html
from datetime import datetime

import pytest

from tests.web.conftest import sign_in

pytestmark = pytest.mark.unit

REPLY = "路灯已修复；路灯故障可拨打 12345 报修，一般 3 个工作日内修好。"


@pytest.fixture
def order(app):
    svc = app.extensions["hotline"]
    svc.db.execute(
        "INSERT INTO departments (name, duties, keywords, region, active, updated_at, updated_by) "
        "VALUES ('市城市管理局', '路灯', '路灯', '', 1, ?, 'test')",
        (datetime.now().isoformat(timespec="seconds"),),
    )
    book = svc.interactions.orders
    made = book.create(
        channel="hotline",
        sender_id="s1",
        description="我是王五，小区路灯坏了好几天了没人修，电话13812345678",
        kind="report",
        name="王五",
        phone="13812345678",
    )
    book.assign(made.number, "市城市管理局", actor="dispatcher1")
    return book.finish(made.number, REPLY, actor="dispatcher1", general=True)


def _queue(client) -> str:
    return html.unescape(client.get("/admin/queue").get_data(as_text=True))


def test_the_button_makes_the_draft_and_the_order_leaves_the_queue(app, order):
    svc = app.extensions["hotline"]
    svc.interactions.log_answer(
        channel="web",
        sender_id="w1",
        query="我是市民，小区路灯坏了好几天了没人修，电话138****5678",  # the same matter, as a citizen asked it
        decision="no_answer",
        entry_key="",
        score=None,
        kb_version=1,
        thresholds={},
        candidates=[],
    )
    svc.interactions.log_answer(
        channel="web",
        sender_id="w2",
        query="小区路灯坏了好几天没人修",
        decision="no_answer",
        entry_key="",
        score=None,
        kb_version=1,
        thresholds={},
        candidates=[],
    )
    editor = sign_in(app, "editor")
    page = _queue(editor)
    assert "工单答复" in page and order.number in page and "生成草稿" in page and REPLY in page
    assert "13812345678" not in page and "王五" not in page

    questions = next(c for c in svc.queue.clusters() if c.orders).wordings
    reply = editor.post(
        "/admin/queue/order-draft",
        data={"csrf_token": editor.csrf, "order": order.number, "question": questions},
    )
    assert reply.status_code == 302 and "/admin/drafts/" in reply.headers["Location"]
    [draft] = svc.workflow.drafts()
    assert draft.entry.question == "我是市民，小区路灯坏了好几天了没人修，电话138****5678"
    assert draft.entry.answer == REPLY and draft.entry.department == "市城市管理局"
    assert set(draft.entry.similar_questions) <= set(questions)
    shown = html.unescape(editor.get(reply.headers["Location"]).get_data(as_text=True))
    assert f"已根据工单 {order.number} 的答复生成草稿 {draft.id}，请检查后提交审核" in shown
    assert order.number not in _queue(editor)

    again = editor.post(
        "/admin/queue/order-draft", data={"csrf_token": editor.csrf, "order": order.number}, follow_redirects=True
    )
    assert "未能生成草稿" in again.get_data(as_text=True) and "已经处理过" in again.get_data(as_text=True)
    assert len(svc.workflow.drafts()) == 1


def test_without_the_csrf_token_or_as_an_operator_nothing_is_made(app, order):
    svc = app.extensions["hotline"]
    editor = sign_in(app, "editor")
    forged = editor.post("/admin/queue/order-draft", data={"csrf_token": "forged", "order": order.number})
    assert forged.status_code == 400
    operator = sign_in(app, "operator")
    refused = operator.post("/admin/queue/order-draft", data={"csrf_token": operator.csrf, "order": order.number})
    assert refused.status_code == 403
    assert svc.workflow.drafts() == [] and order.number in _queue(editor)


def test_an_unknown_order_or_none_is_refused_in_chinese(app, order):
    editor = sign_in(app, "editor")
    missing = editor.post("/admin/queue/order-draft", data={"csrf_token": editor.csrf, "order": "GD20990101000001"})
    assert missing.status_code == 404 and "没有工单 GD20990101000001" in missing.get_data(as_text=True)
    empty = editor.post("/admin/queue/order-draft", data={"csrf_token": editor.csrf})
    assert empty.status_code == 400 and "没有指定工单" in empty.get_data(as_text=True)
    assert app.extensions["hotline"].workflow.drafts() == []
