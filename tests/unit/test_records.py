"""Entry validation and region matching."""

from __future__ import annotations

from datetime import date

import pytest

from knowledge_base.errors import InvalidEntry
from knowledge_base.records import Entry, PolicyBasis, Region, Status

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"question": "  "}, "question"),
        ({"question": "问" * 2001}, "question"),
        ({"answer": "bad\x00char"}, "answer"),
        ({"status": "live"}, "status"),
        ({"effective_date": date(2025, 1, 2), "expiry_date": date(2025, 1, 1)}, "expiry_date"),
        ({"key": "has space"}, "id"),
        ({"regions": ("",)}, "regions"),
        ({"similar_questions": ("",)}, "similar_questions"),
        ({"version": -1}, "version"),
    ],
)
def test_bad_values_name_their_field(changes, field):
    with pytest.raises(InvalidEntry) as err:
        Entry(**{"question": "社保怎么查", **changes})
    assert err.value.field == field


def test_policy_link_must_be_http():
    with pytest.raises(InvalidEntry, match="http"):
        PolicyBasis(url="javascript:alert(1)")


def test_similar_questions_are_deduplicated_and_exclude_the_question():
    e = Entry(question="社保怎么查", similar_questions=("社保怎么查", "社保在哪查", "社保在哪查 "))
    assert e.similar_questions == ("社保在哪查",)


@pytest.mark.parametrize("status", ["published", "PUBLISHED", "已发布", Status.PUBLISHED])
def test_status_accepts_names_and_chinese(status):
    assert Entry(question="q", status=status).status is Status.PUBLISHED


@pytest.mark.parametrize(
    ("entry_region", "where", "applies"),
    [
        ("广东省", Region("广东省", "深圳市"), True),
        ("广东省/深圳市", Region("", "深圳"), True),
        ("广东省/深圳市", Region("广东省", "广州市"), False),
        ("广东省/深圳市/南山区", Region("广东省", "深圳市"), True),
        ("广东省/深圳市/南山区", Region("广东省", "深圳市", "福田区"), False),
        ("湖南省", Region("广东省"), False),
    ],
)
def test_region_covers(entry_region, where, applies):
    assert Region.parse(entry_region).covers(where) is applies


def test_in_effect_respects_status_and_dates():
    today = date(2026, 11, 26)
    assert Entry(question="q").in_effect(today)
    assert not Entry(question="q", status=Status.DRAFT).in_effect(today)
    assert not Entry(question="q", expiry_date=date(2026, 11, 25)).in_effect(today)
    assert Entry(question="q", expiry_date=today).in_effect(today)
    assert not Entry(question="q", effective_date=date(2026, 11, 27)).in_effect(today)


def test_dict_round_trip_keeps_every_field():
    e = Entry(
        key="GD-1",
        question="问",
        answer="答\n第二行",
        similar_questions=("一", "二"),
        department="部门",
        category="类",
        regions=(Region("广东省", "深圳市"),),
        policy=PolicyBasis("《办法》", "粤府〔2024〕1号", "https://www.gd.gov.cn/"),
        effective_date=date(2024, 1, 1),
        expiry_date=date(2030, 1, 1),
        status=Status.IN_REVIEW,
        tags=("示例数据",),
    )
    assert Entry.from_dict(e.to_dict()) == e
