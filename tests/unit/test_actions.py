"""Action logic with the fake embedder's knowledge base, and the failure path with a broken one (fakes)."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.answer import ActionAnswer, ActionChooseEntry, ActionFeedback
from actions.handoff import ActionCreateWorkOrder, ValidateHandoffForm
from knowledge_base.staff.interactions import InteractionStore

pytestmark = pytest.mark.unit


def tracker(
    text: str,
    *,
    intent: str = "ask_policy",
    slots: dict | None = None,
    entities: list | None = None,
    metadata: dict | None = None,
) -> Tracker:
    message = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
        "metadata": metadata or {},
    }
    return Tracker("citizen-1", slots or {}, message, [{"event": "user", "text": text}], False, None, None, "web")


def run(action, t: Tracker) -> tuple[CollectingDispatcher, list]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return dispatcher, events


@pytest.fixture
def live(fake_kb):
    store = InteractionStore(":memory:")
    runtime.use(runtime.Runtime(fake_kb, store))
    yield store
    runtime.use(None)


class BrokenKB:
    def search(self, *args, **kwargs):
        raise RuntimeError("FAISS exploded")


def test_a_failing_knowledge_base_gives_a_polite_reply_and_a_way_to_a_human():
    runtime.use(runtime.Runtime(BrokenKB(), InteractionStore(":memory:")))
    try:
        dispatcher, events = run(ActionAnswer(), tracker("社保怎么查"))
    finally:
        runtime.use(None)
    assert "转人工" in dispatcher.messages[0]["text"] and events == []
    assert any(b["payload"] == "/request_human" for b in dispatcher.messages[0]["buttons"])


def test_answer_sets_the_entry_for_follow_ups_and_logs_it(live):
    dispatcher, events = run(ActionAnswer(), tracker("怎么查询社保缴费记录"))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["last_entry_key"] == "T-SB-1"
    assert dispatcher.messages[1]["custom"]["entry_key"] == "T-SB-1"
    assert live.answer_log()[0]["entry_key"] == "T-SB-1"


def test_region_from_channel_metadata_filters(live):
    _, events = run(ActionAnswer(), tracker("公积金提取流程", metadata={"region": "广州"}))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots.get("last_entry_key") in (None, "T-GJJ-GZ")
    assert slots["region"] == "广州"


def test_choose_entry_only_accepts_offered_candidates(live):
    offered = tracker(
        "",
        intent="choose_entry",
        slots={"candidates": ["T-GJJ-SZ"]},
        entities=[{"entity": "entry_key", "value": "T-SB-1"}],
    )
    dispatcher, _ = run(ActionChooseEntry(), offered)
    assert "没有找到" in dispatcher.messages[0]["text"]


def test_feedback_is_recorded(live):
    t = tracker("没用", intent="feedback_useless", slots={"last_entry_key": "T-SB-1", "last_kb_version": 3.0})
    run(ActionFeedback(), t)
    assert live.feedback("T-SB-1")[0]["useful"] == 0 and live.feedback("T-SB-1")[0]["kb_version"] == 3


@pytest.mark.parametrize(
    ("text", "intent", "value"),
    [("13812345678", "give_phone", "13812345678"), ("不方便", "deny", "未提供"), ("1234", "give_phone", None)],
)
def test_phone_validation(text, intent, value):
    dispatcher = CollectingDispatcher()
    result = ValidateHandoffForm().validate_contact_phone(text, dispatcher, tracker(text, intent=intent), {})
    assert result == {"contact_phone": value}


def test_work_order_without_phone(live):
    t = tracker(
        "不方便",
        intent="deny",
        slots={
            "description": "路灯坏了",
            "contact_name": "未提供",
            "contact_phone": "未提供",
            "region": "广东省/深圳市",
        },
    )
    dispatcher, _ = run(ActionCreateWorkOrder(), t)
    number = dispatcher.messages[1]["custom"]["work_order"]
    order = live.work_order(number)
    assert order.phone == "" and order.name == "" and order.region == "广东省/深圳市"
    assert number in dispatcher.messages[0]["text"]


def test_warm_up_builds_the_runtime_and_says_nothing(live):
    from actions.warmup import ActionWarmUp

    dispatcher, events = run(ActionWarmUp(), tracker(""))
    assert events == [] and dispatcher.messages == []


def test_choosing_an_offered_entry_is_logged_as_resolving_the_clarification(live, fake_kb):
    key = "T-GJJ-SZ"
    dispatcher, _ = run(
        ActionChooseEntry(),
        Tracker(
            "citizen-1",
            {"candidates": [key, "T-GJJ-GZ"]},
            {
                "text": "/choose_entry",
                "intent": {"name": "choose_entry"},
                "entities": [{"entity": "entry_key", "value": key}],
            },
            [],
            False,
            None,
            None,
            "web",
        ),
    )
    assert "深圳" in dispatcher.messages[0]["text"]
    assert [(r["decision"], r["entry_key"]) for r in live.answer_log()] == [("chosen", key)]
