"""Every state change the work-order book allows and refuses, and its bad input, on a real SQLite database.

The book is the only writer of ``work_orders`` and ``work_order_events``: each change is checked against
:mod:`knowledge_base.orders.states`, written with its history row in one transaction, and refused in Chinese.
"""

from __future__ import annotations

import threading

import pytest

from knowledge_base.errors import EntryNotFound, InvalidEntry
from knowledge_base.orders.book import MAX_DESCRIPTION, WorkOrderBook
from knowledge_base.orders.departments import DepartmentList
from knowledge_base.orders.states import STATES, TransitionError, next_states

pytestmark = pytest.mark.unit

NOISE = "楼下工地每晚十一点还在施工，噪音太大"


@pytest.fixture
def book(db):
    departments = DepartmentList(db)
    departments.add("市生态环境局", "噪音污染投诉", "噪音", actor="t")
    departments.add("市城市管理和综合执法局", "占道经营", "摊贩", actor="t")
    gone = departments.add("市旧部门", "已撤销的职责", actor="t")
    departments.set_active(gone.id, False, actor="t")
    return WorkOrderBook(db)


def _new(book, **fields):
    fields.setdefault("description", NOISE)
    fields.setdefault("phone", "13812345678")
    return book.create(channel="web", sender_id="s1", kind=fields.pop("kind", "complaint"), **fields)


def _history(book, number):
    return [(e.action, e.from_status, e.to_status, e.actor) for e in book.events(number)]


# -- the allowed paths -------------------------------------------------------------------------------


def test_the_whole_life_received_dispatched_in_progress_done_visited(book):
    order = _new(book)
    assert order.status == "received" and order.state_name == "待受理" and order.due_at is not None
    assert book.assign(order.number, "市生态环境局", actor="d1", note="请核查").status == "dispatched"
    assert book.start(order.number, actor="d1").status == "in_progress"
    done = book.finish(order.number, "已责令停止夜间施工", actor="d1", general=True)
    assert (done.status, done.reply, done.general_reply) == ("done", "已责令停止夜间施工", True)
    assert done.closed_at is not None and not done.is_open
    visited = book.visit(order.number, "满意", actor="d1", note="市民满意")
    assert (visited.status, visited.visit_result, visited.visit_name) == ("visited", "satisfied", "满意")
    assert _history(book, order.number) == [
        ("created", "", "received", "citizen"),
        ("assigned", "received", "dispatched", "d1"),
        ("started", "dispatched", "in_progress", "d1"),
        ("closed", "in_progress", "done", "d1"),
        ("visited", "done", "visited", "d1"),
    ]
    assert book.events(order.number)[1].detail == {"department": "市生态环境局", "note": "请核查"}


def test_received_straight_to_done(book):
    order = _new(book, kind="consult")
    assert book.finish(order.number, "政策解答", actor="d1").status == "done"


@pytest.mark.parametrize("state", ["dispatched", "in_progress"])
def test_reassign_from_dispatched_and_in_progress(book, state):
    order = _new(book)
    book.assign(order.number, "市生态环境局", actor="d1")
    if state == "in_progress":
        book.start(order.number, actor="d1")
    moved = book.assign(order.number, "市城市管理和综合执法局", actor="d2")
    assert (moved.status, moved.department) == ("dispatched", "市城市管理和综合执法局")


def test_progress_note_keeps_in_progress(book):
    order = _new(book)
    book.assign(order.number, "市生态环境局", actor="d1")
    book.start(order.number, actor="d1")
    assert book.start(order.number, actor="d1", note="已约谈施工方").status == "in_progress"
    assert book.events(order.number)[-1].detail == {"note": "已约谈施工方"}


def test_reopen_from_done_clears_the_closing(book):
    order = _new(book)
    book.finish(order.number, "已处理", actor="d1", general=True)
    reopened = book.reopen(order.number, actor="d1", note="市民反映仍在施工")
    assert (reopened.status, reopened.closed_at, reopened.general_reply) == ("in_progress", None, False)
    assert book.finish(order.number, "已处罚", actor="d1").status == "done"


