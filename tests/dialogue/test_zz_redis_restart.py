"""Redis stops and comes back during conversations: citizens get a clear message, the system recovers
by itself, and no knowledge-base data is lost (the database is the source of truth).

Named to run late: it stops the tests' own Redis (and starts it again).
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.dialogue.conftest import Chat, customs

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

QUESTION = "社保卡丢了怎么补办"


def _relay(web: str, sender: str, text: str) -> requests.Response:
    return requests.post(f"{web}/api/chat", json={"sender": sender, "message": text}, timeout=60)


def test_redis_outage_degrades_politely_and_recovers(stack, web, private_redis):
    from knowledge_base.storage.database import open_database
    from knowledge_base.storage.store import SQLStore

    db = open_database(stack["data"] / "kb.sqlite3")
    store = SQLStore(db)
    before = {e.key: e.version for e in store.entries()}
    citizen = f"redis-{uuid.uuid4().hex[:8]}"
    assert customs(Chat(stack["rasa"], citizen).say(QUESTION))[0]["entry_key"] == "GD-SB-003"

    private_redis.stop()
    try:
        reply = _relay(web, citizen, QUESTION)
        assert reply.status_code == 200  # the widget never sees a server error
        text = " ".join(m.get("text") or "" for m in reply.json()["messages"])
        assert text.strip(), "the citizen must get a message"
        # The knowledge base works without Redis: curation goes on.
        entry = store.get_by_key("GD-SB-003")
        store.update(entry.replace(answer=entry.answer + "（Redis 停机期间的修改）"), author="test")
    finally:
        private_redis.start()

    deadline = time.monotonic() + 60
    while True:  # recovers by itself: no restart of Rasa or the action servers
        messages = Chat(stack["rasa"], f"redis-{uuid.uuid4().hex[:8]}").say(QUESTION)
        found = customs(messages)
        if found and found[0]["entry_key"] == "GD-SB-003":
            break
        assert time.monotonic() < deadline, f"no recovery within 60 s: {messages}"
        time.sleep(2)
    assert "Redis 停机期间的修改" in " ".join(m.get("text") or "" for m in messages)
    after = {e.key: e.version for e in store.entries()}
    assert set(after) == set(before) and after["GD-SB-003"] == before["GD-SB-003"] + 1
    db.close()
