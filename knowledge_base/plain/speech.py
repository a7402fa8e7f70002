"""Answers rewritten for the telephone: short sentences, no links or markup, numbers as spoken.

One implementation for everything that is read aloud: the hotline channel
(``bot/channels/speech.py``) speaks the bot's messages with it, and the operator
console shows an answer's read-aloud version with it, so a caller hears the
same words from the machine and from a person.

This module runs inside the Rasa process too (Python 3.10, none of our
dependencies installed there), so it imports the standard library only.

Example:
    >>> spoken_answer("请拨打12333咨询，详见 https://hrss.gd.gov.cn/ 。",
    ...               {"department": "省人社厅", "effective_date": "2024-01-01"})
    ['请拨打一 二 三 三 三咨询，详见。', '以上答复，承办单位是省人社厅，自2024年1月1日起施行。']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_SENTENCE", "sentences", "speakable", "spoken_answer", "spoken_source"]

MAX_SENTENCE = 40
"""Longest sentence (characters) a caller is read before it is split at a comma."""

_URL = re.compile(r"https?://\S+|www\.\S+")
_MARKUP = re.compile(r"[*_#>`\[\]]|<[^>]*>")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# Numbers of five digits or more (phone, hotline and work-order numbers) are read digit by digit.
_LONG_NUMBER = re.compile(r"[A-Z]{0,3}\d{5,}")
_DIGITS = "零一二三四五六七八九"
_SENTENCE_ENDS = ("。", "！", "？")
_PILED_UP = re.compile(r"[，、：；,:;\s]*([。！？])[。！？，、：；,:;\s]*")
_WORD = re.compile(r"[^\W_]")


def _spell(number: str) -> str:
    return " ".join(_DIGITS[int(c)] if c.isdigit() else c for c in number)


def speakable(text: str) -> str:
    """One message as it should be read aloud.

    Links and markup go (a caller cannot follow them), ISO dates become 年月日,
    long numbers are spelled digit by digit, and line breaks end sentences.

    Args:
        text: a written answer or bot message.

    Returns:
        The text to speak, ending with 。！or ？ (empty when nothing in it can be spoken).

    Example:
        >>> speakable("自2024-01-01起施行\\n**注意**带上身份证")
        '自2024年1月1日起施行。注意带上身份证。'
    """
    text = _URL.sub("", text)
    text = _MARKUP.sub("", text)
    text = _DATE.sub(lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)
    text = _LONG_NUMBER.sub(lambda m: _spell(m[0]), text)
    text = re.sub(r"[（(]\s*[)）]", "", text)
    text = re.sub(r"\s*\n+\s*", "。", text)
    # A line break after "：" or "。" must not leave "：。" or "。。" behind: one sentence end is enough.
    text = _PILED_UP.sub(lambda m: m[1], text).strip("。，、：；,:; ")
    if not _WORD.search(text):
        return ""
    return text if text.endswith(_SENTENCE_ENDS) else text + "。"


def sentences(text: str) -> list[str]:
    """Split into short sentences a caller can follow (at 。！？；, then at ， when still long).

    Args:
        text: speakable text (see :func:`speakable`).

    Returns:
        The sentences in order, none of them punctuation only; joined they give ``text`` back without
        its outer whitespace and its fragments of punctuation only.

    Example:
        >>> sentences("先预约。再到窗口办理！")
        ['先预约。', '再到窗口办理！']
    """
    out: list[str] = []
    for part in re.split(r"(?<=[。！？；])", text):
        part = part.strip()
        while len(part) > MAX_SENTENCE and "，" in part[:MAX_SENTENCE]:
            cut = part.rindex("，", 0, MAX_SENTENCE) + 1
            out.append(part[:cut])
            part = part[cut:].strip()
        out.append(part)
    # Never a fragment of punctuation only: a caller would hear a pause and nothing else.
    return [part for part in out if _WORD.search(part)]


def spoken_source(source: Mapping[str, Any]) -> str:
    """The answer's source as one sentence for the caller.

    Args:
        source: ``department``, ``policy_title``, ``policy_number`` and ``effective_date``
            (any may be missing or empty), as the answer's source card carries them.

    Returns:
        "以上答复，承办单位是……" or an empty string when the source names nothing.

    Example:
        >>> spoken_source({"department": "市公安局", "policy_title": "《居住证暂行条例》"})
        '以上答复，承办单位是市公安局，依据《居住证暂行条例》。'
    """
    parts = []
    if source.get("department"):
        parts.append(f"承办单位是{source['department']}")
    policy = " ".join(p for p in (source.get("policy_title"), source.get("policy_number")) if p)
    if policy:
        parts.append(f"依据{policy}")
    if source.get("effective_date"):
        parts.append(f"自{source['effective_date']}起施行")
    return "以上答复，" + "，".join(parts) + "。" if parts else ""


def spoken_answer(answer: str, source: Mapping[str, Any] | None = None) -> list[str]:
    """An answer and its source as the sentences a caller hears, in the order they are read.

    Args:
        answer: the entry's written answer.
        source: its source (see :func:`spoken_source`), or None to read the answer alone.

    Returns:
        Short speakable sentences: the answer's, then one naming the source.
    """
    spoken = sentences(speakable(answer))
    said = spoken_source(source or {})
    if said:
        spoken.extend(sentences(speakable(said)))
    return spoken
