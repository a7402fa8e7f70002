"""The inbound work-order API (/api/work-orders/…): the city's system reads orders and moves them on.

Every state change goes through the API here, and every bad input is refused with a Chinese reason
and without a write (the order and its history are compared before and after).
"""

from __future__ import annotations

import pytest

from knowledge_base.settings import Settings, shared_secret

pytestmark = pytest.mark.unit

TOKEN = "city-system-token-0123456789"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=str(tmp_path / "var"), order_api_token=TOKEN, rate_limit_per_minute=0)


@pytest.fixture
def book(app):
    orders = app.extensions["hotline"].interactions.orders
    orders.db.execute(
        "INSERT INTO departments (name, duties, keywords, region, active, updated_at, updated_by) "
        "VALUES (?, ?, '', '', 1, '2026-11-30T00:00:00', 'test'), (?, ?, '', '', 1, '2026-11-30T00:00:00', 'test')",
        ("区住建局", "住房建设", "区城管局", "城市管理"),
    )
    return orders


@pytest.fixture
def number(book) -> str:
    return book.create(channel="web", sender_id="s1", description="楼下装修噪音太大", kind="complaint").number


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _post(client, number: str, body, **kw):
    return client.post(f"/api/work-orders/{number}/status", json=body, headers=_auth(), **kw)


def _snapshot(book, number: str):
    return book.get(number), book.events(number)


def test_the_whole_life_through_the_api(client, book, number):
    steps = [
        ({"status": "dispatched", "department": "区住建局", "external_id": "SZ-2026-001"}, "dispatched"),
        ({"status": "dispatched", "department": "区城管局", "note": "改派"}, "dispatched"),
        ({"status": "in_progress", "note": "已联系施工方"}, "in_progress"),
        ({"status": "done", "reply": "已责令施工方仅在工作日 8-12 时、14-18 时施工。"}, "done"),
        ({"status": "办理中", "note": "市民反映仍有夜间施工"}, "in_progress"),
        ({"status": "已办结", "reply": "已处罚并停工整改。", "general": False}, "done"),
        ({"status": "visited", "visit_result": "满意", "note": "电话回访"}, "visited"),
    ]
    for body, state in steps:
        reply = _post(client, number, body)
        assert reply.status_code == 200, (body, reply.get_json())
        assert reply.get_json()["status"] == state and reply.get_json()["unchanged"] is False
    order = book.get(number)
    assert (order.department, order.reply, order.visit_result, order.external_id) == (
        "区城管局",
        "已处罚并停工整改。",
        "satisfied",
        "SZ-2026-001",
    )
    shown = client.get(f"/api/work-orders/{number}", headers=_auth()).get_json()
    assert shown["state_name"] == "已回访" and shown["department"] == "区城管局"
    assert [e["action"] for e in shown["events"]] == [
        "created",
        "assigned",
        "assigned",
        "started",
        "closed",
        "reopened",
        "closed",
        "visited",
    ]
    assert {e["actor"] for e in shown["events"][1:]} == {"api"}


def test_done_straight_away_from_received(client, book, number):
    reply = _post(client, number, {"status": "done", "reply": "已电话答复：噪音投诉请拨打 110。", "general": True})
    assert reply.status_code == 200
    assert book.get(number).general_reply is True


def test_a_resent_change_is_answered_unchanged_and_adds_no_event(client, book, number):
    body = {"status": "dispatched", "department": "区住建局"}
    assert _post(client, number, body).get_json()["unchanged"] is False
    before = book.events(number)
    again = _post(client, number, body)
    assert again.status_code == 200 and again.get_json()["unchanged"] is True
    assert book.events(number) == before
    progress = {"status": "in_progress", "note": "已到现场"}
    assert _post(client, number, progress).get_json()["unchanged"] is False
    assert _post(client, number, progress).get_json()["unchanged"] is True
    assert _post(client, number, {"status": "in_progress", "note": "已整改一半"}).get_json()["unchanged"] is False
    done = {"status": "done", "reply": "已整改"}
    assert _post(client, number, done).get_json()["unchanged"] is False
    assert _post(client, number, done).get_json()["unchanged"] is True
    assert len(book.events(number)) == len(before) + 3


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "缺少访问令牌"),
        ({"Authorization": TOKEN}, "缺少访问令牌"),
        ({"Authorization": "Basic abc"}, "缺少访问令牌"),
        ({"Authorization": "Bearer "}, "缺少访问令牌"),
        ({"Authorization": "Bearer wrong-token"}, "访问令牌不正确"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "访问令牌不正确"),
        ({"Authorization": "Bearer 令牌"}, "访问令牌不正确"),
    ],
)
def test_a_bad_token_is_refused_and_changes_nothing(client, book, number, headers, reason):
    before = _snapshot(book, number)
    for reply in (
        client.get(f"/api/work-orders/{number}", headers=headers),
        client.post(f"/api/work-orders/{number}/status", json={"status": "done", "reply": "x"}, headers=headers),
        client.get("/api/work-orders/GD20000101000001", headers=headers),  # no hint whether an order exists
    ):
        assert reply.status_code == 401 and reason in reply.get_json()["error"]
    assert _snapshot(book, number) == before


