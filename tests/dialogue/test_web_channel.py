"""The website chat box through the real Rasa server, action server, knowledge base and Redis."""

from __future__ import annotations

import uuid

import pytest
import requests

from knowledge_base.staff.interactions import InteractionStore
from tests.dialogue.conftest import Chat, buttons, customs, texts

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]


def chat(stack, region: str | None = None) -> Chat:
    return Chat(stack["rasa"], f"web-{uuid.uuid4().hex[:12]}", region)


def interactions(stack) -> InteractionStore:
    return InteractionStore(stack["data"] / "kb.sqlite3")


def test_greeting_and_a_direct_answer_with_its_source(stack):
    c = chat(stack)
    assert "12345" in texts(c.say("你好"))
    reply = c.say("社保卡丢了怎么补办")
    source = customs(reply)[0]
    assert source["type"] == "source" and source["entry_key"] == "GD-SB-003"
    assert source["department"] and source["effective_date"]
    assert "挂失" in texts(reply)
    assert {b["title"] for b in buttons(reply)} == {"有用", "没用"}


def test_clarification_offers_buttons_and_answers_the_choice(stack):
    c = chat(stack)
    reply = c.say("公积金提取")
    assert "您是想问" in texts(reply)
    choices = [b for b in buttons(reply) if b["payload"].startswith("/choose_entry")]
    assert 2 <= len(choices) <= 4  # clarify_max
    answer = c.say(payload=choices[0]["payload"])
    assert customs(answer)[0]["question"] == choices[0]["title"]


def test_a_payload_for_an_entry_not_offered_is_refused(stack):
    c = chat(stack)
    reply = c.say(payload='/choose_entry{"entry_key": "GD-SB-001"}')
    assert not customs(reply) and "没有找到您选择的问题" in texts(reply)


def answered(c: Chat, question: str) -> dict:
    """Ask, and pick the first offered question if the bot asks "您是想问"; return the answer's source."""
    reply = c.say(question)
    if not customs(reply):
        choice = next(b for b in buttons(reply) if b["payload"].startswith("/choose_entry"))
        reply = c.say(payload=choice["payload"])
    return customs(reply)[0]


def test_follow_up_is_answered_in_context(stack):
    c = chat(stack)
    first = answered(c, "港澳通行证到期了怎么续签")
    follow = c.say("那需要带什么材料？")
    # The materials of the entry just answered, or the word that it lists none: never the whole answer again.
    if customs(follow):
        assert customs(follow)[0]["entry_key"] == first["entry_key"] and "申请材料" in texts(follow)
    else:
        assert "没有单独列出申请材料" in texts(follow)


def test_a_conversation_continues_on_another_rasa_worker(stack):
    first = chat(stack)
    topic = answered(first, "港澳通行证到期了怎么续签")
    second = Chat(stack["rasa2"], first.sender)  # same citizen, next message lands on the other worker
    follow = second.say("那需要带什么材料？")
    # The other worker knows which entry the citizen is asking about.
    assert f"「{topic['question']}」" in texts(follow)


def test_region_from_metadata_picks_the_city_entry(stack):
    reply = chat(stack, region="深圳市").say("租房提取公积金怎么办理")
    assert customs(reply)[0]["entry_key"] == "GD-GJJ-002"


def test_region_is_asked_only_when_the_answer_differs_by_city(stack):
    c = chat(stack)
    reply = c.say("租房提取公积金怎么办理")
    if customs(reply):  # answered directly: then it must not be a city-specific guess
        assert not customs(reply)[0]["regions"] or "城市" in texts(reply)
    else:
        assert "哪个城市" in texts(reply) or "您是想问" in texts(reply)


def test_feedback_is_recorded_against_entry_and_kb_version(stack):
    c = chat(stack)
    c.say("社保卡丢了怎么补办")
    assert "谢谢" in texts(c.say("没用")) or "抱歉" in texts(c.say("没用"))
    rows = [r for r in interactions(stack).feedback("GD-SB-003") if r["sender_id"] == c.sender]
    assert rows and rows[0]["kb_version"] >= 1 and rows[0]["useful"] == 0


def test_two_failures_offer_a_human(stack):
    c = chat(stack)
    c.say("火星移民签证怎么申请")
    reply = c.say("月球土地证怎么办理")
    assert "转人工" in [b["title"] for b in buttons(reply)]


