"""Scale-out: two web workers, two action servers and two Rasa workers on one Redis and one database.

Shows what the multi-process layout promises: a conversation continues across workers, a change
published in the admin is served by every worker within a second, and a worker that was down
catches up when it starts.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

from tests.conftest import REPO
from tests.dialogue.conftest import Chat, customs, free_port, start_server, stop_server, texts, wait_until

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

PASSWORD = "correct-horse-battery"
KEY = "GD-SB-003"  # 社保卡丢了怎么补办 in the sample knowledge base
QUESTION = "社保卡丢了怎么补办"


def _start_web(stack, port: int, name: str):
    log = stack["data"] / f"{name}.log"
    env = {**stack["env"], "HOTLINE_RASA_URL": stack["rasa"]}
    proc = start_server([str(REPO / ".venv" / "bin" / "hotline"), "web", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=2).ok, 180, name, proc, log)
    return proc, url


@pytest.fixture(scope="module")
def web_workers(stack):
    from knowledge_base.staff.accounts import AccountStore
    from knowledge_base.storage.database import open_database
    from knowledge_base.storage.store import SQLStore

    db = open_database(stack["data"] / "kb.sqlite3")
    AccountStore(db).create_user("scale-reviewer", PASSWORD, "reviewer", actor="test")
    AccountStore(db).create_user("scale-editor", PASSWORD, "editor", actor="test")  # four eyes: another person writes
    original = SQLStore(db).get_by_key(KEY)
    workers = {}
    for name in ("web1", "web2"):
        port = free_port()
        workers[name] = {"port": port, **dict(zip(("proc", "url"), _start_web(stack, port, name), strict=True))}
    yield workers
    for worker in workers.values():
        stop_server(worker["proc"])
    # The other dialogue tests expect the sample's answer: put it back (as a new revision).
    store = SQLStore(db)
    current = store.get_by_key(KEY)
    store.update(original.replace(id=current.id, version=current.version), author="test")
    db.close()


def _session(url: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/staff/login", timeout=10).text
    session.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[attr-defined]
    reply = session.post(
        f"{url}/staff/login",
        data={"username": username, "password": PASSWORD, "csrf_token": session.csrf},  # type: ignore[attr-defined]
        allow_redirects=False,
        timeout=10,
    )
    assert reply.status_code == 302, reply.text[:300]
    return session


def _publish_answer(url: str, answer: str, db_path) -> float:
    """Change the answer of KEY through the admin of the worker at ``url``; returns when the publish returned."""
    from knowledge_base.storage.database import open_database
    from knowledge_base.storage.store import SQLStore
    from web_widget.admin import form_values

    editor, session = _session(url, "scale-editor"), _session(url, "scale-reviewer")
    db = open_database(db_path)
    entry = SQLStore(db).get_by_key(KEY)
    db.close()
    form = {
        **form_values(entry.replace(answer=answer)),  # the fields as the admin's edit form holds them
        "csrf_token": editor.csrf,  # type: ignore[attr-defined]
        "entry_id": str(entry.id),
        "entry_version": str(entry.version),
        "draft_version": "0",
    }
    saved = editor.post(f"{url}/admin/drafts", data=form, allow_redirects=False, timeout=60)
    assert saved.status_code == 302, saved.text[:500]
    draft_id = saved.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    published = session.post(
        f"{url}/admin/drafts/{draft_id}/publish",
        data={"csrf_token": session.csrf, "draft_version": "1"},  # type: ignore[attr-defined]
        allow_redirects=False,
        timeout=60,
    )
    assert published.status_code == 302 and "/admin/entries/" in published.headers["Location"], published.text[:500]
    return time.monotonic()


def _operator_answer(url: str) -> str:
    session = _session(url, "scale-reviewer")  # reviewers include the operator role
    reply = session.get(f"{url}/operator/api/search", params={"q": QUESTION}, timeout=30)
    assert reply.status_code == 200, reply.text[:300]
    return str(reply.json()["hits"][0]["answer"])


def _chat_answer(rasa_url: str) -> str:
    return texts(Chat(rasa_url, f"scale-{uuid.uuid4().hex[:8]}").say(QUESTION))


def test_conversation_continues_across_rasa_workers_and_action_servers(stack):
    first = Chat(stack["rasa"], f"scale-{uuid.uuid4().hex[:8]}")
    offered = [b for m in first.say("公积金提取") for b in m.get("buttons", []) if b["payload"].startswith("/choose")]
    assert offered, "a clarification was expected"
    second = Chat(stack["rasa2"], first.sender)  # the next message lands on the other Rasa and action server
    answer = customs(second.say(payload=offered[0]["payload"]))
    assert answer and answer[0]["entry_key"]


def test_admin_change_reaches_every_worker_within_a_second(stack, web_workers):
    web1, web2 = web_workers["web1"]["url"], web_workers["web2"]["url"]
    new_answer = f"社保卡挂失补办新流程（{uuid.uuid4().hex[:6]}）：登录粤省事申请，7个工作日内寄达。"
    published_at = _publish_answer(web1, new_answer, stack["data"] / "kb.sqlite3")
    target = requests.get(f"{web1}/healthz", timeout=5).json()["kb_version"]
    # The other web worker's index follows the Redis announcement without any request of its own.
    while requests.get(f"{web2}/healthz", timeout=5).json()["kb_version"] < target:
        assert time.monotonic() - published_at < 1.0, "web2 did not catch up within a second"
        time.sleep(0.02)
    caught_up = time.monotonic() - published_at
    print(f"web2 index at KB version {target} {caught_up * 1000:.0f} ms after the publish returned")
    # And every worker's first answer after the publish is the new one.
    assert _operator_answer(web2) == new_answer
    assert new_answer in _chat_answer(stack["rasa"])
    assert new_answer in _chat_answer(stack["rasa2"])


def test_a_worker_that_was_down_catches_up_when_it_starts(stack, web_workers):
    web1, web2 = web_workers["web1"], web_workers["web2"]
    stop_server(web2["proc"])
    missed = f"停机期间发布的答案（{uuid.uuid4().hex[:6]}）"
    _publish_answer(web1["url"], missed, stack["data"] / "kb.sqlite3")
    web2["proc"], _ = _start_web(stack, web2["port"], "web2")
    assert _operator_answer(web2["url"]) == missed


def test_web_worker_killed_mid_request_leaves_nothing_half_written(stack, web_workers):
    import os
    import threading

    from knowledge_base.staff.workflow import Workflow
    from knowledge_base.storage.database import open_database

    web1, web2 = web_workers["web1"], web_workers["web2"]
    session = _session(web2["url"], "scale-reviewer")
    stop = threading.Event()
    outcomes: dict = {"saved": 0, "failed": 0}  # and the first refusal or error, for the report

    def keep_saving() -> None:
        while not stop.is_set():
            form = {
                "csrf_token": session.csrf,  # type: ignore[attr-defined]
                "draft_version": "0",
                "question": f"终止测试问题{uuid.uuid4().hex[:6]}怎么办",
                "answer": "答" * 5000,
                "similar_questions": "\n".join(f"问法{i}" for i in range(150)),
            }
            try:
                reply = session.post(f"{web2['url']}/admin/drafts", data=form, allow_redirects=False, timeout=10)
                outcomes["saved" if reply.status_code == 302 else "failed"] += 1
                if reply.status_code != 302:
                    outcomes.setdefault("refused", f"{reply.status_code} {reply.text[:300]}")
            except requests.RequestException as exc:
                outcomes["failed"] += 1
                outcomes.setdefault("error", repr(exc)[:300])

    writers = [threading.Thread(target=keep_saving) for _ in range(3)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    while outcomes["saved"] < 2 and time.monotonic() < deadline:  # a save takes 1-5 s (quality checks)
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(web2["proc"].pid, 9)  # mid-request: the other writers are inside a save
    time.sleep(0.5)
    stop.set()
    for w in writers:
        w.join(timeout=30)
    assert outcomes["saved"] > 0 and outcomes["failed"] > 0, outcomes
    db = open_database(stack["data"] / "kb.sqlite3")
    assert db.query_one("PRAGMA integrity_check")["integrity_check"] == "ok"
    drafts = [d for d in Workflow(kb=None, db=db).drafts() if d.entry.question.startswith("终止测试问题")]
    assert all(len(d.entry.similar_questions) == 150 and len(d.entry.answer) == 5000 for d in drafts)
    db.close()
    # Citizens on the other worker never noticed.
    reply = requests.post(f"{web1['url']}/api/chat", json={"sender": "after-kill", "message": QUESTION}, timeout=60)
    assert reply.status_code == 200 and reply.json()["messages"]
    web2["proc"], _ = _start_web(stack, web2["port"], "web2")
