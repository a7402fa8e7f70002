"""The action server dies: citizens get a polite message and a way to a human, and recover after it restarts.

Named to run last in this folder, as it stops a shared server (and starts it again).
"""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from tests.conftest import REPO
from tests.dialogue.conftest import SECRET, Chat, customs, start_server, texts, wait_until

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]


def test_action_server_down_then_back(stack):
    proc = stack["procs"]["actions"]
    os.killpg(proc.pid, 9)
    proc.wait(timeout=20)
    web = Chat(stack["rasa"], f"web-{uuid.uuid4().hex[:8]}")
    reply = web.say("社保卡丢了怎么补办")
    assert "12345" in texts(reply) or "转人工" in texts(reply)
    assert any(c.get("type") == "handoff" for c in customs(reply)) or "转人工" in texts(reply)
    phone = requests.post(
        f"{stack['rasa']}/webhooks/hotline/webhook",
        headers={"X-Hotline-Secret": SECRET},
        json={"call_id": f"call-{uuid.uuid4().hex[:8]}", "text": "社保卡丢了怎么补办"},
        timeout=60,
    )
    assert phone.status_code == 200 and phone.json()["speech"]

    log = stack["logs"]["actions"]
    restarted = start_server(["bash", str(REPO / "scripts" / "bot.sh"), "actions"], stack["env_of"]["actions"], log)
    stack["procs"]["actions"] = restarted
    wait_until(lambda: requests.get(f"{stack['actions']}/health", timeout=2).ok, 120, "action server", restarted, log)
    assert customs(web.say("社保卡丢了怎么补办"))[0]["entry_key"] == "GD-SB-003"
