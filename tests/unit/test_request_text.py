"""Parsing of requests and status queries (knowledge_base/plain/request_text.py): pure, no Rasa."""

from __future__ import annotations

import pytest

from knowledge_base.plain import request_text as rt

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "kind", "address", "happened", "name", "phone"),
    [
        (
            "我叫王五，电话13812345678，昨天晚上十点开始幸福路12号工地一直施工很吵，我要投诉",
            "complaint",
            "幸福路12号工地",
            "昨天晚上十点",
            "王五",
            "13812345678",
        ),
        ("我要举报有人在建设路88号门口占道经营", "report", "建设路88号门口", "", "", ""),
        ("求助，我家停水三天了，在阳光花园3栋", "help", "阳光花园3栋", "", "", ""),
        ("建议在人民公园门口加个红绿灯", "suggestion", "人民公园门口", "", "", ""),
        (
            "前天下午三点左右有人往河里倒垃圾，我想举报，手机138-1234-5678",
            "report",
            "",
            "前天下午三点左右",
            "",
            "13812345678",
        ),
        ("我姓李，电话幺三九 零零零零 一一一一，楼上漏水", "help", "", "", "李", "13900001111"),
        ("我要投訴，樓下大排檔好嘈", "complaint", "", "", "", ""),
    ],
)
def test_parse_request_takes_what_the_sentence_says(text, kind, address, happened, name, phone):
    said = rt.parse_request(text)
    assert (said.kind, said.address, said.happened, said.name, said.phone) == (kind, address, happened, name, phone)


@pytest.mark.parametrize("text", ["我要投诉", "我想举报", "我有个建议", "我要求助", "投诉", "。。。", "😡😡"])
def test_a_bare_request_has_no_description(text):
    assert rt.parse_request(text).description == ""


def test_the_description_keeps_the_matter_without_name_and_phone():
    said = rt.parse_request("我叫王五，电话13812345678，楼下烧烤店油烟太大")
    assert said.description == "楼下烧烤店油烟太大"


def test_a_huge_description_is_cut_and_markup_dropped():
    said = rt.parse_request("<script>x</script>楼下很吵" + "吵" * 10_000)
    assert len(said.description) == rt.MAX_DESCRIPTION and "<script>" not in said.description


def test_the_intent_gives_the_kind_when_the_words_do_not():
    assert rt.parse_request("路灯坏了好几天", "request_help").kind == "help"
    assert rt.parse_request("路灯坏了好几天").kind == ""


@pytest.mark.parametrize(
    "text",
    [
        "怎么投诉物业",
        "举报电话是多少",
        "投诉噪音找哪个部门",
        "去哪里举报违章建筑",
        "可以匿名举报吗",
        "點樣投訴",
        "投诉的渠道有哪些",
    ],
)
def test_questions_about_requests_are_questions(text):
    assert rt.asks_how(text) and not rt.is_request(text)


@pytest.mark.parametrize(
    "text", ["我要投诉物业不作为", "我要投诉，物业不管怎么办", "帮我查一下楼下的违建", "我想举报黑车"]
)
def test_requests_are_requests(text):
    assert rt.is_request(text) and not rt.asks_how(text)


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("幺三八一二三四五六七八", "13812345678"),
        ("1 3 8 - 1234 - 5678", "13812345678"),
        ("两零二六", "2026"),
        ("洞洞七", "007"),
    ],
)
def test_spoken_digits(said, digits):
    assert rt.spoken_digits(said) == digits


def test_spoken_digits_leave_words_alone():
    assert rt.spoken_digits("一个人住，三楼") == "一个人住，三楼"


@pytest.mark.parametrize(
    ("text", "number", "last4"),
    [
        ("GD20261130000001 5678", "GD20261130000001", "5678"),
        ("gd 2026 1130 000001，尾号五六七八", "GD20261130000001", "5678"),
        ("工单号二零二六一一三零零零零零零一", "GD20261130000001", ""),
        ("尾号是1234", "", "1234"),
        ("GD2026", "", ""),
        ("不知道", "", ""),
    ],
)
def test_parse_status_query(text, number, last4):
    assert rt.parse_status_query(text) == rt.StatusQuery(number, last4)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("确认", "yes"),
        ("对的", "yes"),
        ("没问题", "yes"),
        ("修改", "change"),
        ("电话写错了", "change"),
        ("嗯？", "yes"),
        ("随便", ""),
    ],
)
def test_confirmation(text, answer):
    assert rt.confirmation(text) == answer


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("地址", "address"),
        ("改一下时间", "happened"),
        ("名字不对", "contact_name"),
        ("手机号", "contact_phone"),
        ("事项", "description"),
        ("修改", ""),
    ],
)
def test_which_part(text, slot):
    assert rt.which_part(text) == slot


@pytest.mark.parametrize("text", ["不方便", "不想说", "不记得了", "匿名", "唔知"])
def test_declined(text):
    assert rt.declined(text)


@pytest.mark.parametrize("text", ["王五", "幸福路", "不方便说的事情我也说了很多"])
def test_not_declined(text):
    assert not rt.declined(text)


def test_punctuation_and_emoji_have_no_words():
    assert not rt.has_words("？！。…—") and not rt.has_words("🙂🙂") and rt.has_words("3栋")
