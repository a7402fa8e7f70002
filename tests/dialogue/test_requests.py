"""Requests (求助 / 投诉 / 举报 / 建议) become work orders, and citizens ask where they stand: website and hotline,
through the real Rasa server, action server and database."""

from __future__ import annotations

import re
import uuid

import pytest

from knowledge_base.orders.departments import DepartmentList
from knowledge_base.staff.interactions import InteractionStore
from tests.dialogue.conftest import Chat, buttons, texts
from tests.dialogue.test_hotline_channel import call, new_call

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

ONE_SENTENCE = "我叫王五，电话13812345678，昨天晚上十点开始幸福路12号工地一直施工很吵，我要投诉"


def chat(stack) -> Chat:
    return Chat(stack["rasa"], f"web-{uuid.uuid4().hex[:12]}")


def store(stack) -> InteractionStore:
    return InteractionStore(stack["data"] / "kb.sqlite3")


def registered(reply_text: str) -> str:
    """The work-order number the bot announced."""
    found = re.search(r"工单号：(GD\d{14})", reply_text)
    assert found, reply_text
    return found[1]


def test_a_request_in_one_sentence_goes_straight_to_the_summary_and_is_registered(stack):
    c = chat(stack)
    summary = texts(c.say(ONE_SENTENCE))
    assert "请核对您的工单" in summary
    for part in ("类型：投诉", "地点：幸福路12号工地", "时间：昨天晚上十点", "称呼：王五", "电话：13812345678"):
        assert part in summary, summary
    number = registered(texts(c.say("确认")))
    order = store(stack).orders.get(number)
    assert (order.kind, order.address, order.happened, order.name, order.phone, order.channel) == (
        "complaint",
        "幸福路12号工地",
        "昨天晚上十点",
        "王五",
        "13812345678",
        "web",
    )
    assert order.status == "received" and "施工很吵" in order.description


@pytest.mark.parametrize(
    ("first", "kind", "kind_name"),
    [
        ("我要投诉", "complaint", "投诉"),
        ("我要举报", "report", "举报"),
        ("我要求助", "help", "求助"),
        ("我有个建议", "suggestion", "建议"),
    ],
)
def test_each_request_type_asks_only_what_is_missing(stack, first, kind, kind_name):
    c = chat(stack)
    assert "是什么事情" in texts(c.say(first))
    assert "发生在哪里" in texts(c.say("小区门口的路灯坏了，晚上很黑"))
    assert "什么时候" in texts(c.say("阳光花园3栋门口"))
    assert "怎么称呼" in texts(c.say("上周五开始"))
    assert "联系电话" in texts(c.say("我姓张"))
    summary = texts(c.say("13900001111"))
    assert f"类型：{kind_name}" in summary and "地点：阳光花园3栋门口" in summary and "称呼：张" in summary
    assert {b["title"] for b in buttons(c.say("修改"))} >= {"地点", "电话"}  # which part?
    assert "联系电话" in texts(c.say("电话"))
    summary = texts(c.say("13900002222"))
    assert "电话：13900002222" in summary and "地点：阳光花园3栋门口" in summary  # only that part changed
    order = store(stack).orders.get(registered(texts(c.say(payload="/affirm"))))
    assert (order.kind, order.phone, order.happened) == (kind, "13900002222", "上周五开始")


def test_name_and_phone_may_be_declined_and_bad_answers_are_asked_again(stack):
    c = chat(stack)
    c.say("我要举报有人在河边倒垃圾")
    reply = texts(c.say("。。。！！？？"))
    assert "没听清地点" in reply
    c.say("人民公园东门")
    c.say("不记得了")
    assert "联系电话" in texts(c.say("不方便"))
    assert "不是电话号码" in texts(c.say("12345"))
    summary = texts(c.say("不方便"))
    assert "称呼：未提供" in summary and "电话：未提供" in summary and "时间：未提供" in summary
    done = texts(c.say("确认"))
    order = store(stack).orders.get(registered(done))
    assert order.name == "" and order.phone == "" and order.happened == "" and "12345" in done


def test_a_very_long_description_with_html_and_emoji_is_kept_short_and_plain(stack):
    c = chat(stack)
    c.say("我要投诉")
    long_text = "<b>楼下</b>装修😡太吵" + "很吵" * 5000  # the channel cuts a message at 2,000 characters
    reply = texts(c.say(long_text))
    assert "发生在哪里" in reply
    c.say("幸福路8号")
    c.say("今天")
    c.say("不方便")
    summary = texts(c.say("不方便"))
    assert "<b>" not in summary and "……" in summary
    order = store(stack).orders.get(registered(texts(c.say("确认"))))
    assert order.description.startswith("楼下装修😡太吵") and len(order.description) <= 2000


def test_a_question_about_complaining_is_answered_by_the_knowledge_base(stack):
    c = chat(stack)
    reply = texts(c.say("怎么投诉物业"))
    assert "请核对" not in reply and "是什么事情" not in reply


def open_order(stack, phone: str) -> str:
    s = store(stack)
    order = s.orders.create(channel="web", sender_id="seed", description="路灯不亮", kind="help", phone=phone)
    s.close()
    return order.number