@pytest.mark.parametrize("result", ["satisfied", "unsatisfied", "unreachable", "满意", "不满意", "未联系上"])
def test_every_visit_result(book, result):
    order = _new(book)
    book.finish(order.number, "已处理", actor="d1")
    assert book.visit(order.number, result, actor="d1").visit_name in ("满意", "不满意", "未联系上")


# -- the refused changes -----------------------------------------------------------------------------


def _in_state(book, state):
    order = _new(book)
    path = {
        "received": [],
        "dispatched": [lambda n: book.assign(n, "市生态环境局", actor="t")],
        "in_progress": [lambda n: book.assign(n, "市生态环境局", actor="t"), lambda n: book.start(n, actor="t")],
        "done": [lambda n: book.finish(n, "已处理", actor="t")],
        "visited": [lambda n: book.finish(n, "已处理", actor="t"), lambda n: book.visit(n, "满意", actor="t")],
    }[state]
    for step in path:
        step(order.number)
    return order


def _change(book, number, target):
    return {
        "received": lambda: book.update(number, "received", actor="t"),
        "dispatched": lambda: book.assign(number, "市城市管理和综合执法局", actor="t"),
        "in_progress": lambda: book.update(number, "in_progress", actor="t", note="再办"),
        "done": lambda: book.finish(number, "答复", actor="t"),
        "visited": lambda: book.visit(number, "满意", actor="t"),
    }[target]()


@pytest.mark.parametrize(("state", "target"), [(s, t) for s in STATES for t in STATES if t not in next_states(s)])
def test_every_change_the_state_does_not_allow_is_refused_and_changes_nothing(book, state, target):
    order = _in_state(book, state)
    before = book.get(order.number)
    events = len(book.events(order.number))
    with pytest.raises(TransitionError) as refused:
        _change(book, order.number, target)
    assert "不能改为" in str(refused.value)
    assert book.get(order.number) == before and len(book.events(order.number)) == events


@pytest.mark.parametrize(("state", "target"), [(s, t) for s in STATES for t in next_states(s)])
def test_every_change_the_state_allows_is_made(book, state, target):
    order = _in_state(book, state)
    assert _change(book, order.number, target).status == target


def test_visited_is_final(book):
    order = _in_state(book, "visited")
    assert next_states("visited") == ()
    for target in STATES:
        with pytest.raises(TransitionError, match="工单已结束"):
            _change(book, order.number, target)