def test_handoff_with_phone_creates_a_work_order_and_masks_the_phone_in_logs(stack):
    c = chat(stack)
    c.say("转人工")
    c.say("我家小区门口的路灯坏了一个月没人修")
    c.say("我叫张伟")
    reply = c.say("13812345678")
    handoff = next(m for m in customs(reply) if m["type"] == "handoff")
    order = interactions(stack).work_order(handoff["work_order"])
    assert order.phone == "13812345678" and order.name == "张伟" and "路灯" in order.description
    assert order.transcript and order.channel == "web"
    assert handoff["work_order"] in texts(reply)
    assert "13812345678" not in stack["logs"]["actions"].read_text()


def test_handoff_without_phone(stack):
    c = chat(stack)
    c.say("我要找人工客服")
    c.say("想咨询一下我家老人的高龄津贴为什么停发了")
    c.say("不方便")
    reply = c.say("不方便留")
    handoff = next(m for m in customs(reply) if m["type"] == "handoff")
    assert interactions(stack).work_order(handoff["work_order"]).phone == ""


def test_every_answer_is_logged_for_reproduction(stack):
    c = chat(stack)
    c.say("失业金每个月能领多少钱")
    rows = [r for r in interactions(stack).answer_log(limit=500) if r["sender_id"] == c.sender]
    assert rows and rows[0]["kb_version"] >= 1 and rows[0]["thresholds"] and rows[0]["candidates"]


def test_conversation_lives_in_redis(stack, redis_client):
    c = chat(stack)
    c.say("你好")
    assert any(c.sender in key.decode() for key in redis_client.keys("hotline*"))


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"message": "你好"}, 400),
        ({"sender": "", "message": "你好"}, 400),
        ({"sender": "a b", "message": "你好"}, 400),
        ({"sender": "x1", "message": 12}, 400),
        ({"sender": "x1", "payload": "<script>"}, 400),
        ([1, 2], 400),
    ],
)
def test_malformed_requests_get_a_400_with_a_reason(stack, body, status):
    reply = requests.post(f"{stack['rasa']}/webhooks/web/webhook", json=body, timeout=30)
    assert reply.status_code == status and reply.json()["error"]


def test_wrong_json_gets_a_400(stack):
    reply = requests.post(
        f"{stack['rasa']}/webhooks/web/webhook",
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 400


@pytest.mark.parametrize(
    "text",
    ["", "   ", "问" * 10_000, "😀😀😀", "？？？！！！", "<script>alert(1)</script>", "'; DROP TABLE entries; --"],
)
def test_odd_messages_get_a_polite_reply_and_the_conversation_goes_on(stack, text):
    c = chat(stack)
    reply = c.say(text)
    assert texts(reply).strip()
    assert "<script>" not in texts(reply)
    assert customs(c.say("社保卡丢了怎么补办"))[0]["entry_key"] == "GD-SB-003"


@pytest.mark.parametrize(
    "text",
    [
        "你好，我想问一下社保卡丢了怎么补办",
        "您好社保卡丢了怎么补办",
        "问下，社保卡丢了怎么补办",
        "好的，社保卡丢了怎么补办",
    ],
)
def test_a_greeting_or_a_yes_in_front_of_a_question_answers_the_question(stack, text):
    assert customs(chat(stack).say(text))[0]["entry_key"] == "GD-SB-003"


def test_a_name_in_front_of_a_question_answers_it_and_the_work_order_keeps_the_name(stack):
    c = chat(stack)
    assert customs(c.say("我叫王五，社保卡丢了怎么补办"))[0]["entry_key"] == "GD-SB-003"
    asked = texts(c.say("转人工"))
    assert "描述" in asked
    assert "称呼" not in texts(c.say("我的社保卡补办了一个月还没拿到"))  # the name is not asked again
    done = c.say("13812345678")
    number = customs(done)[-1]["work_order"]
    assert interactions(stack).work_order(number).name == "王五"


@pytest.mark.parametrize(
    ("text", "expected"), [("你好", "12345政务服务智能助手"), ("谢谢", "不客气"), ("好的", "还有什么")]
)
def test_dialogue_acts_keep_their_replies(stack, text, expected):
    assert expected in texts(chat(stack).say(text))


def test_only_what_is_not_a_government_question_is_out_of_scope(stack):
    assert "不在政务服务的咨询范围" in texts(chat(stack).say("给我讲个笑话吧"))
    reply = chat(stack).say("今年的个税专项附加扣除有什么变化")
    assert "不在政务服务的咨询范围" not in texts(reply)
    # An answer, a choice, or the knowledge base's "not found" with a way to a human: never turned away.
    assert customs(reply) or any(
        b["payload"] in ("/request_human",) or "choose_entry" in b["payload"] for b in buttons(reply)
    )
