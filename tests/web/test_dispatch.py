"""The dispatcher's pages and the responsibility-list admin, through Flask's test client on a real SQLite database.

Orders are made through the real :class:`WorkOrderBook` of the app; the pages move them through every state,
refuse what a state does not allow in Chinese, write the staff audit log, highlight overdue orders and mask
the caller's phone below ``pii_min_role`` (with the audited 显示电话 for the return visit).
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from knowledge_base.orders.departments import DepartmentList, read_departments
from tests.web.conftest import sign_in

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample" / "departments.csv"
PHONE = "13812345678"


@pytest.fixture
def services(app):
    found = app.extensions["hotline"]
    DepartmentList(found.db).import_departments(read_departments(SAMPLE), actor="test")
    return found


@pytest.fixture
def book(services):
    return services.interactions.orders


@pytest.fixture
def dispatcher(app, services):
    return sign_in(app, "dispatcher")


def _order(book, description="楼下工地每晚十一点还在施工，噪音太大", **fields):
    fields.setdefault("suggestion", ("市生态环境局", "职责“噪音污染投诉”与诉求最接近（相似度 95%），命中关键词：噪音"))
    return book.create(
        channel="web",
        sender_id="s1",
        description=description,
        kind=fields.pop("kind", "complaint"),
        phone=PHONE,
        **fields,
    )


def _post(client, path, **data):
    return client.post(path, data={"csrf_token": client.csrf, **data})


def _act(client, order, action, **data):
    return _post(client, f"/dispatch/orders/{order.number}/{action}", **data)


def _audit(services, number):
    return [row["action"] for row in services.accounts.audit_log(target=number)]


# -- who may use it ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dispatch", "/dispatch/orders/GD20261130000001", "/dispatch/departments"])
def test_operator_gets_403(app, services, path):
    assert sign_in(app, "operator").get(path).status_code == 403


def test_operator_cannot_change_an_order(app, book):
    order = _order(book)
    operator = sign_in(app, "operator")
    assert _act(operator, order, "assign", department="市生态环境局").status_code == 403
    assert book.get(order.number).status == "received"


def test_signed_out_goes_to_sign_in(client):
    reply = client.get("/dispatch")
    assert reply.status_code == 302 and "/staff/login" in reply.headers["Location"]


@pytest.mark.parametrize("role", ["dispatcher", "editor", "reviewer", "admin"])
def test_dispatcher_and_up_see_the_list(app, services, role):
    reply = sign_in(app, role).get("/dispatch")
    assert reply.status_code == 200 and "工单派单" in reply.get_data(as_text=True)


@pytest.mark.parametrize(
    ("role", "home"), [("operator", "/operator"), ("dispatcher", "/dispatch"), ("editor", "/admin/")]
)
def test_each_role_lands_on_its_own_page_after_signing_in(app, role, home):
    from tests.web.conftest import PASSWORD, csrf_of

    app.extensions["hotline"].accounts.create_user(f"{role}9", PASSWORD, role, actor="test")
    client = app.test_client()
    token = csrf_of(client)
    reply = client.post("/staff/login", data={"username": f"{role}9", "password": PASSWORD, "csrf_token": token})
    assert reply.status_code == 302 and reply.headers["Location"] == home
    assert client.get(home).status_code == 200


def test_dispatcher_may_not_edit_the_responsibility_list(dispatcher):
    assert dispatcher.get("/dispatch/departments").status_code == 403
    assert _post(dispatcher, "/dispatch/departments", name="新部门", duties="新职责").status_code == 403


def test_a_change_without_csrf_token_is_refused(dispatcher, book):
    order = _order(book)
    reply = dispatcher.post(f"/dispatch/orders/{order.number}/assign", data={"department": "市生态环境局"})
    assert reply.status_code == 400 and "CSRF" in reply.get_data(as_text=True)
    assert book.get(order.number).status == "received"


# -- an order's whole life through the page ----------------------------------------------------


def test_every_action_through_the_page_with_history_and_audit(dispatcher, book, services):
    order = _order(book, address="天河区体育西路 88 号", happened="每晚 23 点后")
    page = dispatcher.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert "职责“噪音污染投诉”与诉求最接近" in page and "天河区体育西路 88 号" in page and "每晚 23 点后" in page
    assert '<option value="市生态环境局" selected>' in page  # the suggestion is preselected
    assert "派单</button>" in page and "办结</button>" in page
    assert "记录回访</button>" not in page and "重新办理</button>" not in page and "开始办理</button>" not in page

    assert _act(dispatcher, order, "assign", department="市生态环境局", note="请尽快核查").status_code == 302
    assert book.get(order.number).department == "市生态环境局"
    page = dispatcher.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert "改派</button>" in page and "开始办理</button>" in page

    assert _act(dispatcher, order, "assign", department="市城市管理和综合执法局").status_code == 302
    assert _act(dispatcher, order, "start", note="已联系施工方").status_code == 302
    assert _act(dispatcher, order, "finish", reply="已责令停止夜间施工。", general="1").status_code == 302
    done = book.get(order.number)
    assert done.status == "done" and done.general_reply and done.reply == "已责令停止夜间施工。"
    assert _act(dispatcher, order, "reopen", note="市民反映仍在施工").status_code == 302
    assert _act(dispatcher, order, "finish", reply="已现场查处并处罚。").status_code == 302
    assert _act(dispatcher, order, "visit", result="satisfied", note="市民表示满意").status_code == 302
    final = book.get(order.number)
    assert final.status == "visited" and final.visit_result == "satisfied" and not final.general_reply

    page = dispatcher.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    history = page.split("办理记录")[1]
    expected = [
        "登记",
        "派单（承办部门：市生态环境局；说明：请尽快核查）",
        "改派（承办部门：市城市管理和综合执法局）",
        "开始办理（说明：已联系施工方）",
        "办结（答复：已责令停止夜间施工。；可转为知识库条目：是）",
        "重新办理（说明：市民反映仍在施工）",
        "回访（回访结果：满意；说明：市民表示满意）",
        "dispatcher1",
    ]
    for words in expected:
        assert words in history
    assert "工单已回访，办理结束，不能再更改" in page
    actions = _audit(services, order.number)
    for action in (
        "work_order.assign",
        "work_order.start",
        "work_order.finish",
        "work_order.reopen",
        "work_order.visit",
    ):
        assert action in actions
    row = services.accounts.audit_log(target=order.number)[0]
    assert (
        row["actor"] == "dispatcher1"
        and row["ip"]
        and row["detail"]
        == {
            "from": "done",
            "to": "visited",
            "result": "satisfied",
        }
    )


def test_received_order_can_be_closed_straight_away(dispatcher, book):
    order = _order(book)
    assert _act(dispatcher, order, "finish", reply="政策解答：可通过粤省事办理。").status_code == 302
    assert book.get(order.number).status == "done"


@pytest.mark.parametrize(
    ("action", "data", "status", "words"),
    [
        ("visit", {"result": "satisfied"}, 409, "工单当前为“待受理”，不能改为“已回访”"),
        ("start", {}, 409, "工单当前为“待受理”，不能改为“办理中”"),
        ("reopen", {"note": "再办"}, 409, "不能改为“办理中”"),
        ("finish", {"reply": ""}, 400, "「办理结果」不能为空"),
        ("finish", {"reply": "答" * 5001}, 400, "「办理结果」最多 5000 个字"),
        ("assign", {"department": "不存在的局"}, 400, "职责清单里没有“不存在的局”这个部门"),
        ("assign", {"department": ""}, 400, "请选择承办部门"),
    ],
)
def test_a_refused_change_shows_a_chinese_reason_on_the_page(dispatcher, book, services, action, data, status, words):
    order = _order(book)
    reply = _act(dispatcher, order, action, **data)
    assert reply.status_code == status
    assert words in reply.get_data(as_text=True)
    assert book.get(order.number).status == "received"
    assert f"work_order.{action}" not in _audit(services, order.number)


def test_visited_order_refuses_every_change(dispatcher, book):
    order = _order(book)
    book.finish(order.number, "已答复", actor="t")
    book.visit(order.number, "未联系上", actor="t")
    for action, data in [
        ("assign", {"department": "市公安局"}),
        ("finish", {"reply": "x"}),
        ("reopen", {"note": "再"}),
    ]:
        reply = _act(dispatcher, order, action, **data)
        assert reply.status_code == 409 and "工单已结束" in reply.get_data(as_text=True)


def test_reopen_needs_a_reason_and_visit_a_known_result(dispatcher, book):
    order = _order(book)
    book.finish(order.number, "已答复", actor="t")
    reply = _act(dispatcher, order, "reopen", note="")
    assert reply.status_code == 400 and "「重新办理原因」不能为空" in reply.get_data(as_text=True)
    reply = _act(dispatcher, order, "visit", result="还行")
    assert reply.status_code == 400 and "回访结果只能是：满意、不满意、未联系上" in reply.get_data(as_text=True)


def test_unknown_order_and_action_are_404(dispatcher, book):
    assert dispatcher.get("/dispatch/orders/GD20990101999999").status_code == 404
    order = _order(book)
    assert _act(dispatcher, order, "delete").status_code == 404
    assert _post(dispatcher, "/dispatch/orders/GD20990101999999/assign", department="市公安局").status_code == 404


def test_html_in_an_order_is_shown_as_text(dispatcher, book):
    order = _order(book, description="<script>alert(1)</script>楼下噪音😡")
    page = dispatcher.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;楼下噪音😡" in page


# -- the list ------------------------------------------------------------------------------------


def test_overdue_orders_are_highlighted_with_days(dispatcher, book):
    late = _order(book, description="路灯坏了很久没人修", now=datetime.now() - timedelta(days=9))  # 投诉: 5 days
    fresh = _order(book, description="小区垃圾没人清运")
    page = dispatcher.get("/dispatch").get_data(as_text=True)
    late_row = re.search(rf'<tr class="overdue">\s*<td><a [^>]+>{late.number}</a>.*?</tr>', page, re.S)
    assert late_row and "超期 4 天" in late_row.group(0)
    assert re.search(rf'<tr class="">\s*<td><a [^>]+>{fresh.number}</a>', page)
    only = dispatcher.get("/dispatch?overdue=1").get_data(as_text=True)
    assert late.number in only and fresh.number not in only
    assert "超期 4 天" in dispatcher.get(f"/dispatch/orders/{late.number}").get_data(as_text=True)


def test_filters_by_state_department_kind_and_text(dispatcher, book):
    noise = _order(book, description="工地夜间施工噪音")
    wages = _order(book, description="公司拖欠工资三个月", kind="help", suggestion=None)
    book.assign(noise.number, "市生态环境局", actor="t")

    def numbers(query):
        page = dispatcher.get("/dispatch" + query).get_data(as_text=True)
        return {n for n in (noise.number, wages.number) if n in page}

    assert numbers("") == {noise.number, wages.number}
    assert numbers("?state=dispatched") == {noise.number}
    assert numbers("?state=received") == {wages.number}
    assert numbers("?department=市生态环境局") == {noise.number}
    assert numbers("?department=__none__") == {wages.number}
    assert numbers("?kind=help") == {wages.number}
    assert numbers("?q=拖欠工资") == {wages.number}
    assert numbers(f"?q={noise.number.lower()}") == {noise.number}
    assert numbers("?state=nonsense&kind=bogus") == {noise.number, wages.number}  # unknown filters are ignored


def test_pagination(dispatcher, book):
    made = [_order(book, description=f"第 {i} 件诉求：楼下噪音") for i in range(32)]
    first = dispatcher.get("/dispatch").get_data(as_text=True)
    assert made[-1].number in first and made[1].number not in first and "下一页" in first
    second = dispatcher.get("/dispatch?page=2").get_data(as_text=True)
    assert made[1].number in second and made[0].number in second and "下一页" not in second and "上一页" in second


# -- personal data -------------------------------------------------------------------------------


def test_dispatcher_sees_masked_phone_until_the_return_visit(dispatcher, book, services):
    order = _order(book, description="来电人身份证440301199001011234，楼下噪音")
    page = dispatcher.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert PHONE not in page and "138****5678" in page and "440301********1234" in page
    assert "显示电话（回访用）" not in page
    assert PHONE not in dispatcher.get("/dispatch").get_data(as_text=True)
    reply = _post(dispatcher, f"/dispatch/orders/{order.number}/phone")
    assert reply.status_code == 409 and PHONE not in reply.get_data(as_text=True)
    assert "work_order.reveal_phone" not in _audit(services, order.number)

    book.finish(order.number, "已处理", actor="t")
    page = dispatcher.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert "显示电话（回访用）" in page and PHONE not in page
    reply = _post(dispatcher, f"/dispatch/orders/{order.number}/phone")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and PHONE in page and "440301********1234" in page  # only the phone
    row = services.accounts.audit_log(target=order.number)[0]
    assert row["action"] == "work_order.reveal_phone" and row["actor"] == "dispatcher1" and row["ip"]


def test_reviewer_sees_the_full_phone_and_the_view_is_audited(app, book, services):
    order = _order(book)
    reviewer = sign_in(app, "reviewer")
    page = reviewer.get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert PHONE in page and "显示电话（回访用）" not in page
    assert "work_order.view_unmasked" in _audit(services, order.number)


# -- the responsibility list ---------------------------------------------------------------------


@pytest.fixture
def reviewer(app, services):
    return sign_in(app, "reviewer")


def _find(services, name):
    return next(d for d in DepartmentList(services.db).all() if d.name == name)


def test_reviewer_adds_edits_and_deactivates_a_department(reviewer, services, book):
    page = reviewer.get("/dispatch/departments").get_data(as_text=True)
    assert "市生态环境局" in page and "全部部门（19）" in page
    reply = _post(
        reviewer, "/dispatch/departments", name="市林业局", duties="古树名木保护；林地管理", keywords="古树 林地"
    )
    assert reply.status_code == 302
    forest = _find(services, "市林业局")
    assert forest.keywords == ("古树", "林地") and forest.updated_by == "reviewer1"
    reply = _post(
        reviewer, f"/dispatch/departments/{forest.id}", name="市林业局", duties="古树名木保护", keywords="古树"
    )
    assert reply.status_code == 302 and _find(services, "市林业局").duties == "古树名木保护"
    assert _post(reviewer, f"/dispatch/departments/{forest.id}/active", active="0").status_code == 302
    assert not _find(services, "市林业局").active
    order = _order(book)
    reply = _act(sign_in(reviewer.application, "dispatcher"), order, "assign", department="市林业局")
    assert reply.status_code == 400 and "职责清单里没有“市林业局”" in reply.get_data(as_text=True)
    actions = {r["action"] for r in services.accounts.audit_log(actor="reviewer1")}
    assert {"department.add", "department.edit", "department.deactivate"} <= actions


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "", "duties": "职责"}, "「部门」不能为空"),
        ({"name": "市生态环境局", "duties": "重复"}, "职责清单里已经有“市生态环境局”"),
        ({"name": "……", "duties": "职责"}, "「部门」只有标点或符号"),
        ({"name": "新局", "duties": "职" * 2001}, "「职责」最多 2000 个字"),
    ],
)
def test_a_bad_department_is_refused_in_chinese(reviewer, services, fields, words):
    reply = _post(reviewer, "/dispatch/departments", **fields)
    assert reply.status_code == 400 and words in reply.get_data(as_text=True)
    assert len(DepartmentList(services.db).all()) == 19


def _upload(client, name, data):
    return client.post(
        "/dispatch/departments/import",
        data={"csrf_token": client.csrf, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _xlsx(rows):
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_import_an_excel_list(reviewer, services):
    data = _xlsx([["部门", "职责", "关键词", "区域"], ["市林业局", "古树名木保护", "古树、林地", ""],
                  ["市生态环境局", "噪音污染投诉", "噪音", ""]])  # fmt: skip
    reply = _upload(reviewer, "清单.xlsx", data)
    assert reply.status_code == 302
    assert _find(services, "市林业局").keywords == ("古树", "林地")
    assert _find(services, "市生态环境局").duties == "噪音污染投诉"
    detail = services.accounts.audit_log(actor="reviewer1")[0]
    assert detail["action"] == "department.import" and detail["detail"] == {"added": 1, "updated": 1}


def test_a_bad_file_imports_nothing_and_names_the_rows(reviewer, services):
    data = "部门,职责,关键词,区域\n市林业局,古树名木保护,古树,\n,没有部门名,,\n市林业局,重复,,\n".encode()
    reply = _upload(reviewer, "清单.csv", data)
    page = reply.get_data(as_text=True)
    assert reply.status_code == 400
    assert "清单.csv 第 3 行「部门」：「部门」不能为空" in page
    assert "清单.csv 第 4 行「部门」：“市林业局”与第 2 行重复" in page
    assert "市林业局" not in {d.name for d in DepartmentList(services.db).all()}


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("清单.txt", b"x", "只能从 Excel（.xlsx）或 CSV（.csv）文件导入"),
        ("清单.csv", "名称,说明\n甲,乙\n".encode(), "缺少必填列「部门」「职责」"),
        ("清单.csv", "部门,职责\n".encode(), "文件是空的"),
        ("清单.xlsx", b"not a zip", "不是 Excel .xlsx 文件"),
    ],
)
def test_unusable_files_are_refused_in_chinese(reviewer, name, data, words):
    reply = _upload(reviewer, name, data)
    assert reply.status_code == 400 and words in reply.get_data(as_text=True)


# -- the operator console's work-order form ------------------------------------------------------


def _operator_order(client, **changes):
    body = {"question": "被骗了怎么办", "description": "电信网络诈骗", "phone": PHONE, "region": "佛山市", **changes}
    return client.post("/operator/api/work_orders", json=body, headers={"X-CSRF-Token": client.csrf})


def test_console_offers_type_place_and_time(app, services):
    page = sign_in(app, "operator").get("/operator").get_data(as_text=True)
    assert '<option value="consult" selected>咨询</option>' in page and '<option value="report">举报</option>' in page
    assert 'name="address"' in page and 'name="happened"' in page


def test_operator_order_gets_type_place_time_and_the_suggestion(app, book, services):
    operator = sign_in(app, "operator")
    reply = _operator_order(operator, kind="report", happened="昨天下午三点")
    assert reply.status_code == 201, reply.json
    # The duty clause itself, so even the fake embedder of these tests is sure (cosine 1.0).
    assert reply.json["suggested_department"] == "市公安局" and reply.json["kind"] == "举报"
    order = book.get(reply.json["number"])
    assert (order.kind, order.happened) == ("report", "昨天下午三点")
    assert order.suggested_department == "市公安局" and "电信网络诈骗" in order.suggestion_reason
    page = sign_in(app, "dispatcher").get(f"/dispatch/orders/{order.number}").get_data(as_text=True)
    assert '<option value="市公安局" selected>' in page


def test_operator_order_type_defaults_to_consultation(app, book, services):
    reply = _operator_order(sign_in(app, "operator"), kind="", address="禅城区某某路 1 号")
    order = book.get(reply.json["number"])
    assert reply.status_code == 201 and (order.kind, order.address) == ("consult", "禅城区某某路 1 号")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"kind": "闲聊"}, "没有“闲聊”这种诉求类型"),
        ({"address": "！！！……"}, "「地点」只有标点或符号"),
        ({"happened": "时" * 201}, "时间最多 200 个字"),
        ({"kind": 3}, "诉求类型必须是文字"),
    ],
)
def test_operator_order_refuses_bad_fields_in_chinese(app, book, services, changes, words):
    reply = _operator_order(sign_in(app, "operator"), **changes)
    assert reply.status_code == 400 and words in reply.json["error"]
    assert book.orders() == []


# -- the dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_orders_per_department_with_overdue_in_red(app, book):
    late = _order(book, description="路灯坏了很久没人修", now=datetime.now() - timedelta(days=9))
    book.assign(late.number, "市城市管理和综合执法局", actor="t")
    closed = _order(book)
    book.assign(closed.number, "市城市管理和综合执法局", actor="t")
    book.finish(closed.number, "已修复", actor="t")
    _order(book, description="公司拖欠工资")  # not assigned yet
    page = sign_in(app, "editor").get("/admin/").get_data(as_text=True)
    table = page.split("各部门工单")[1].split("</table>")[0]
    row = re.search(r"<tr><td><a href=\"([^\"]+)\">市城市管理和综合执法局</a></td>(.*?)</tr>", table, re.S)
    assert row, table
    assert "department=%E5%B8%82%E5%9F%8E" in row.group(1)  # the dispatcher's list of that department
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(2), re.S)
    assert cells[0] == "1" and "1</a>" in cells[1] and cells[2] == "1"
    assert '<td class="num-overdue">' in row.group(2) and "overdue=1" in row.group(2)
    unassigned = re.search(r'<a href="([^"]+)">未派单</a></td>\s*<td>1</td><td>0</td><td>0</td>', table)
    assert unassigned and "department=__none__" in unassigned.group(1)
