"""Follow-ups by aspect (办事指南) through the real Rasa, action server and sample knowledge base, on both channels."""

from __future__ import annotations

import uuid

import pytest
import requests

from knowledge_base.plain.aspects import ASPECTS, ASPECTS_BY_NAME
from knowledge_base.plain.speech import sentences, speakable
from knowledge_base.records import Entry
from tests.conftest import REPO
from tests.dialogue.conftest import SECRET, Chat, buttons, customs, texts

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

FOLLOW_UPS = {
    "conditions": "需要什么条件？",
    "materials": "那需要带什么材料？",
    "procedure": "流程是什么",
    "time_limit": "多久能办好",
    "fees": "要钱吗",
    "location": "在哪里办",
    "enquiry_phone": "咨询电话是多少",
    "online": "能网上办吗",
}


@pytest.fixture(scope="module")
def sample() -> list[Entry]:
    from knowledge_base.transfer import read_entries

    return read_entries(REPO / "knowledge_base" / "sample" / "guangdong_kb.yaml")


def with_aspect(sample: list[Entry], name: str) -> Entry:
    return next(e for e in sample if e.guide.get(name) and not e.regions[1:])


def without_aspect(sample: list[Entry], name: str) -> Entry:
    return next(e for e in sample if not e.guide.get(name) and e.guide)


class Call:
    """One caller on the hotline channel, with the web chat's ``say`` so a test runs on both."""

    def __init__(self, base: str) -> None:
        self.url = f"{base}/webhooks/hotline/webhook"
        self.call_id = f"call-{uuid.uuid4().hex[:12]}"

    def say(self, text: str | None = None, *, payload: str | None = None) -> dict:
        body = {"call_id": self.call_id, **({"payload": payload} if payload else {"text": text})}
        reply = requests.post(self.url, json=body, headers={"X-Hotline-Secret": SECRET}, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()


def answered_on_the_web(c: Chat, entry: Entry) -> None:
    """Ask the entry's own question; pick it if the bot offers a choice."""
    reply = c.say(entry.question)
    if not customs(reply):
        choice = next(b for b in buttons(reply) if entry.key in b["payload"])
        reply = c.say(payload=choice["payload"])
    assert customs(reply)[0]["entry_key"] == entry.key


def answered_on_the_phone(c: Call, entry: Entry) -> None:
    reply = c.say(entry.question)
    choice = next((o for o in reply["options"] if entry.key in o["payload"]), None)
    if choice is not None:
        reply = c.say(payload=choice["payload"])
    assert sentences(speakable(entry.answer))[0] in reply["speech"]


@pytest.mark.parametrize("aspect", list(FOLLOW_UPS))
def test_an_aspect_follow_up_on_the_web_answers_that_aspect(stack, sample, aspect):
    entry = with_aspect(sample, aspect)
    c = Chat(stack["rasa"], f"web-{uuid.uuid4().hex[:12]}")
    answered_on_the_web(c, entry)
    reply = c.say(FOLLOW_UPS[aspect])
    said = texts(reply)
    assert ASPECTS_BY_NAME[aspect].label in said and entry.guide.get(aspect) in said, said
    assert customs(reply)[0]["entry_key"] == entry.key


@pytest.mark.parametrize("aspect", list(FOLLOW_UPS))
def test_an_aspect_follow_up_on_the_hotline_is_spoken(stack, sample, aspect):
    entry = with_aspect(sample, aspect)
    c = Call(stack["rasa"])
    answered_on_the_phone(c, entry)
    reply = c.say(FOLLOW_UPS[aspect])
    spoken = "".join(reply["speech"])
    assert ASPECTS_BY_NAME[aspect].label in spoken
    assert sentences(speakable(entry.guide.get(aspect)))[0] in reply["speech"], reply["speech"]
    assert all(s.strip("。，！？") for s in reply["speech"])


def test_a_missing_aspect_is_said_and_the_whole_answer_is_one_button_away(stack, sample):
    entry = without_aspect(sample, "fees")
    c = Chat(stack["rasa"], f"web-{uuid.uuid4().hex[:12]}")
    answered_on_the_web(c, entry)
    reply = c.say("要钱吗")
    assert "没有单独列出收费标准" in texts(reply) and not customs(reply)
    assert [b["payload"] for b in buttons(reply)] == ["/show_answer", "/request_human"]
    whole = c.say(payload="/show_answer")
    assert customs(whole)[0]["entry_key"] == entry.key


def test_a_missing_aspect_on_the_hotline_offers_the_whole_answer_by_key(stack, sample):
    entry = without_aspect(sample, "fees")
    c = Call(stack["rasa"])
    answered_on_the_phone(c, entry)
    reply = c.say("要钱吗")
    assert "没有单独列出收费标准" in "".join(reply["speech"])
    assert reply["options"][0]["payload"] == "/show_answer" and "查看完整答复请按1" in reply["prompt"]
    whole = c.say(payload="/show_answer")
    assert sentences(speakable(entry.answer))[0] in whole["speech"]


@pytest.mark.parametrize("text", ["要带什么材料", "多久能办好", "在哪里办"])
def test_a_follow_up_with_no_entry_in_context_asks_which_service(stack, text):
    c = Chat(stack["rasa"], f"web-{uuid.uuid4().hex[:12]}")
    reply = c.say(text)
    assert "哪项业务" in texts(reply) and not customs(reply)


def test_every_aspect_has_a_follow_up_here():
    assert set(FOLLOW_UPS) == {a.name for a in ASPECTS}
