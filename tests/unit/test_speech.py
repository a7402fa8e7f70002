"""What callers hear (knowledge_base/plain/speech.py): one implementation for the hotline channel and the console."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bot.channels.speech as channel_speech
from knowledge_base.plain import speech
from knowledge_base.plain.speech import sentences, speakable, spoken_answer, spoken_source
from tests.conftest import REPO

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("登录粤省事查询。", "登录粤省事查询。"),
        ("详见 https://www.gdzwfw.gov.cn/ 。", "详见。"),
        ("网址www.gd.gov.cn", "网址。"),
        ("自2024-1-5起", "自2024年1月5日起。"),
        ("工单号GD20261126000001", "工单号G D 二 零 二 六 一 一 二 六 零 零 零 零 零 一。"),
        ("拨打12345或1234", "拨打一 二 三 四 五或1234。"),
        ("<b>注意</b>：`代码` # 标题 [链接]", "注意：代码  标题 链接。"),
        ("材料（）齐全", "材料齐全。"),
        ("第一行\n\n  第二行\n", "第一行。第二行。"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_speakable(text, spoken):
    assert speakable(text) == spoken


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("先预约。再办理！要多久？三天；", ["先预约。", "再办理！", "要多久？", "三天；"]),
        ("", []),
        ("没有标点的一句话", ["没有标点的一句话"]),
    ],
)
def test_sentences_split_at_the_end_of_each(text, parts):
    assert sentences(text) == parts


def test_long_sentences_are_split_at_commas_and_nothing_is_lost():
    text = "甲" * 30 + "，" + "乙" * 30 + "，" + "丙" * 30 + "。"
    parts = sentences(text)
    assert "".join(parts) == text and len(parts) == 3 and all(len(p) <= speech.MAX_SENTENCE for p in parts)


def test_a_long_sentence_without_commas_stays_whole():
    assert sentences("长" * 100) == ["长" * 100]


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ({}, ""),
        ({"department": "", "policy_title": None}, ""),
        ({"department": "市公安局"}, "以上答复，承办单位是市公安局。"),
        ({"policy_title": "《条例》", "policy_number": "国务院令第663号"}, "以上答复，依据《条例》 国务院令第663号。"),
        (
            {"department": "市公安局", "policy_title": "《条例》", "effective_date": "2016-01-01"},
            "以上答复，承办单位是市公安局，依据《条例》，自2016-01-01起施行。",
        ),
    ],
)
def test_spoken_source(source, said):
    assert spoken_source(source) == said


def test_spoken_answer_reads_the_answer_then_its_source():
    out = spoken_answer("请拨打12333。详见 https://x.gov.cn", {"department": "人社局", "effective_date": "2024-01-01"})
    assert out == ["请拨打一 二 三 三 三。", "详见。", "以上答复，承办单位是人社局，自2024年1月1日起施行。"]
    assert spoken_answer("只读答案", None) == ["只读答案。"]
    assert spoken_answer("", {}) == []


def test_the_hotline_channel_uses_the_same_functions():
    for name in ("speakable", "sentences", "spoken_source", "MAX_SENTENCE"):
        assert getattr(channel_speech, name) is getattr(speech, name)
    out = channel_speech.to_speech([{"text": "自2024-01-01起，请拨打12345。"}])
    assert out["speech"] == ["自2024年1月1日起，请拨打一 二 三 四 五。"]


def test_speech_imports_only_the_standard_library():
    # It runs inside the Rasa process too, where none of our dependencies are installed.
    code = (
        "import sys; before = set(sys.modules); import knowledge_base.plain.speech; "
        "extra = sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'knowledge_base'); "
        "print(','.join(extra))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, knowledge_base.plain.speech; "
            "print(sorted(m for m in sys.modules if m.startswith('knowledge_base')))",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    # The package stays light: importing one plain module loads nothing else of ours.
    assert loaded.stdout.strip() == "['knowledge_base', 'knowledge_base.plain', 'knowledge_base.plain.speech']"


def _spoken_everywhere(text: str) -> list[str]:
    return channel_speech.to_speech([{"text": text}])["speech"]


@pytest.fixture(scope="module")
def sample_texts() -> list[tuple[str, str]]:
    from knowledge_base.transfer import read_entries

    entries = read_entries(REPO / "knowledge_base" / "sample" / "guangdong_kb.yaml")
    texts = [(f"{e.key} 答案", e.answer) for e in entries]
    texts += [(f"{e.key} {aspect.label}", text) for e in entries for aspect, text in e.guide.items()]
    return texts


def test_no_spoken_fragment_of_any_sample_answer_or_aspect_is_punctuation_only(sample_texts):
    """Property over the whole sample knowledge base: what the hotline speaks is words, never a bare 。."""
    import re

    assert len(sample_texts) > 182
    for where, text in sample_texts:
        spoken = _spoken_everywhere(text)
        assert spoken, where
        for sentence in spoken:
            assert re.search(r"[^\W_]", sentence), (where, sentence)
            assert "http" not in sentence and "。。" not in sentence and "：。" not in sentence, (where, sentence)


def test_the_clarification_is_spoken_as_a_question_with_its_options():
    from actions import replies

    said = channel_speech.to_speech(
        [{"text": replies.CHOOSE_PROMPT, "buttons": [{"title": "社保卡丢了怎么补办", "payload": "/choose_entry"}]}]
    )
    assert said["speech"][0] == "您是想问下面哪个问题？"
    assert said["prompt"].startswith("社保卡丢了怎么补办请按1")


@given(st.text(alphabet=st.sampled_from(list("。：，、？！\n 社保a1😀（）")), max_size=40))
def test_no_fragment_is_punctuation_only_whatever_the_text(text):
    import re

    for sentence in sentences(speakable(text)):
        assert re.search(r"[^\W_]", sentence), (text, sentence)
