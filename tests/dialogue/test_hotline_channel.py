"""The one-number hotline channel (speech gateway) through the real Rasa and action servers."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.dialogue.conftest import SECRET

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]


def call(stack, body: dict, secret: str | None = SECRET) -> requests.Response:
    headers = {"X-Hotline-Secret": secret} if secret is not None else {}
    return requests.post(f"{stack['rasa']}/webhooks/hotline/webhook", json=body, headers=headers, timeout=60)


def new_call() -> str:
    return f"call-{uuid.uuid4().hex[:12]}"


def test_answer_is_written_for_speech(stack):
    reply = call(
        stack, {"call_id": new_call(), "text": "社保卡丢了怎么补办", "caller_id": "13800000000", "region": "深圳市"}
    )
    assert reply.status_code == 200
    data = reply.json()
    spoken = "".join(data["speech"])
    assert "挂失" in spoken and "http" not in spoken and "*" not in spoken
    assert "一 二 三 三 三" in spoken  # hotline numbers are read digit by digit
    assert all(len(s) <= 60 for s in data["speech"])
    assert data["prompt"].endswith("转人工请按0。") and data["handoff"] is False


def test_keypad_choice_is_sent_back_as_payload(stack):
    call_id = new_call()
    data = call(stack, {"call_id": call_id, "text": "公积金提取"}).json()
    choices = [o for o in data["options"] if o["payload"].startswith("/choose_entry")]
    assert choices and "请按1" in data["prompt"]
    assert len(choices) <= 3  # a caller keeps three spoken options in mind, whatever the website shows
    answered = call(stack, {"call_id": call_id, "payload": choices[0]["payload"]}).json()
    assert answered["speech"]


def test_handoff_is_a_flag_for_the_gateway(stack):
    call_id = new_call()
    call(stack, {"call_id": call_id, "payload": "/request_human"})
    call(stack, {"call_id": call_id, "text": "我想投诉楼下烧烤店油烟太大"})
    call(stack, {"call_id": call_id, "text": "不方便"})
    data = call(stack, {"call_id": call_id, "text": "不方便"}).json()
    assert data["handoff"] is True and data["work_order"].startswith("GD")


@pytest.mark.parametrize("secret", [None, "", "wrong-secret-wrong-secret"])
def test_wrong_or_missing_secret_is_refused(stack, secret):
    assert call(stack, {"call_id": new_call(), "text": "你好"}, secret=secret).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"text": "你好"},
        {"call_id": "x y", "text": "你好"},
        {"call_id": "c1"},
        {"call_id": "c1", "payload": '/x{"a":{}}'},
    ],
)
def test_bad_requests_get_400(stack, body):
    reply = call(stack, body)
    assert reply.status_code == 400 and reply.json()["error"]


def test_empty_speech_result_gets_a_prompt(stack):
    data = call(stack, {"call_id": new_call(), "text": ""}).json()
    assert "请说出" in "".join(data["speech"])
