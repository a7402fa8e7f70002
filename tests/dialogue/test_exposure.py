"""What the network sees of Rasa and the action server, started as scripts/bot.sh starts them by default.

Their own pair of servers (not the shared stack): the default settings but a chat limit of 3 messages a
minute, counted in the tests' Redis under a prefix of their own. No secret is given: scripts/bot.sh makes
the Rasa token, the action secret and the relay secret in the data folder, as on a fresh installation.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.dialogue.conftest import (
    SECRET,
    Chat,
    customs,
    free_port,
    start_server,
    stop_server,
    wait_until,
)

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

LIMIT = 3
PREFIX = f"exposure-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def pair(model_dir, tmp_path_factory, private_redis) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("exposure-data")
    # Only this module's settings: nothing of the shared stack's (its token, its action secret).
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_") or k == "HOTLINE_TEST_MODEL_DIR"}
    env.update(
        HOTLINE_CONFIG=str(REPO / "config.yml"),
        HOTLINE_DATA_DIR=str(data),
        HOTLINE_MODEL_DIR=str(model_dir),
        HOTLINE_GATEWAY_SECRET=SECRET,
        HOTLINE_REDIS_URL=private_redis.url,
        HOTLINE_REDIS_PREFIX=PREFIX,
        HOTLINE_RATE_LIMIT_PER_MINUTE=str(LIMIT),
    )
    subprocess.run([str(REPO / ".venv" / "bin" / "hotline"), "setup"], env=env, check=True, capture_output=True)
    action_port, rasa_port = free_port(), free_port()
    env.update(HOTLINE_ACTION_PORT=str(action_port), HOTLINE_RASA_PORT=str(rasa_port))
    logs = {name: data / f"{name}.log" for name in ("actions", "rasa")}
    procs = {name: start_server(["bash", str(REPO / "scripts" / "bot.sh"), name], env, logs[name]) for name in logs}
    rasa, actions = f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{action_port}"
    try:
        wait_until(
            lambda: requests.get(f"{actions}/health", timeout=2).ok, 120, "actions", procs["actions"], logs["actions"]
        )
        wait_until(
            lambda: requests.get(f"{rasa}/webhooks/web/", timeout=2).ok, 300, "Rasa", procs["rasa"], logs["rasa"]
        )
        yield {"rasa": rasa, "actions": actions, "ports": (rasa_port, action_port), "data": data, "logs": logs}
    finally:
        for proc in procs.values():
            stop_server(proc)


def secret(pair: dict, name: str) -> str:
    path: Path = pair["data"] / name
    assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    return path.read_text().strip()


def work_orders(pair: dict) -> int:
    from knowledge_base.staff.interactions import InteractionStore

    store = InteractionStore(pair["data"] / "kb.sqlite3")
    try:
        return len(store.work_orders(status=None, limit=10_000))
    finally:
        store.close()


def test_rasa_tracker_and_status_need_the_token(pair):
    sender = f"exposure-{uuid.uuid4().hex[:8]}"
    requests.post(f"{pair['rasa']}/webhooks/web/webhook", json={"sender": sender, "message": "你好"}, timeout=60)
    tracker = f"{pair['rasa']}/conversations/{sender}/tracker"
    assert requests.get(tracker, timeout=10).status_code in (401, 403)
    assert requests.get(tracker, params={"token": "guess-" * 5}, timeout=10).status_code in (401, 403)
    assert requests.get(f"{pair['rasa']}/status", timeout=10).status_code in (401, 403)
    # The token from data_dir is the one Rasa was started with.
    reply = requests.get(tracker, params={"token": secret(pair, "rasa_token")}, timeout=10)
    assert reply.status_code == 200 and reply.json()["sender_id"] == sender


def _create_work_order_call(sender: str) -> dict:
    slots = {"description": "伪造的工单", "contact_name": "张三", "contact_phone": "13800138000"}
    tracker = {
        "sender_id": sender,
        "slots": slots,
        "latest_message": {},
        "events": [],
        "paused": False,
        "latest_event_time": None,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
    }
    return {"next_action": "action_create_work_order", "sender_id": sender, "tracker": tracker, "domain": {}}


def test_forged_action_call_is_refused_and_creates_nothing(pair):
    call = _create_work_order_call(f"forged-{uuid.uuid4().hex[:8]}")
    before = work_orders(pair)
    for headers in ({}, {"X-Hotline-Action-Secret": "not-the-secret-0123456789"}):
        forged = requests.post(f"{pair['actions']}/webhook", json=call, headers=headers, timeout=60)
        assert forged.status_code == 401, forged.text
        assert "X-Hotline-Action-Secret" in forged.json()["error"]
    assert requests.get(f"{pair['actions']}/actions", timeout=10).status_code == 401
    assert work_orders(pair) == before
    # The very same call with the secret does create one: only the secret stood in the way.
    headers = {"X-Hotline-Action-Secret": secret(pair, "action_secret")}
    assert requests.post(f"{pair['actions']}/webhook", json=call, headers=headers, timeout=60).ok
    assert work_orders(pair) == before + 1
    # /health stays open for load balancers and says nothing more than that.
    assert requests.get(f"{pair['actions']}/health", timeout=10).json() == {"status": "ok"}


def test_rasa_calls_its_action_server_with_the_secret(pair):
    answer = Chat(pair["rasa"], f"web-{uuid.uuid4().hex[:8]}").say("社保卡丢了怎么补办")
    assert customs(answer)[0]["entry_key"] == "GD-SB-003"


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine other than 127.x (needs no network: a UDP connect sends nothing)."""
    try:
        found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        found = []
    for address in found:
        if "." in address and not address.startswith("127."):
            return address
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_nothing_listens_beyond_loopback(pair):
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for port in pair["ports"]:
        with socket.socket() as s:
            s.settimeout(5)
            assert s.connect_ex((address, port)) != 0, f"{address}:{port} accepts connections"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # and it is not a dead port: loopback answers


