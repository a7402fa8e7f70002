"""Bot messages rewritten for the telephone: short sentences, no links or markup, numbers as spoken.

Pure functions over the messages Rasa collects, so they are tested without Rasa.
"""

from __future__ import annotations

import re
from typing import Any

MAX_SENTENCE = 40
_URL = re.compile(r"https?://\S+|www\.\S+")
_MARKUP = re.compile(r"[*_#>`\[\]]|<[^>]*>")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# Numbers of five digits or more (phone, hotline and work-order numbers) are read digit by digit.
_LONG_NUMBER = re.compile(r"[A-Z]{0,3}\d{5,}")
_DIGITS = "零一二三四五六七八九"


def _spell(number: str) -> str:
    return " ".join(_DIGITS[int(c)] if c.isdigit() else c for c in number)


def speakable(text: str) -> str:
    """One message as it should be read aloud."""
    text = _URL.sub("", text)
    text = _MARKUP.sub("", text)
    text = _DATE.sub(lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)
    text = _LONG_NUMBER.sub(lambda m: _spell(m[0]), text)
    text = re.sub(r"[（(]\s*[)）]", "", text)
    return re.sub(r"\s*\n+\s*", "。", text).strip("。 ") + ("。" if text.strip() else "")


def sentences(text: str) -> list[str]:
    """Split into short sentences a caller can follow (at 。！？；, then at ， when still long)."""
    out: list[str] = []
    for part in re.split(r"(?<=[。！？；])", text):
        part = part.strip()
        while len(part) > MAX_SENTENCE and "，" in part[:MAX_SENTENCE]:
            cut = part.rindex("，", 0, MAX_SENTENCE) + 1
            out.append(part[:cut])
            part = part[cut:].strip()
        if part:
            out.append(part)
    return out


def spoken_source(source: dict[str, Any]) -> str:
    """The answer's source as one sentence for the caller."""
    parts = []
    if source.get("department"):
        parts.append(f"承办单位是{source['department']}")
    policy = " ".join(p for p in (source.get("policy_title"), source.get("policy_number")) if p)
    if policy:
        parts.append(f"依据{policy}")
    if source.get("effective_date"):
        parts.append(f"自{source['effective_date']}起施行")
    return "以上答复，" + "，".join(parts) + "。" if parts else ""


def to_speech(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Collected Rasa messages -> what the gateway speaks, the keypad options and the handoff flag.

    Buttons become "请说……或按N" prompts (the gateway sends the option's payload back
    when the caller presses N); 0 always reaches a human.
    """
    spoken: list[str] = []
    options: list[dict[str, Any]] = []
    handoff = False
    work_order = None
    for message in messages:
        custom = message.get("custom") or {}
        if custom.get("type") == "handoff":
            handoff = True
            work_order = custom.get("work_order")
        if custom.get("type") == "source" and spoken_source(custom):
            spoken.extend(sentences(speakable(spoken_source(custom))))
        if message.get("text"):
            spoken.extend(sentences(speakable(message["text"])))
        for button in message.get("buttons") or []:
            if button.get("payload") == "/request_human":
                continue
            options.append(
                {"digit": str(len(options) + 1), "title": button.get("title", ""), "payload": button.get("payload", "")}
            )
    prompts = [f"{o['title']}请按{o['digit']}" for o in options[:9]]
    prompts.append("转人工请按0")
    options = [*options[:9], {"digit": "0", "title": "转人工", "payload": "/request_human"}]
    return {
        "speech": spoken,
        "prompt": "；".join(prompts) + "。",
        "options": options,
        "handoff": handoff,
        "work_order": work_order,
    }