def test_a_concurrent_change_of_the_same_order_lands_once(book, db):
    """Two dispatchers close the same order at once: one wins, the other is told to refresh."""
    order = _new(book)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def close(who):
        barrier.wait()
        try:
            book.finish(order.number, f"{who} 的答复", actor=who)
            results.append("ok")
        except TransitionError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=close, args=(f"d{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0] == "ok" and results.count("ok") == 1
    assert ("工单刚被别人改过" in sorted(results)[1]) or ("不能改为" in sorted(results)[1])
    assert [e.action for e in book.events(order.number)].count("closed") == 1


# -- bad input -----------------------------------------------------------------------------------------


def test_a_10000_character_description_is_refused(book):
    with pytest.raises(InvalidEntry, match=f"最多 {MAX_DESCRIPTION} 个字，现在有 10000 个字"):
        _new(book, description="噪" * 10_000)
    assert book.orders() == []


def test_a_10000_character_reply_is_refused_and_the_order_stays_open(book):
    order = _new(book)
    with pytest.raises(InvalidEntry, match="「办理结果」最多 5000 个字"):
        book.finish(order.number, "答" * 10_000, actor="d1")
    assert book.get(order.number).status == "received"


def test_emoji_and_html_are_kept_as_text(book):
    text = "<script>alert('x')</script>楼下噪音😡&amp;"
    order = _new(book, description=text, address="<b>天河路</b> 🏠")
    assert book.get(order.number).description == text and order.address == "<b>天河路</b> 🏠"
    done = book.finish(order.number, "<i>已处理</i> 👍", actor="d1")
    assert done.reply == "<i>已处理</i> 👍"


@pytest.mark.parametrize("phone", ["12345", "call me", "1381234567x", "+1 555 0100"])
def test_a_phone_that_is_not_a_phone_is_refused(book, phone):
    with pytest.raises(InvalidEntry, match="不是手机号或带区号的固定电话"):
        _new(book, phone=phone)
    assert book.orders() == []


@pytest.mark.parametrize("address", ["！！！", "……，。", "---", "???"])
def test_an_address_of_only_punctuation_is_refused(book, address):
    with pytest.raises(InvalidEntry, match="「地点」只有标点或符号"):
        _new(book, address=address)


@pytest.mark.parametrize("department", ["不存在的局", "市旧部门", "", "   "])
def test_an_unknown_or_inactive_department_is_refused(book, department):
    order = _new(book)
    with pytest.raises(InvalidEntry) as refused:
        book.assign(order.number, department, actor="d1")
    assert refused.value.field == "department" and (
        "职责清单里没有" in refused.value.message or "请选择" in refused.value.message
    )
    assert book.get(order.number).status == "received"


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.assign("GD20990101999999", "市生态环境局", actor="t"),
        lambda b: b.start("GD20990101999999", actor="t"),
        lambda b: b.finish("GD20990101999999", "答复", actor="t"),
        lambda b: b.reopen("GD20990101999999", actor="t", note="再办"),
        lambda b: b.visit("GD20990101999999", "满意", actor="t"),
        lambda b: b.update("GD20990101999999", "done", actor="t", reply="答复"),
        lambda b: b.get("GD20990101999999"),
        lambda b: b.events("GD20990101999999"),
    ],
)
def test_an_order_that_does_not_exist(book, change):
    with pytest.raises(EntryNotFound, match="没有工单"):
        change(book)


def test_an_unknown_request_type_is_refused(book):
    with pytest.raises(InvalidEntry, match="没有“闲聊”这种诉求类型"):
        _new(book, kind="闲聊")


# -- the department suggestion -------------------------------------------------------------------------


def test_the_suggestion_is_asked_with_description_address_and_region(db):
    asked: list[tuple[str, str]] = []

    def suggest(text, region):
        asked.append((text, region))
        return "市生态环境局", "职责“噪音污染投诉”与诉求最接近（相似度 95%）"

    book = WorkOrderBook(db, suggest=suggest)
    order = _new(book, address="天河路 1 号", region="广州市")
    assert asked == [(f"{NOISE} 天河路 1 号", "广州市")]
    assert (order.suggested_department, order.suggestion_reason) == (
        "市生态环境局",
        "职责“噪音污染投诉”与诉求最接近（相似度 95%）",
    )
    assert book.events(order.number)[0].detail == {"suggested_department": "市生态环境局"}


def test_a_given_suggestion_is_not_asked_again(db):
    book = WorkOrderBook(db, suggest=lambda text, region: pytest.fail("asked although given"))
    order = _new(book, suggestion=("市公安局", "话务员选择"))
    assert order.suggested_department == "市公安局"


def test_a_failing_matcher_never_stops_an_order(db, caplog):
    def broken(text, region):
        raise RuntimeError("model folder missing")

    order = _new(WorkOrderBook(db, suggest=broken))
    assert order.status == "received" and order.suggested_department == "" and order.suggestion_reason == ""
    assert "department suggestion failed" in caplog.text


def test_no_suggestion_below_the_floor_leaves_it_empty(db):
    order = _new(WorkOrderBook(db, suggest=lambda text, region: None))
    assert order.suggested_department == ""
