"""Pure helpers of the dialogue: follow-ups, region choice, speech output, request checks."""

from __future__ import annotations

import pytest

from actions.context import cities_that_differ, follow_up_query, is_follow_up
from bot.channels.speech import sentences, speakable, to_speech
from knowledge_base.plain.privacy import mask, normalise_phone

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("那需要带什么材料？", True),
        ("在哪里办？", True),
        ("要多久", True),
        ("那如果我是外地户口呢？", True),
        ("港澳通行证怎么续签", False),
        ("我想问一下公积金提取需要什么材料，我是在深圳工作的外地人", False),
        ("", False),
    ],
)
def test_is_follow_up(text, expected):
    assert is_follow_up(text) is expected


def test_follow_up_query_keeps_the_topic():
    assert follow_up_query("港澳通行证怎么续签？", " 要带什么") == "港澳通行证怎么续签？ 要带什么"


@pytest.mark.parametrize(
    ("regions", "cities"),
    [
        ([[("广东省", "深圳市")], [("广东省", "广州市")]], ["深圳市", "广州市"]),
        ([[("广东省", "深圳市")], [("广东省", "")]], []),
        ([[("广东省", "")], [("广东省", "")]], []),
        ([[("广东省", "深圳市")], [("广东省", "深圳市")]], []),
    ],
)
def test_cities_that_differ(regions, cities):
    assert cities_that_differ(regions) == cities


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("详见 https://www.gdzwfw.gov.cn/ 。", "详见。"),
        ("自2024-01-01起施行", "自2024年1月1日起施行。"),
        ("请拨打12333咨询", "请拨打一 二 三 三 三咨询。"),
        ("**注意**：带上<b>身份证</b>", "注意：带上身份证。"),
        ("第一行\n第二行", "第一行。第二行。"),
    ],
)
def test_speakable(text, spoken):
    assert speakable(text) == spoken


def test_long_sentences_are_split_for_the_caller():
    text = (
        "持本人身份证、户口簿到户籍所在地派出所办理，也可以通过粤省事预约，"
        "办理时需要现场拍照并采集指纹，一般十个工作日出证。"
    )
    parts = sentences(text)
    assert len(parts) > 1 and "".join(parts) == text and all(len(p) <= 40 for p in parts[:-1])


def test_to_speech_turns_buttons_into_keypad_prompts_and_flags_handoff():
    out = to_speech(
        [
            {
                "text": "您是想问：",
                "buttons": [
                    {"title": "甲", "payload": '/choose_entry{"entry_key": "A"}'},
                    {"title": "转人工", "payload": "/request_human"},
                ],
            },
            {"custom": {"type": "handoff", "work_order": "GD1"}},
        ]
    )
    assert out["prompt"] == "甲请按1；转人工请按0。"
    assert [o["digit"] for o in out["options"]] == ["1", "0"] and out["handoff"] and out["work_order"] == "GD1"


def test_a_request_registered_by_the_bot_gives_its_number_without_a_transfer():
    out = to_speech(
        [
            {"text": "已为您登记投诉，工单号：GD20261130000007。"},
            {"custom": {"type": "work_order", "work_order": "GD20261130000007", "kind": "complaint"}},
        ]
    )
    assert out["work_order"] == "GD20261130000007" and out["handoff"] is False


def test_the_source_is_read_out_after_the_answer():
    out = to_speech(
        [
            {"text": "持身份证到窗口办理。"},
            {
                "custom": {
                    "type": "source",
                    "department": "市公安局",
                    "policy_title": "《居住证暂行条例》",
                    "policy_number": "国务院令第663号",
                    "effective_date": "2016-01-01",
                }
            },
        ]
    )
    assert out["speech"][0] == "持身份证到窗口办理。"
    assert "承办单位是市公安局" in "".join(out["speech"]) and "2016年1月1日" in "".join(out["speech"])


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我的电话13812345678", "我的电话138****5678"),
        ("座机020-12345678", "座机020-****5678"),
        ("身份证号44030119900101123X", "身份证号440301********123X"),
        ("工单GD20261126000001", "工单GD20261126000001"),
    ],
)
def test_mask(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("138 1234 5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("020-12345678", "020-12345678"),
        ("12345", None),
        ("不方便", None),
        ("", None),
    ],
)
def test_normalise_phone(text, phone):
    assert normalise_phone(text) == phone
