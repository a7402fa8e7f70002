"""Action logic with the fake embedder's knowledge base, and the failure path with a broken one (fakes)."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.answer import ActionAnswer, ActionChooseEntry
from actions.handoff import ActionCreateWorkOrder, ValidateHandoffForm
from knowledge_base.records import ServiceGuide
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
    run(ActionAnswer(), t)
    assert live.feedback("T-SB-1")[0]["useful"] == 0 and live.feedback("T-SB-1")[0]["kb_version"] == 3


def slots_of(events: list) -> dict:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.mark.parametrize(
    "text", ["你好，我想问一下怎么查询社保缴费记录", "您好怎么查询社保缴费记录", "问下，怎么查询社保缴费记录"]
)
def test_a_greeting_in_front_of_a_question_answers_the_question(live, text):
    dispatcher, events = run(ActionAnswer(), tracker(text, intent="greet"))
    assert slots_of(events)["last_entry_key"] == "T-SB-1"
    assert dispatcher.messages[0]["text"].startswith("登录粤省事")


def test_a_name_in_front_of_a_question_is_kept_for_the_work_order(live):
    _dispatcher, events = run(ActionAnswer(), tracker("我叫王五，怎么查询社保缴费记录", intent="give_name"))
    assert slots_of(events)["contact_name"] == "王五"
    assert slots_of(events)["last_entry_key"] == "T-SB-1"


def test_a_name_alone_is_greeted_by_name(live):
    dispatcher, events = run(ActionAnswer(), tracker("我叫王五", intent="give_name"))
    assert slots_of(events) == {"contact_name": "王五"}
    assert dispatcher.messages[0]["text"].startswith("王五您好")


@pytest.mark.parametrize(
    ("text", "intent", "response"),
    [
        ("你好", "greet", "utter_greet"),
        ("好的", "affirm", "utter_how_can_i_help"),
        ("谢谢你", "thank", "utter_you_are_welcome"),
        ("讲个笑话", "out_of_scope", "utter_out_of_scope"),
        ("/deny", "deny", "utter_ask_rephrase"),
    ],
)
def test_dialogue_acts_are_answered_when_the_knowledge_base_has_nothing(live, text, intent, response):
    dispatcher, _ = run(ActionAnswer(), tracker(text, intent=intent))
    assert dispatcher.messages[0]["response"] == response
    assert live.answer_log() == []  # small talk does not fill the queue of unanswered questions


def test_the_knowledge_base_answers_whatever_the_classifier_said(live):
    _dispatcher, events = run(ActionAnswer(), tracker("怎么查询社保缴费记录", intent="out_of_scope"))
    assert slots_of(events)["last_entry_key"] == "T-SB-1"


def test_a_government_question_the_knowledge_base_lacks_is_not_turned_away(live):
    dispatcher, _ = run(ActionAnswer(), tracker("残疾人两项补贴每个月发多少钱呢请告诉我", intent="affirm"))
    assert "知识库里暂时没有找到" in dispatcher.messages[0]["text"]


@pytest.fixture
def guided(live, fake_kb):
    entry = fake_kb.store.get_by_key("T-SB-1")
    fake_kb.store.update(entry.replace(guide=ServiceGuide(materials="身份证原件。\n社保卡。")), author="tester")
    return live


def test_an_aspect_follow_up_answers_that_aspect_of_the_entry_in_context(guided):
    context = {"last_entry_key": "T-SB-1", "last_entry_question": "怎么查询社保缴费记录"}
    dispatcher, _ = run(ActionAnswer(), tracker("那要带什么材料？", slots=context))
    assert dispatcher.messages[0]["text"] == "「怎么查询社保缴费记录」的申请材料：\n身份证原件。\n社保卡。"
    assert dispatcher.messages[1]["custom"]["entry_key"] == "T-SB-1"


def test_a_missing_aspect_is_said_and_the_whole_answer_or_a_human_offered(guided):
    context = {"last_entry_key": "T-SB-1", "last_entry_question": "怎么查询社保缴费记录"}
    dispatcher, _ = run(ActionAnswer(), tracker("要多久", slots=context))
    assert "没有单独列出办理时限" in dispatcher.messages[0]["text"]
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    assert payloads == ["/show_answer", "/request_human"]
    whole, _events = run(ActionAnswer(), tracker("/show_answer", intent="show_answer", slots=context))
    assert whole.messages[0]["text"].startswith("登录粤省事")


def test_an_aspect_follow_up_without_an_entry_in_context_asks_which_service(live):
    dispatcher, events = run(ActionAnswer(), tracker("在哪里办"))
    assert "哪项业务的办理地点" in dispatcher.messages[0]["text"] and events == []


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


# -- requests and status queries (actions/intake.py, actions/order_status.py) ------------------------------


def validate(slot: str, value: str, *, intent: str = "ask_policy", slots: dict | None = None) -> tuple[dict, list]:
    from actions.intake import ValidateIntakeForm

    dispatcher = CollectingDispatcher()
    validator = getattr(ValidateIntakeForm(), f"validate_{slot}")
    return validator(value, dispatcher, tracker(value, intent=intent, slots=slots), {}), dispatcher.messages


def test_a_request_in_one_sentence_fills_every_slot_and_starts_the_form(live):
    from actions.intake import ActionStartIntake

    text = "我叫王五，电话13812345678，昨天晚上十点开始幸福路12号工地一直施工很吵，我要投诉"
    _, events = run(ActionStartIntake(), tracker(text, intent="complain"))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["request_kind"] == "投诉" and slots["contact_phone"] == "13812345678"
    assert (
        slots["address"] == "幸福路12号工地" and slots["happened"] == "昨天晚上十点" and slots["contact_name"] == "王五"
    )
    assert events[-1] == {"event": "followup", "name": "intake_form", "timestamp": None}


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", "？？？"])
def test_markup_or_punctuation_the_classifier_calls_a_request_starts_no_form(live, text):
    from actions.intake import ActionStartIntake

    _, events = run(ActionStartIntake(), tracker(text, intent="complain"))
    assert not [e for e in events if e["event"] == "followup"]


def test_a_question_about_complaining_is_answered_from_the_knowledge_base(live):
    from actions.intake import ActionStartIntake

    dispatcher, events = run(ActionStartIntake(), tracker("怎么投诉物业", intent="complain"))
    assert dispatcher.messages and not [e for e in events if e["event"] == "followup"]


@pytest.mark.parametrize(
    ("slot", "value", "ask"),
    [
        ("contact_phone", "12345", "不是电话号码"),
        ("contact_phone", "abc", "不是电话号码"),
        ("address", "。。。！！", "没听清地点"),
        ("address", "😡😡", "没听清地点"),
        ("description", "<p></p>", "一两句话"),
        ("happened", "？", "什么时候"),
        ("contact_name", "……", "怎么称呼"),
    ],
)
def test_bad_answers_are_asked_again_politely(slot, value, ask):
    result, messages = validate(slot, value)
    assert result[slot] is None and ask in messages[0]["text"]


def test_answers_are_normalised_or_declined():
    assert validate("contact_phone", "幺三八 一二三四 五六七八")[0] == {"contact_phone": "13812345678"}
    assert validate("contact_phone", "不方便", intent="deny")[0] == {"contact_phone": "未提供"}
    assert validate("contact_name", "不想说")[0] == {"contact_name": "未提供"}
    assert validate("address", "我家在幸福路12号")[0] == {"address": "我家在幸福路12号"}


def test_a_ten_thousand_character_description_is_cut_politely():
    result, messages = validate("description", "很吵" * 5000)
    assert len(result["description"]) == 2000 and "前2000个字" in messages[0]["text"]


def test_the_summary_can_be_changed_one_part_at_a_time():
    assert validate("intake_confirm", "确认")[0] == {"intake_confirm": "yes"}
    assert validate("intake_confirm", "修改")[0] == {"intake_confirm": None, "intake_editing": True}
    picked = validate("intake_confirm", "地址", slots={"intake_editing": True})[0]
    assert picked == {"address": None, "intake_confirm": None, "intake_editing": None}
    button = validate("intake_confirm", '/deny{"part": "contact_phone"}', intent="deny")[0]
    assert button == {"contact_phone": None, "intake_confirm": None, "intake_editing": None}


def test_a_confirmed_request_becomes_a_work_order_of_its_type(live):
    from actions.intake import ActionSubmitIntake

    slots = {
        "request_kind": "举报",
        "description": "有人在河边倒垃圾",
        "address": "人民公园东门",
        "happened": "未提供",
        "contact_name": "未提供",
        "contact_phone": "13700001111",
        "region": "深圳市",
    }
    dispatcher, events = run(ActionSubmitIntake(), tracker("确认", slots=slots))
    number = dispatcher.messages[1]["custom"]["work_order"]
    order = live.orders.get(number)
    assert (order.kind, order.address, order.happened, order.name, order.phone, order.region) == (
        "report",
        "人民公园东门",
        "",
        "",
        "13700001111",
        "深圳市",
    )
    assert number in dispatcher.messages[0]["text"] and {"event": "slot", "name": "description", "value": None} in [
        {k: e[k] for k in ("event", "name", "value")} for e in events
    ]


def test_status_query_never_tells_apart_a_wrong_pair_and_a_missing_order(live):
    from actions.order_status import ActionOrderStatus

    order = live.orders.create(channel="web", sender_id="x", description="路灯不亮", kind="help", phone="13700001234")

    def ask(number: str, last4: str, sender: str = "citizen-1") -> str:
        t = tracker("1234", slots={"order_number": number, "order_last4": last4})
        t.sender_id = sender
        dispatcher, _ = run(ActionOrderStatus(), t)
        return dispatcher.messages[0]["text"]

    found = ask(order.number, "1234")
    assert "待受理" in found and "尚未派单" in found and order.number in found
    assert ask(order.number, "9999", "other") == ask("GD19990101000001", "1234", "third")
    assert "需要工单号" in ask(order.number, "未提供")


def test_a_request_without_a_request_word_asks_the_knowledge_base_first_then_starts_the_form(live):
    from actions.intake import ActionStartIntake

    _, events = run(ActionStartIntake(), tracker("小区电梯坏了一个月没人修", intent="request_help"))
    assert events[-1]["event"] == "followup" and events[-1]["name"] == "intake_form"
    _, events = run(ActionStartIntake(), tracker("怎么查询社保缴费记录", intent="request_help"))
    assert not [e for e in events if e["event"] == "followup"]  # the knowledge base answers it


def test_a_question_about_work_orders_is_not_a_status_query(live):
    from actions.order_status import ActionStartStatus

    dispatcher, events = run(ActionStartStatus(), tracker("工单号查不到是怎么回事", intent="query_work_order"))
    assert dispatcher.messages and not [e for e in events if e["event"] == "followup"]
    _, events = run(ActionStartStatus(), tracker("GD20261130000001 尾号5678 处理到哪了", intent="query_work_order"))
    assert [e["value"] for e in events[:2]] == ["GD20261130000001", "5678"] and events[-1][
        "name"
    ] == "order_status_form"


def test_cancelling_at_the_summary_registers_nothing(live):
    from actions.intake import ActionSubmitIntake

    assert validate("intake_confirm", "取消")[0] == {"intake_confirm": "cancel"}
    slots = {"request_kind": "投诉", "description": "楼下很吵", "intake_confirm": "cancel"}
    dispatcher, _ = run(ActionSubmitIntake(), tracker("取消", slots=slots))
    assert "已取消" in dispatcher.messages[0]["text"] and live.orders.orders() == []
