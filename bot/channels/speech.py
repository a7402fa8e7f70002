"""Bot messages rewritten for the telephone: keypad prompts for buttons, the source read after the answer.

The wording rules (no links, dates and numbers as spoken, short sentences) live in
:mod:`knowledge_base.plain.speech`, shared with the operator console; this module applies
them to the messages Rasa collects. Pure functions, so they are tested without Rasa.
Rasa imports it as ``channels.speech`` (``scripts/bot.sh`` puts bot/ and the repository
root on PYTHONPATH).
"""

from __future__ import annotations

from typing import Any

from knowledge_base.plain.speech import MAX_SENTENCE, sentences, speakable, spoken_source

__all__ = ["MAX_SENTENCE", "sentences", "speakable", "spoken_source", "to_speech"]


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
        if custom.get("type") == "work_order":  # a request registered by the bot: no transfer to a person
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