def closed_order(stack) -> str:
    number = open_order(stack, phone="13700005678")
    s = store(stack)
    departments = DepartmentList(s.db)
    if "市城管局" not in [d.name for d in departments.all()]:
        departments.add("市城管局", "路灯、市容", "路灯", actor="test")
    s.orders.assign(number, "市城管局", actor="test")
    s.orders.start(number, actor="test")
    s.orders.finish(number, "路灯已于昨日修复。", actor="test")
    s.close()
    return number


def test_status_query_found_on_the_website(stack):
    number = closed_order(stack)
    c = chat(stack)
    assert "工单号" in texts(c.say("我的工单处理到哪了"))
    assert "后四位" in texts(c.say(number))
    reply = texts(c.say("5678"))
    assert "已办结" in reply and "市城管局" in reply and "路灯已于昨日修复" in reply


def test_wrong_digits_and_a_missing_order_get_the_same_answer(stack):
    number = open_order(stack, phone="13700009999")
    wrong = texts(chat(stack).say(f"查询工单进度，工单号{number}，手机尾号1111"))
    missing = texts(chat(stack).say("查询工单进度，工单号GD19990101999999，手机尾号9999"))
    assert wrong == missing and "没有查到" in wrong and "办理" not in wrong


def test_without_a_number_nothing_is_said(stack):
    c = chat(stack)
    c.say("我的工单处理到哪了")
    assert "GD开头" in texts(c.say("好像是一二三"))
    reply = texts(c.say("不知道"))
    assert "需要工单号和" in reply and "12345" in reply


def test_too_many_wrong_pairs_refer_to_a_person(stack):
    number = open_order(stack, phone="13700004321")
    c = chat(stack)
    for digits in ("0001", "0002", "0003", "0004", "0005"):
        assert "没有查到" in texts(c.say(f"查询工单进度 {number} 尾号{digits}"))
    reply = texts(c.say(f"查询工单进度 {number} 尾号4321"))  # right, but too late
    assert "次数过多" in reply and "12345" in reply and "待受理" not in reply


def spoken(data: dict) -> str:
    return "".join(data["speech"])


def test_hotline_request_in_one_sentence_with_spoken_digits(stack):
    call_id = new_call()
    said = "我叫王五，电话幺三八 一二三四 五六七八，昨天晚上十点开始幸福路12号工地一直施工很吵，我要投诉"
    summary = spoken(call(stack, {"call_id": call_id, "text": said, "region": "深圳市"}).json())
    assert "请核对" in summary and "一 三 八 一 二 三 四 五 六 七 八" in summary
    data = call(stack, {"call_id": call_id, "text": "确认"}).json()
    number = re.search(r"GD\d{14}", "".join(data["speech"]).replace(" ", "").translate(_DIGITS))
    assert number, data
    order = store(stack).orders.get(number[0])
    assert order.channel == "hotline" and order.phone == "13812345678" and order.region == "深圳市"
    assert "G D 二 零" in spoken(data)  # read digit by digit


_DIGITS = str.maketrans("零一二三四五六七八九", "0123456789")


def test_hotline_help_request_step_by_step(stack):
    call_id = new_call()
    assert "是什么事情" in spoken(call(stack, {"call_id": call_id, "text": "我要求助"}).json())
    call(stack, {"call_id": call_id, "text": "家里停水三天了"})
    call(stack, {"call_id": call_id, "text": "建设路88号"})
    call(stack, {"call_id": call_id, "text": "三天前"})
    call(stack, {"call_id": call_id, "text": "我姓陈"})
    data = call(stack, {"call_id": call_id, "text": "幺三九 零零零零 三三三三"}).json()
    assert "请核对" in spoken(data)
    confirm = next(o for o in data["options"] if o["title"] == "确认")
    done = call(stack, {"call_id": call_id, "payload": confirm["payload"]}).json()
    assert "工单号" in spoken(done)


def test_hotline_status_query_with_the_number_in_words(stack):
    number = closed_order(stack)
    call_id = new_call()
    assert "工单号" in spoken(call(stack, {"call_id": call_id, "text": "我的工单处理到哪了"}).json())
    in_words = " ".join("零一二三四五六七八九"[int(d)] for d in number[2:])
    call(stack, {"call_id": call_id, "text": f"GD {in_words}"})
    data = call(stack, {"call_id": call_id, "text": "五六七八"}).json()
    assert "已办结" in spoken(data) and "市城管局" in spoken(data)
    assert " ".join("零一二三四五六七八九"[int(d)] for d in number[2:8]) in spoken(data)


def test_cancelling_at_the_summary_registers_nothing_and_the_conversation_goes_on(stack):
    c = chat(stack)
    before = len(store(stack).orders.orders(limit=1000))
    assert "请核对" in texts(c.say(ONE_SENTENCE))
    assert "已取消" in texts(c.say("取消"))
    assert len(store(stack).orders.orders(limit=1000)) == before
    assert "挂失" in texts(c.say("社保卡丢了怎么补办"))
