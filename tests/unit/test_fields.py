"""The one description of an entry's fields: names, labels, headers and the list rule."""

from __future__ import annotations

from datetime import date

import pytest

from knowledge_base.fields import COLUMNS, FIELDS, FIELDS_BY_NAME, Field, Kind, field_for_header, label, parse_date
from knowledge_base.records import Entry, PolicyBasis, Region

pytestmark = pytest.mark.unit

LIST_FIELDS = [f.name for f in FIELDS if f.kind is Kind.LIST]


def test_the_fields_are_the_keys_of_to_dict_in_order() -> None:
    full = Entry(question="q", policy=PolicyBasis("t", "n", "https://x.cn"), tags=("a",)).to_dict()
    assert list(full) == list(COLUMNS) == [f.name for f in FIELDS]


def test_labels_are_unique_chinese_names() -> None:
    labels = [f.label for f in FIELDS]
    assert len(set(labels)) == len(labels)
    assert all(not text.isascii() for text in labels)


def test_every_list_field_and_only_those_split() -> None:
    assert LIST_FIELDS == ["similar_questions", "regions", "tags"]
    with pytest.raises(ValueError, match="not a list"):
        FIELDS_BY_NAME["question"].split("a\nb")


@pytest.mark.parametrize(
    ("name", "text", "items"),
    [
        ("tags", "社保，转移", ("社保", "转移")),
        ("tags", "社保, 转移;医保；公积金、低保", ("社保", "转移", "医保", "公积金", "低保")),
        ("tags", "社保\r\n转移\r医保\n", ("社保", "转移", "医保")),
        ("tags", " ,，\n 、 ", ()),
        ("tags", "", ()),
        ("regions", "广东省/深圳市\n广东省/广州市", ("广东省/深圳市", "广东省/广州市")),
        ("regions", "广东省/深圳市、广东省/广州市", ("广东省/深圳市", "广东省/广州市")),
        # a question may contain commas and 、: only line breaks separate similar questions
        ("similar_questions", "社保，怎么转移？\n身份证、户口本丢了\r\n", ("社保，怎么转移？", "身份证、户口本丢了")),
        ("similar_questions", "  \n\n 问一 \n", ("问一",)),
    ],
)
def test_split(name: str, text: str, items: tuple[str, ...]) -> None:
    assert FIELDS_BY_NAME[name].split(text) == items


@pytest.mark.parametrize("name", LIST_FIELDS)
def test_join_then_split_gives_the_items_back(name: str) -> None:
    field = FIELDS_BY_NAME[name]
    items = field.split("甲\n乙，丙\n丁、戊")
    assert field.split(field.join(items)) == items
    assert field.join(field.split(field.join(items))) == field.join(items)


def test_items_of_a_list_follow_the_same_rule_as_text() -> None:
    tags = FIELDS_BY_NAME["tags"]
    assert tags.items(["社保，转移", " 医保 ", ""]) == tags.split("社保，转移\n 医保 \n")
    assert FIELDS_BY_NAME["similar_questions"].items(["一，二", "三\n四"]) == ("一，二", "三", "四")


def test_region_and_tag_names_never_hold_a_separator_of_their_own() -> None:
    # why regions and tags may split on commas: a written region (省/市/区) has none
    assert str(Region("广东省", "深圳市", "南山区")) == "广东省/深圳市/南山区"
    assert FIELDS_BY_NAME["regions"].split(str(Region("广东省", "深圳市"))) == ("广东省/深圳市",)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("question", "question"),
        (" QUESTION ", "question"),
        ("标准问", "question"),
        ("标准问 *", "question"),
        ("标准问＊", "question"),
        ("标准问题", "question"),
        ("政策文件", "policy_title"),
        ("政策链接", "policy_url"),
        ("链接", "policy_url"),
        ("编号", "id"),
        ("更新时间", "updated_at"),
        ("备注", None),
        (None, None),
        (2024, None),
    ],
)
def test_field_for_header(header: object, name: str | None) -> None:
    assert field_for_header(header) == name


def test_every_label_and_alias_reads_back_as_its_field() -> None:
    for f in FIELDS:
        assert {field_for_header(h) for h in (f.name, f.label, *f.aliases)} == {f.name}
        assert label(f.name) == f.label


@pytest.mark.parametrize(
    ("text", "day"),
    [("2024-01-05", date(2024, 1, 5)), ("2024/1/5", date(2024, 1, 5)), (" 2024.01.05 ", date(2024, 1, 5)), ("", None)],
)
def test_parse_date(text: str, day: date | None) -> None:
    assert parse_date(text) == day


@pytest.mark.parametrize("text", ["2024-02-30", "yesterday", "20240105", "2024-1"])
def test_parse_date_refuses_what_is_not_a_day(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date(text)


def test_a_field_description_is_checked() -> None:
    with pytest.raises(ValueError, match="only list fields"):
        Field("x", "甲", Kind.TEXT, separators=(",",))
    with pytest.raises(ValueError, match="line break"):
        Field("x", "甲", Kind.LIST, separators=("\n",))