def test_the_token_kept_in_data_dir_works_when_none_is_configured(tmp_path, fake_kb):
    from web_widget import create_app

    settings = Settings(data_dir=str(tmp_path / "var2"), rate_limit_per_minute=0)
    app = create_app(settings, kb=fake_kb)
    token = shared_secret(settings, "order_api_token")
    reply = app.test_client().get("/api/work-orders/GD20000101000001", headers=_auth(token))
    assert reply.status_code == 404 and reply.get_json() == {"error": "没有这个工单"}


def test_an_unknown_order_is_404(client, book):
    assert client.get("/api/work-orders/GD20000101000001", headers=_auth()).status_code == 404
    reply = _post(client, "GD20000101000001", {"status": "done", "reply": "已处理"})
    assert reply.status_code == 404 and reply.get_json()["error"] == "没有这个工单"


def test_an_unknown_department_is_422_with_its_reason(client, book, number):
    before = _snapshot(book, number)
    reply = _post(client, number, {"status": "dispatched", "department": "不存在的局", "external_id": "X-1"})
    assert reply.status_code == 422
    assert "职责清单里没有“不存在的局”" in reply.get_json()["error"] and reply.get_json()["field"] == "department"
    assert _snapshot(book, number) == before  # external_id not written either


@pytest.mark.parametrize(
    "body",
    [
        {"status": "visited", "visit_result": "满意"},  # 待受理 cannot be visited
        {"status": "in_progress"},  # not dispatched yet
    ],
)
def test_a_disallowed_transition_is_409(client, book, number, body):
    before = _snapshot(book, number)
    reply = _post(client, number, body)
    assert reply.status_code == 409 and "不能改为" in reply.get_json()["error"]
    assert _snapshot(book, number) == before


