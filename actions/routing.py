"""Which reply a message gets: the knowledge base's, a dialogue act's, or "out of scope". No Rasa, no I/O.

The knowledge base defines what the bot can answer, not the intent classifier: every
typed message is searched first, and the classifier's intent only chooses the reply
when the knowledge base has nothing (a "谢谢" or "好的" is not a question). A message
is turned away as out of scope only when the classifier says so and nothing in the
knowledge base comes near it.

Example:
    >>> split_preamble("你好，我想问一下低保什么时候发放")
    Preamble(question='低保什么时候发放', name='', greeted=True)
    >>> split_preamble("我叫王五，我的低保什么时候发放")
    Preamble(question='我的低保什么时候发放', name='王五', greeted=False)
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

DIALOGUE_ACTS = frozenset(
    {"greet", "goodbye", "thank", "affirm", "deny", "feedback_useful", "feedback_useless", "give_phone", "give_name"}
)
"""Intents that are a turn of the conversation rather than a question (replied to when the KB has nothing)."""

# A dialogue act is short: "好的，谢谢你" is one, a long message the classifier calls "affirm" is a question.
ACT_MAX_CHARS = 12
ACT_MIN_CONFIDENCE = 0.5
OUT_OF_SCOPE_MIN_CONFIDENCE = 0.5
SCOPE_FLOOR = 0.92
"""Dense cosine (multilingual-e5-small) at or above which the knowledge base holds something related.

Measured on the out-of-scope examples of bot/data/nlu.yml and 7 more: their best cosine against the
sample knowledge base and the covid FAQ stays at or below 0.914 (median 0.87), while every one of
600 covid questions reaches at least 0.96 against its own knowledge base. A question this close to
the knowledge base is the knowledge base's to answer (or to hand to a human), never "out of scope".
"""

_GREETING = re.compile(
    r"^(?:你好|您好|你们好|大家好|喂+|哈喽|哈啰|hello|hi|嗨|早上好|上午好|中午好|下午好|晚上好|早安|早晨|"
    r"在吗|在不在|打扰了|打扰一下|不好意思|麻烦一下|麻烦你|麻烦您|唔该|同志|工作人员)"
    r"[啊呀哈哦喔，,。.！!～~、\s]*",
    re.IGNORECASE,
)
_ASKING = re.compile(
    r"^(?:(?:我想|我要|想|我)?(?:请问一下|请问|问一下|问下|问问|咨询一下|咨询下|咨询|了解一下|了解下)|(?:我想|想)知道)"
    r"[，,：:。\s]*|^(?:是这样的|是这样|就是说|就是|那个)[，,：:。\s]+"
)
# "我叫王五，" / "我姓李，" / "我是王五，": a name only when something follows after a pause.
_NAME = re.compile(r"^(?:我叫|我的名字是|我姓|本人)([\u4e00-\u9fff]{1,4}?)(?:先生|女士|小姐)?[，,。.\s]+")
_NAME_ONLY = re.compile(r"^(?:我叫|我的名字是|我姓)([\u4e00-\u9fff]{1,4}?)(?:先生|女士|小姐)?[。.！!\s]*$")
_PUNCTUATION_ONLY = re.compile(r"^[\W_]*$")


class Preamble(NamedTuple):
    """A message split into its question and what came before it."""

    question: str
    """What to search for: the message without greetings, "我想问一下" or a name; "" if nothing else."""
    name: str
    """The name the citizen gave ("我叫王五" -> "王五"), kept for a later work order; "" if none."""
    greeted: bool


def split_preamble(text: str) -> Preamble:
    """Take greetings, "请问 / 我想问一下" and "我叫……" off the front of a message.

    >>> split_preamble("您好益肺清化颗粒甜不甜").question
    '益肺清化颗粒甜不甜'
    >>> split_preamble("问下，社保卡丢了怎么补办")
    Preamble(question='社保卡丢了怎么补办', name='', greeted=False)
    >>> split_preamble("我叫王五")
    Preamble(question='', name='王五', greeted=False)
    >>> split_preamble("你好")
    Preamble(question='', name='', greeted=True)
    """
    rest = text.strip()
    name = ""
    greeted = False
    while True:
        before = rest
        if m := _GREETING.match(rest):
            greeted = True
            rest = rest[m.end() :]
        if m := _ASKING.match(rest):
            rest = rest[m.end() :]
        if not name and (m := _NAME.match(rest) or _NAME_ONLY.match(rest)):
            name = m[1]
            rest = rest[m.end() :]
        rest = rest.lstrip("，,。.：:！!、 \t")
        if rest == before:
            break
    if _PUNCTUATION_ONLY.match(rest):
        rest = ""
    return Preamble(rest, name, greeted)


class NoAnswerReply(enum.StrEnum):
    """How to reply when the knowledge base has neither an answer nor a choice."""

    DIALOGUE_ACT = "dialogue_act"
    OUT_OF_SCOPE = "out_of_scope"
    NO_ANSWER = "no_answer"


def when_kb_has_nothing(intent: str, confidence: float, question: str, best_dense: float | None) -> NoAnswerReply:
    """The reply for a message the knowledge base could neither answer nor offer a choice for.

    >>> when_kb_has_nothing("thank", 0.9, "好的谢谢", 0.85).value
    'dialogue_act'
    >>> when_kb_has_nothing("out_of_scope", 0.8, "讲个笑话", 0.86).value
    'out_of_scope'
    >>> when_kb_has_nothing("out_of_scope", 0.8, "个税专项附加扣除今年有什么变化", 0.93).value
    'no_answer'
    >>> when_kb_has_nothing("affirm", 0.9, "4岁宝宝29斤服用依托红霉素的用量是多少", 0.9).value
    'no_answer'
    """
    if intent in DIALOGUE_ACTS and confidence >= ACT_MIN_CONFIDENCE and len(question) <= ACT_MAX_CHARS:
        return NoAnswerReply.DIALOGUE_ACT
    near = best_dense is not None and best_dense >= SCOPE_FLOOR
    if intent == "out_of_scope" and confidence >= OUT_OF_SCOPE_MIN_CONFIDENCE and not near:
        return NoAnswerReply.OUT_OF_SCOPE
    return NoAnswerReply.NO_ANSWER
