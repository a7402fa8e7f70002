"""Which reply a message gets (actions/routing.py) and which aspect a follow-up asks for (plain/aspects.py)."""

from __future__ import annotations

import pytest

from actions.routing import NoAnswerReply, split_preamble, when_kb_has_nothing
from knowledge_base.plain.aspects import ASPECTS, GUIDE_ORDER, follow_up_aspect

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "question", "name"),
    [
        ("你好，我想问一下低保什么时候发放", "低保什么时候发放", ""),
        ("喂，你好，请问一下，公积金怎么取", "公积金怎么取", ""),
        ("我叫王五，我的低保什么时候发放", "我的低保什么时候发放", "王五"),
        ("我姓李，想问下医保", "医保", "李"),
        ("您好益肺清化颗粒甜不甜", "益肺清化颗粒甜不甜", ""),
        ("早晨，唔该问下点样补办身份证", "点样补办身份证", ""),
        ("我知道了", "我知道了", ""),
        ("我是外地户口能办居住证吗", "我是外地户口能办居住证吗", ""),
        ("您好！", "", ""),
        ("我叫王五。", "", "王五"),
        ("？？？", "", ""),
        ("😀😀", "", ""),
    ],
)
def test_split_preamble(text, question, name):
    said = split_preamble(text)
    assert (said.question, said.name) == (question, name)


@pytest.mark.parametrize(
    ("intent", "confidence", "question", "dense", "reply"),
    [
        ("thank", 0.9, "谢谢", 0.8, NoAnswerReply.DIALOGUE_ACT),
        ("thank", 0.3, "谢谢", 0.8, NoAnswerReply.NO_ANSWER),  # the classifier is unsure: offer a human
        ("affirm", 0.9, "我想知道残疾人两项补贴每个月发多少钱", 0.9, NoAnswerReply.NO_ANSWER),
        ("out_of_scope", 0.9, "讲个笑话", 0.86, NoAnswerReply.OUT_OF_SCOPE),
        ("out_of_scope", 0.9, "今年个税专项附加扣除有什么变化", 0.93, NoAnswerReply.NO_ANSWER),
        ("out_of_scope", 0.9, "讲个笑话", None, NoAnswerReply.OUT_OF_SCOPE),
        ("ask_policy", 0.9, "低保什么时候发放", 0.85, NoAnswerReply.NO_ANSWER),
        ("nlu_fallback", 0.2, "啊啊啊", None, NoAnswerReply.NO_ANSWER),
    ],
)
def test_when_the_knowledge_base_has_nothing(intent, confidence, question, dense, reply):
    assert when_kb_has_nothing(intent, confidence, question, dense) is reply


@pytest.mark.parametrize(
    ("text", "aspect"),
    [
        ("那需要带什么材料？", "materials"),
        ("要带啥", "materials"),
        ("多久能办好", "time_limit"),
        ("要多久", "time_limit"),
        ("在哪里办", "location"),
        ("那在哪里交", "location"),
        ("要钱吗", "fees"),
        ("收费吗", "fees"),
        ("能网上办吗", "online"),
        ("有什么条件", "conditions"),
        ("需要什么条件", "conditions"),
        ("需要什么", "materials"),
        ("什么时候能办好", "time_limit"),
        ("怎么办理", "procedure"),
        ("电话多少", "enquiry_phone"),
        ("港澳通行证续签要带什么材料", None),
        ("社保怎么办理", None),
        ("好的谢谢", None),
        ("", None),
        ("材料" * 30, None),
    ],
)
def test_follow_up_aspect(text, aspect):
    found = follow_up_aspect(text)
    assert (found.name if found else None) == aspect


def test_every_aspect_is_in_the_guide_order_once():
    assert sorted(a.name for a in ASPECTS) == sorted(GUIDE_ORDER)
    assert [follow_up_aspect(a.label) for a in ASPECTS] == list(ASPECTS)
