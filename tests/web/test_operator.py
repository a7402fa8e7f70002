"""The operator console with Flask's test client, over the FAKE-embedder knowledge base of tests/conftest.py.

The fake embedder ranks by shared character n-grams: good enough to check routes, validation,
escaping and masking; the real model's ranking is checked by tests/web/test_operator_browser.py.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from knowledge_base.records import Entry, ServiceGuide
from knowledge_base.staff.operator_log import OperatorLog
from tests.web.conftest import csrf_of, sign_in
from web_widget import create_app

pytestmark = pytest.mark.unit

STATIC = Path(__file__).resolve().parents[2] / "web_widget" / "static"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
PAGES = ["/operator", "/operator/", "/operator/work_orders/GD20261126000001"]
READ_APIS = ["/operator/api/search?q=社保", "/operator/api/work_orders"]
WRITE_APIS = ["/operator/api/report", "/operator/api/work_orders"]


def _services(app):
    return app.extensions["hotline"]


def _reports(app):
    return OperatorLog(_services(app).db).reports()


def _post(client, path, body, token=None):
    return client.post(path, json=body, headers={"X-CSRF-Token": client.csrf if token is None else token})


def _order(client, **changes):
    body = {
        "question": "噪音扰民怎么投诉",
        "description": "楼下商铺夜间施工，来电人身份证440301199001011234",
        "name": "张先生",
        "phone": "138 1234 5678",
        "region": "深圳市",
        "entries": ["T-SB-1", "T-GJJ-SZ"],
    }
    body.update(changes)
    return _post(client, "/operator/api/work_orders", body)


# -- who may use it -------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_the_signed_out_to_sign_in(client, path):
    reply = client.get(path)
    assert reply.status_code == 302 and "/staff/login" in reply.headers["Location"]


@pytest.mark.parametrize("path", READ_APIS)
def test_read_apis_answer_401_json_when_signed_out(client, path):
    reply = client.get(path)
    assert reply.status_code == 401 and "登录" in reply.json["error"]


@pytest.mark.parametrize("path", WRITE_APIS)
def test_write_apis_answer_401_json_when_signed_out(client, path):
    token = csrf_of(client)  # a session with a CSRF token but nobody signed in
    reply = client.post(path, json={"query": "x"}, headers={"X-CSRF-Token": token})
    assert reply.status_code == 401 and "登录" in reply.json["error"]


@pytest.mark.parametrize("role", ["operator", "editor", "reviewer", "admin"])
def test_every_staff_role_includes_the_console(app, role):
    staff = sign_in(app, role)
    assert staff.get("/operator").status_code == 200
    assert staff.get("/operator/api/search?q=社保缴费记录").status_code == 200


def test_operators_land_on_the_console_after_sign_in(app):
    _services(app).accounts.create_user("op2", "correct-horse-battery", "operator", actor="test")
    anonymous = app.test_client()
    token = csrf_of(anonymous)
    reply = anonymous.post(
        "/staff/login", data={"username": "op2", "password": "correct-horse-battery", "csrf_token": token}
    )
    assert reply.headers["Location"].endswith("/operator")


@pytest.mark.parametrize("path", WRITE_APIS)
@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_writes_without_the_sessions_csrf_token_are_refused(operator_client, path, token):
    reply = _post(operator_client, path, {"query": "社保", "outcome": "used", "entry_key": "T-SB-1"}, token=token)
    assert reply.status_code == 400 and "CSRF" in reply.json["error"]


# -- the page -------------------------------------------------------------------------


def test_console_page_is_keyboard_first_and_has_no_inline_code(operator_client):
    reply = operator_client.get("/operator")
    html = reply.get_data(as_text=True)
    assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Cache-Control"] == "no-store"
    assert re.search(r'<meta name="csrf-token" content="[^"]+"', html)
    assert '<script src="/static/operator.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script: the CSP would block it"
    assert " style=" not in html and "<style" not in html and "cdn" not in html.lower()
    assert '<label for="q"' in html and 'role="search"' in html and 'aria-live="polite"' in html
    assert "Alt</kbd>+<kbd>1" in html and "新建工单" in html and "待处理工单" in html


@pytest.mark.parametrize("asset", ["operator.js", "operator.css"])
def test_assets_are_served(client, asset):
    assert client.get(f"/static/{asset}").status_code == 200


def test_script_builds_every_value_as_text_never_as_html():
    script = (STATIC / "operator.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, f"operator.js uses {sink}: answers may hold hostile text"
    assert "textContent" in script and "AbortController" in script and "execCommand" in script


# -- search ---------------------------------------------------------------------------


def test_search_returns_the_decision_and_the_hits_with_everything_the_operator_reads(operator_client):
    reply = operator_client.get("/operator/api/search", query_string={"q": "怎么查询社保缴费记录"})
    assert reply.status_code == 200
    data = reply.json
    assert data["decision"] in ("answer", "clarify", "no_answer") and data["reason"] and data["truncated"] is False
    assert isinstance(data["kb_version"], int) and data["query"] == "怎么查询社保缴费记录"
    assert 1 <= len(data["hits"]) <= 5
    best = data["hits"][0]
    assert best["key"] == "T-SB-1" and best["question"] == "怎么查询社保缴费记录"
    assert best["answer"] == "登录粤省事小程序查询社保缴费记录。"
    assert best["score"] == round(best["score"], 3)
    assert best["department"] == "广东省人力资源和社会保障厅" and best["category"] == "社会保障"
    assert best["policy"] == {"title": "《社会保险法》", "number": "", "url": ""}
    assert best["effective_date"] == "2024-01-01" and best["expiry_date"] is None
    assert best["regions"] == ["广东省"] and best["matched_phrasing"]
    assert best["spoken"][0] == "登录粤省事小程序查询社保缴费记录。"
    assert "2024年1月1日" in "".join(best["spoken"])  # dates as spoken, via knowledge_base.plain.speech


def test_search_serves_only_published_entries_in_effect(operator_client):
    for question in ("新生儿落户怎么办理", "2024年临时生活补贴怎么申请", "2027年新政策补贴怎么领"):
        hits = operator_client.get("/operator/api/search", query_string={"q": question}).json["hits"]
        assert not {"T-DRAFT", "T-OLD", "T-FUTURE"} & {h["key"] for h in hits}, question


def test_search_filters_by_region(operator_client):
    hits = operator_client.get("/operator/api/search", query_string={"q": "住房公积金怎么提取", "region": "深圳"}).json[
        "hits"
    ]
    keys = [h["key"] for h in hits]
    assert "T-GJJ-SZ" in keys and "T-GJJ-GZ" not in keys


def test_unknown_region_is_a_400_with_a_reason(operator_client):
    reply = operator_client.get("/operator/api/search", query_string={"q": "公积金", "region": "甲/乙/丙/丁"})
    assert reply.status_code == 400 and reply.json["error"]


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_empty_question_is_a_400_with_a_reason(operator_client, query):
    reply = operator_client.get("/operator/api/search", query_string={"q": query})
    assert reply.status_code == 400 and "问题" in reply.json["error"]


def test_missing_question_is_a_400(operator_client):
    assert operator_client.get("/operator/api/search").status_code == 400


def test_huge_question_is_searched_cut_and_flagged(operator_client):
    reply = operator_client.get("/operator/api/search", query_string={"q": "社保缴费记录" * 400})
    assert reply.status_code == 200
    assert reply.json["truncated"] is True and len(reply.json["query"]) == 1000 and reply.json["max_query"] == 1000


@pytest.mark.parametrize(
    "query",
    [
        HOSTILE,
        "' OR 1=1; DROP TABLE entries; --",
        '社保"); DELETE FROM operator_reports; --',
        "社保\x00缴费\x07记录\x1b[31m",
        "\u202e社保\u200b缴费",
        "🙂" * 50,
        "%s %d {0} ${x}",
    ],
)
def test_hostile_questions_are_searched_as_plain_data(operator_client, query):
    reply = operator_client.get("/operator/api/search", query_string={"q": query})
    assert reply.status_code in (200, 400), reply.get_data(as_text=True)
    assert reply.mimetype == "application/json" and reply.headers["X-Content-Type-Options"] == "nosniff"
    if reply.status_code == 200 and query.strip():
        assert isinstance(reply.json["hits"], list)
    again = operator_client.get("/operator/api/search", query_string={"q": "怎么查询社保缴费记录"})
    assert again.json["hits"][0]["key"] == "T-SB-1"  # nothing was dropped or changed


def test_hostile_answers_travel_as_json_strings(app, operator_client):
    _services(app).kb.add(Entry(key="T-EVIL", question="恶意答案测试条目", answer=HOSTILE), author="test")
    reply = operator_client.get("/operator/api/search", query_string={"q": "恶意答案测试条目"})
    best = reply.json["hits"][0]
    assert best["key"] == "T-EVIL" and best["answer"] == HOSTILE  # data, for textContent; never markup
    assert reply.mimetype == "application/json"


def test_searches_are_rate_limited_per_operator(settings, fake_kb, relay):
    app = create_app(dataclasses.replace(settings, operator_rate_limit_per_minute=3), kb=fake_kb, relay=relay)
    first, second = sign_in(app, "operator"), sign_in(app, "operator", "op-b")
    codes = [first.get("/operator/api/search?q=社保").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = first.get("/operator/api/search?q=社保")
    assert refused.status_code == 429 and "频繁" in refused.json["error"]
    assert second.get("/operator/api/search?q=社保").status_code == 200  # each operator has their own count


# -- reports --------------------------------------------------------------------------


def test_used_report_is_stored_with_the_operator_and_the_kb_version(app, operator_client):
    reply = _post(
        operator_client,
        "/operator/api/report",
        {"query": " 社保  缴费 ", "outcome": "used", "entry_key": "T-SB-1", "kb_version": 3},
    )
    assert reply.status_code == 201 and reply.json["outcome"] == "used"
    [stored] = _reports(app)
    assert (stored.operator, stored.query, stored.entry_key, stored.outcome, stored.kb_version) == (
        "operator1",
        "社保 缴费",
        "T-SB-1",
        "used",
        3,
    )


def test_report_without_kb_version_gets_the_current_one(app, operator_client):
    body = {"query": "社保", "outcome": "not_found", "reason": "问的是异地转移"}
    assert _post(operator_client, "/operator/api/report", body).status_code == 201
    assert _reports(app)[0].kb_version == _services(app).kb.kb_version


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "社保", "outcome": "not_found"}, "reason"),
        ({"query": "社保", "outcome": "wrong", "entry_key": "T-SB-1", "reason": "  "}, "reason"),
        ({"query": "社保", "outcome": "wrong", "reason": "电话已停用"}, "entry_key"),
        ({"query": "社保", "outcome": "used"}, "entry_key"),
        ({"query": "社保", "outcome": "great", "entry_key": "T-SB-1"}, "outcome"),
        ({"query": "社保", "outcome": ["used"], "entry_key": "T-SB-1"}, "outcome"),
        ({"query": "", "outcome": "used", "entry_key": "T-SB-1"}, "query"),
        ({"outcome": "used", "entry_key": "T-SB-1"}, "query"),
        ({"query": 42, "outcome": "used", "entry_key": "T-SB-1"}, "query"),
        ({"query": "问" * 1001, "outcome": "used", "entry_key": "T-SB-1"}, "query"),
        ({"query": "社保", "outcome": "not_found", "reason": "因" * 501}, "reason"),
        ({"query": "社保\x00", "outcome": "used", "entry_key": "T-SB-1"}, "query"),
        ({"query": "社保", "outcome": "used", "entry_key": "<b>x</b>"}, "entry_key"),
        ({"query": "社保", "outcome": "used", "entry_key": "T-SB-1", "kb_version": "7"}, "kb_version"),
        ({"query": "社保", "outcome": "used", "entry_key": "T-SB-1", "kb_version": -1}, "kb_version"),
    ],
)
def test_bad_reports_are_a_400_naming_the_field(app, operator_client, body, field):
    reply = _post(operator_client, "/operator/api/report", body)
    assert reply.status_code == 400 and reply.json["field"] == field and reply.json["error"].startswith("未能记录")
    assert _reports(app) == []


def test_report_body_must_be_a_json_object(operator_client):
    reply = operator_client.post(
        "/operator/api/report", data="outcome=used", headers={"X-CSRF-Token": operator_client.csrf}
    )
    assert reply.status_code == 400 and "JSON" in reply.json["error"]
    assert _post(operator_client, "/operator/api/report", ["used"]).status_code == 400


# -- work orders ----------------------------------------------------------------------


def test_work_order_is_created_for_this_call(app, operator_client):
    reply = _order(operator_client)
    assert reply.status_code == 201
    number = reply.json["number"]
    order = _services(app).interactions.work_order(number)
    assert number.startswith("GD") and reply.json["url"] == f"/operator/work_orders/{order.token}"
    assert (order.channel, order.sender_id, order.phone, order.region) == (
        "hotline-operator",
        "operator1",
        "13812345678",
        "深圳市",
    )
    assert order.transcript == [{"role": "caller", "text": "噪音扰民怎么投诉"}]
    assert order.entries == ["T-SB-1", "T-GJJ-SZ"] and order.status == "received"


def test_open_work_orders_list_masks_phone_and_id_numbers(operator_client):
    number = _order(operator_client).json["number"]
    reply = operator_client.get("/operator/api/work_orders")
    assert reply.status_code == 200
    [listed] = [o for o in reply.json["work_orders"] if o["number"] == number]
    assert listed["phone"] == "138****5678" and "440301********1234" in listed["description"]
    body = reply.get_data(as_text=True)
    assert "13812345678" not in body and "440301199001011234" not in body


def test_only_a_reviewer_sees_the_full_phone_on_the_work_order_page_and_every_view_is_audited(app, operator_client):
    created = _order(operator_client, description=HOSTILE + " 身份证440301199001011234").json
    number, url = created["number"], created["url"]
    console = operator_client.get("/operator").get_data(as_text=True)
    assert "13812345678" not in console
    # The operator who took the call sees the work order, phone and ID number masked.
    reply = operator_client.get(url)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200 and number in html and "138****5678" in html and "张先生" in html
    assert "13812345678" not in html and "440301199001011234" not in html and "440301********1234" in html
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "噪音扰民怎么投诉" in html and "T-GJJ-SZ" in html
    # So does an editor; a reviewer (pii_min_role) sees them in full.
    editor_html = sign_in(app, "editor").get(url).get_data(as_text=True)
    assert "138****5678" in editor_html and "13812345678" not in editor_html
    reviewer = sign_in(app, "reviewer")
    full = reviewer.get(url, environ_base={"REMOTE_ADDR": "10.1.2.3"}).get_data(as_text=True)
    assert "13812345678" in full and "440301199001011234" in full and "审计日志" in full
    log = _services(app).accounts.audit_log(target=number)
    views = [(row["actor"], row["action"], row["ip"]) for row in log if row["action"].startswith("work_order.view")]
    assert ("reviewer1", "work_order.view_unmasked", "10.1.2.3") in views
    assert {("operator1", "work_order.view"), ("editor1", "work_order.view")} <= {(a, b) for a, b, _ in views}
    assert "work_order.create" in {row["action"] for row in log}


def test_the_minimum_role_for_full_numbers_is_a_setting(settings, fake_kb, relay):
    app = create_app(dataclasses.replace(settings, pii_min_role="operator"), kb=fake_kb, relay=relay)
    operator = sign_in(app, "operator")
    html = operator.get(_order(operator).json["url"]).get_data(as_text=True)
    assert "13812345678" in html


def test_a_work_order_page_is_found_by_its_token_not_its_sequential_number(app, operator_client):
    created = _order(operator_client).json
    token = _services(app).interactions.work_order(created["number"]).token
    assert len(token) >= 22 and created["number"] not in token
    assert operator_client.get(f"/operator/work_orders/{created['number']}").status_code == 404
    assert operator_client.get(f"/operator/work_orders/{token}").status_code == 200
    listed = operator_client.get("/operator/api/work_orders").json["work_orders"]
    assert [o["url"] for o in listed if o["number"] == created["number"]] == [f"/operator/work_orders/{token}"]


@pytest.mark.parametrize("number", ["GD20991231999999", "nope", "<img src=x onerror=alert(1)>", "1' OR '1'='1"])
def test_unknown_work_order_is_a_404_page(operator_client, number):
    reply = operator_client.get(f"/operator/work_orders/{number}")
    assert reply.status_code == 404
    html = reply.get_data(as_text=True)
    assert "<img src=x" not in html and "工单" in html


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": ""}, "description"),
        ({"description": "   "}, "description"),
        ({"description": "问" * 2001}, "description"),
        ({"phone": "12345"}, "phone"),
        ({"phone": 13812345678}, "phone"),
        ({"name": "名" * 51}, "name"),
        ({"question": "问" * 1001}, "question"),
        ({"entries": "T-SB-1"}, "entries"),
        ({"entries": [1, 2]}, "entries"),
        ({"entries": ["K"] * 21}, "entries"),
    ],
)
def test_bad_work_orders_are_a_400_naming_the_field(app, operator_client, changes, field):
    reply = _order(operator_client, **changes)
    assert reply.status_code == 400 and reply.json["field"] == field and reply.json["error"]
    assert _services(app).interactions.work_orders() == []


def test_work_order_body_must_be_a_json_object(operator_client):
    assert _post(operator_client, "/operator/api/work_orders", "工单").status_code == 400


# -- the service guide (办事指南) ----------------------------------------------------------------------


def test_each_hit_carries_its_guide_with_labels_and_read_aloud_sentences(app, operator_client):
    guide = ServiceGuide(materials="身份证\n户口簿", enquiry_phone="12345政务服务便民热线", online="粤省事")
    _services(app).kb.add(
        Entry(key="T-GUIDE", question="办事指南测试条目怎么办理", answer="到窗口办理。", guide=guide), author="test"
    )
    reply = operator_client.get("/operator/api/search", query_string={"q": "办事指南测试条目怎么办理"})
    best = reply.json["hits"][0]
    assert best["key"] == "T-GUIDE"
    assert [(g["name"], g["label"], g["text"]) for g in best["guide"]] == [
        ("materials", "申请材料", "身份证\n户口簿"),
        ("enquiry_phone", "咨询电话", "12345政务服务便民热线"),
        ("online", "网上办理", "粤省事"),
    ]
    spoken = {g["name"]: g["spoken"] for g in best["guide"]}
    assert spoken["materials"] == ["申请材料：身份证。", "户口簿。"]
    assert spoken["enquiry_phone"] == ["咨询电话：一 二 三 四 五政务服务便民热线。"]  # numbers spelled for the phone


def test_hits_without_a_guide_carry_an_empty_list(operator_client):
    reply = operator_client.get("/operator/api/search", query_string={"q": "怎么查询社保缴费记录"})
    assert all(hit["guide"] == [] for hit in reply.json["hits"])


def test_the_console_script_shows_copies_and_reads_the_guide_as_text():
    script = (STATIC / "operator.js").read_text(encoding="utf-8")
    assert 'el("details", "guide")' in script and "办事指南" in script
    assert "copy-guide" in script and "guide-spoken" in script


def test_the_api_document_describes_the_guide_aspects():
    import yaml

    from knowledge_base.plain.aspects import GUIDE_ORDER

    document = yaml.safe_load((STATIC.parent / "openapi.yaml").read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    assert "guide" in schemas["Hit"]["required"]
    assert schemas["GuideAspect"]["properties"]["name"]["enum"] == list(GUIDE_ORDER)