def test_web_channel_limits_each_address(pair):
    url = f"{pair['rasa']}/webhooks/web/webhook"
    sender = f"limit-{uuid.uuid4().hex[:8]}"
    replies = [requests.post(url, json={"sender": sender, "message": "你好"}, timeout=60) for _ in range(LIMIT + 1)]
    # An earlier test in this module may have spent some of this minute's messages already.
    assert replies[-1].status_code == 429, [r.status_code for r in replies]
    body = replies[-1].json()
    assert "请稍等一分钟再试" in body["error"] and body["messages"][0]["text"] == body["error"]
    # Another sender id from the same address is the same client.
    other = requests.post(url, json={"sender": f"x-{sender}", "message": "你好"}, timeout=60)
    assert other.status_code == 429


def test_web_channel_counts_in_redis(pair, redis_client):
    keys = [k.decode() for k in redis_client.scan_iter(f"{PREFIX}rate:chat:*")]
    assert keys, "the web channel's counts are not in Redis"


def test_hotline_channel_limits_each_call_not_the_gateway(pair):
    url = f"{pair['rasa']}/webhooks/hotline/webhook"
    call = f"call-{uuid.uuid4().hex[:8]}"
    said = [
        requests.post(url, headers={"X-Hotline-Secret": SECRET}, json={"call_id": call, "text": "你好"}, timeout=60)
        for _ in range(LIMIT + 1)
    ]
    assert [r.status_code for r in said] == [200] * LIMIT + [429]
    assert "请稍后再试" in "".join(said[-1].json()["speech"])
    another = requests.post(
        url, headers={"X-Hotline-Secret": SECRET}, json={"call_id": f"{call}-2", "text": "你好"}, timeout=60
    )
    assert another.status_code == 200


def test_relay_is_not_limited_as_one_citizen(pair):
    """The web app relays every citizen from one address; with the relay secret Rasa does not count them."""
    from knowledge_base.settings import load_settings
    from web_widget import create_app

    settings = load_settings(
        REPO / "config.yml", environ={}, data_dir=str(pair["data"]), rasa_url=pair["rasa"], rate_limit_per_minute=0
    )
    client = create_app(settings).test_client()
    for i in range(LIMIT * 2):
        reply = client.post("/api/chat", json={"sender": f"relay-{i}-{uuid.uuid4().hex[:6]}", "message": "你好"})
        assert reply.status_code == 200
        assert "繁忙" not in reply.get_json()["messages"][0].get("text", ""), reply.get_json()
    # A wrong relay secret is refused, not waved through.
    forged = requests.post(
        f"{pair['rasa']}/webhooks/web/webhook",
        json={"sender": "forged-relay", "message": "你好"},
        headers={"X-Hotline-Relay-Secret": "not-the-secret-0123456789"},
        timeout=60,
    )
    assert forged.status_code == 401