def test_a_closed_order_refuses_every_change(client, book, number):
    _post(client, number, {"status": "done", "reply": "已答复"})
    _post(client, number, {"status": "visited", "visit_result": "unreachable"})
    before = _snapshot(book, number)
    for body in ({"status": "dispatched", "department": "区住建局"}, {"status": "done", "reply": "再答复"}):
        reply = _post(client, number, body)
        assert reply.status_code == 409 and "工单已结束" in reply.get_json()["error"]
    assert _snapshot(book, number) == before


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"status": "done"}, 400, "「办理结果」不能为空"),
        ({"status": "done", "reply": "   "}, 400, "「办理结果」不能为空"),
        ({"status": "done", "reply": "。。。！！"}, 400, "只有标点"),
        ({"status": "done", "reply": "好" * 10_000}, 400, "最多 5000 个字"),
        ({"status": "visited", "visit_result": "还行"}, 422, "回访结果只能是"),
        ({"status": "closed"}, 400, "「status」只能是"),
        ({"status": "received"}, 400, "「status」只能是"),
        ({}, 400, "「status」只能是"),
        ({"status": 3}, 400, "「status」必须是字符串"),
        ({"status": "done", "reply": ["a"]}, 400, "「reply」必须是字符串"),
        ({"status": "done", "reply": "x", "general": "yes"}, 400, "「general」必须是"),
        ({"status": "in_progress", "department": "区住建局"}, 422, "只有派单"),
        ({"status": "dispatched", "department": ""}, 422, "请选择承办部门"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason_and_change_nothing(client, book, number, body, status, reason):
    if body.get("status") == "visited":
        _post(client, number, {"status": "done", "reply": "已答复"})
    if body.get("status") == "in_progress":
        _post(client, number, {"status": "dispatched", "department": "区城管局"})
    before = _snapshot(book, number)
    reply = _post(client, number, body)
    assert reply.status_code == status, reply.get_json()
    assert reason in reply.get_json()["error"]
    assert _snapshot(book, number) == before


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"done"', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b'{"status": "\\ud800"}', "application/json"),
        (b"status=done", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_garbage_is_400(client, book, number, data, content_type):
    before = _snapshot(book, number)
    reply = client.post(f"/api/work-orders/{number}/status", data=data, content_type=content_type, headers=_auth())
    assert reply.status_code == 400 and reply.get_json()["error"] == "请求内容必须是 JSON 对象"
    assert _snapshot(book, number) == before


def test_an_oversized_body_is_413(client, book, number):
    reply = _post(client, number, {"status": "done", "reply": "好" * 40_000})
    assert reply.status_code == 413 and "上限" in reply.get_json()["error"]


def test_html_and_emoji_are_kept_as_text(client, book, number):
    text = "<script>alert(1)</script> 已处理 👍🏻 <b>好</b>"
    reply = _post(client, number, {"status": "done", "reply": text})
    assert reply.status_code == 200
    assert book.get(number).reply == text
    assert client.get(f"/api/work-orders/{number}", headers=_auth()).get_json()["reply"] == text


def test_the_number_is_normalised(client, book, number):
    loose = f" {number[:6]}-{number[6:].lower()} "
    assert client.get(f"/api/work-orders/{loose}", headers=_auth()).get_json()["number"] == number


def test_the_api_needs_no_csrf_token_but_staff_posts_still_do(client, book, number):
    assert _post(client, number, {"status": "done", "reply": "已答复"}).status_code == 200
    assert client.post("/operator/api/work_orders", json={"description": "x"}).status_code == 400


def test_the_api_is_rate_limited(tmp_path, fake_kb):
    from web_widget import create_app

    settings = Settings(data_dir=str(tmp_path / "var3"), order_api_token=TOKEN, rate_limit_per_minute=3)
    client = create_app(settings, kb=fake_kb).test_client()
    answers = [client.get("/api/work-orders/GD20000101000001", headers=_auth()).status_code for _ in range(5)]
    assert answers == [404, 404, 404, 429, 429]


# -- 投递失败: the admin's dead letters ---------------------------------------------------------


@pytest.fixture
def dead_number(app, book):
    """An order whose delivery went dead after 3 failed attempts."""
    from knowledge_base.orders.outbox import Answer, Courier

    book.outbox = True
    number = book.create(channel="web", sender_id="s2", description="路灯不亮", kind="help").number
    refused = Courier(
        book.db, url="http://unused", secret="x" * 16, attempts=1, post=lambda *a: Answer(503, "HTTP 503")
    )
    refused.deliver_due()
    return number


def test_the_dead_letter_page_lists_dead_deliveries_with_their_error(app, dead_number):
    from tests.web.conftest import sign_in

    html = sign_in(app, "reviewer").get("/admin/deliveries/").get_data(as_text=True)
    assert dead_number in html and "HTTP 503" in html and "重新投递" in html and "投递失败 1 个" in html


def test_retry_puts_it_back_in_line_and_is_audited(app, book, dead_number):
    from knowledge_base.orders.outbox import Deliveries
    from tests.web.conftest import sign_in

    reviewer = sign_in(app, "reviewer")
    reply = reviewer.post("/admin/deliveries/retry", data={"number": dead_number, "csrf_token": reviewer.csrf})
    assert reply.status_code == 302
    delivery = Deliveries(book.db).get(dead_number)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    audit = app.extensions["hotline"].accounts.audit_log(target=dead_number)
    assert audit[0]["action"] == "work_order.redeliver" and audit[0]["actor"] == "reviewer1"
    followed = reviewer.get("/admin/deliveries/").get_data(as_text=True)
    assert "已重新排入投递队列" in followed


def test_retry_needs_csrf_and_the_reviewer_role(app, book, dead_number):
    from knowledge_base.orders.outbox import Deliveries
    from tests.web.conftest import sign_in

    reviewer = sign_in(app, "reviewer")
    assert reviewer.post("/admin/deliveries/retry", data={"number": dead_number}).status_code == 400
    editor = sign_in(app, "editor")
    assert (
        editor.post("/admin/deliveries/retry", data={"number": dead_number, "csrf_token": editor.csrf}).status_code
        == 403
    )
    assert editor.get("/admin/deliveries/").status_code == 403
    assert Deliveries(book.db).get(dead_number).status == "dead"


def test_retry_all_dead_and_an_unknown_number(app, book, dead_number):
    from knowledge_base.orders.outbox import Deliveries
    from tests.web.conftest import sign_in

    admin = sign_in(app, "admin")
    reply = admin.post("/admin/deliveries/retry", data={"number": "GD20000101000001", "csrf_token": admin.csrf})
    assert "没有待重新投递的记录" in admin.get(reply.headers["Location"]).get_data(as_text=True)
    admin.post("/admin/deliveries/retry", data={"all": "dead", "csrf_token": admin.csrf})
    assert Deliveries(book.db).counts()["dead"] == 0
