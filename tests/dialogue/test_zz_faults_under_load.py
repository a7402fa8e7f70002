"""Faults under load: the multi-worker setup keeps answering while its processes die and come back.

``hotline supervise --workers 2`` (what ``scripts/run.sh`` runs) on the tests' own Redis and a temporary
PostgreSQL database; four threads send questions continuously (two through the web workers' relay, two
on the hotline channel of each Rasa worker) while, one after another, an action server is killed
(SIGKILL), a web worker is stopped (SIGSTOP: hung, the supervisor must notice), Redis is killed and
restarted by the test, and a Rasa worker is killed. Like a load balancer, a client whose worker refuses
the connection sends the message to the other one.

Asserted: every message gets an answer or the polite busy text within the hop timeouts; each path
answers again within 10 s of its server being back; the work orders, feedback and drafts made during
the run are in the database exactly once. The figures are printed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.conftest import REPO
from tests.dialogue.conftest import MODEL, RASA_TOKEN, SECRET, PrivateRedis, free_port

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

POSTGRES = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct-horse-battery"
QUESTIONS = ["社保卡丢了怎么补办", "怎么申请失业金", "新生儿怎么办理医保", "护照过期了怎么换"]
BUSY = "系统暂时繁忙"
# The hop timeouts of config.yml (action 8 s < dialogue 10 s < relay 15 s), plus the time a loaded
# two-core machine may add around them.
WEB_LIMIT, HOTLINE_LIMIT = 15 + 5, 10 + 5
RECOVERY_LIMIT = 10.0


@dataclass
class Tally:
    """What the load saw; appended to by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[dict] = field(default_factory=list)  # path, sent, seconds, kind (answer/busy/none)
    feedback_sent: dict[str, str] = field(default_factory=dict)  # sender -> thanked / unsure
    orders: dict[str, str] = field(default_factory=dict)  # marker -> created / unsure
    drafts: dict[str, str] = field(default_factory=dict)

    def add(self, **row) -> None:
        with self.lock:
            self.messages.append(row)

    def last_answer(self, path: str, after: float) -> float | None:
        with self.lock:
            times = [m["sent"] + m["seconds"] for m in self.messages if m["path"] == path and m["kind"] == "answer"]
        later = [t for t in times if t >= after]
        return min(later) if later else None


def _post(urls: list[str], first: int, **kwargs) -> tuple[requests.Response, int]:
    """POST to urls[first], or to the next one when it refuses the connection (what a load balancer does)."""
    for step in range(len(urls)):
        i = (first + step) % len(urls)
        try:
            return requests.post(urls[i], **kwargs), i
        except requests.ConnectionError as exc:
            if "Read timed out" in str(exc) or step == len(urls) - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"hotline_faults_{secrets.token_hex(5)}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(POSTGRES)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def supervised(model_dir, tmp_path_factory, postgres_url) -> Iterator[dict]:
    """``hotline supervise --workers 2`` on its own Redis and PostgreSQL database; yields where things are."""
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `bash scripts/setup-rasa.sh`")
    data = tmp_path_factory.mktemp("faults")
    redis_server = PrivateRedis(data)
    redis_server.start()
    env = {
        **os.environ,
        "HOTLINE_CONFIG": str(REPO / "config.yml"),
        "HOTLINE_DATA_DIR": str(data),
        "HOTLINE_MODEL_DIR": str(model_dir),
        "HOTLINE_DATABASE_URL": postgres_url,
        "HOTLINE_REDIS_URL": redis_server.url,
        "HOTLINE_GATEWAY_SECRET": SECRET,
        "HOTLINE_RASA_TOKEN": RASA_TOKEN,
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "0",
        "HOTLINE_OPERATOR_RATE_LIMIT_PER_MINUTE": "0",
        "HOTLINE_ALLOW_SELF_PUBLISH": "true",
    }
    env.pop("HOTLINE_REDIS_HOST", None)
    hotline = str(REPO / ".venv" / "bin" / "hotline")
    subprocess.run([hotline, "setup"], env=env, check=True, capture_output=True, timeout=300)
    from knowledge_base.staff.accounts import AccountStore
    from knowledge_base.storage.database import open_database

    db = open_database(postgres_url)
    for user, role in (("fault-operator", "operator"), ("fault-editor", "editor")):
        AccountStore(db).create_user(user, PASSWORD, role, actor="test")
    db.close()
    ports = {"actions": free_port(), "rasa": free_port(), "web": free_port()}
    for name in ports:  # the supervisor takes consecutive ports
        while not _free(ports[name] + 1):
            ports[name] = free_port()
    logs = data / "log"
    out = (data / "supervise.log").open("ab")
    proc = subprocess.Popen(
        [
            *(hotline, "supervise", "--workers", "2", "--log-dir", str(logs), "--hung-after", "6"),
            *(f"--action-port={ports['actions']}", f"--rasa-port={ports['rasa']}", f"--web-port={ports['web']}"),
        ],
        env=env,
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = {"data": data, "logs": logs, "redis": redis_server, "proc": proc, "env": env, "ports": ports}
    try:
        _wait_ready(stack, 300)
        yield stack
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        redis_server.stop()


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _state(stack: dict) -> dict:
    try:
        return json.loads((stack["logs"] / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait_ready(stack: dict, seconds: float, names: tuple[str, ...] | None = None) -> float:
    """Wait until the supervisor reports every server (or ``names``) serving; returns when that was seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = _state(stack)
        wanted = names or tuple(state)
        if state and all(state.get(n, {}).get("ready") for n in wanted):
            return time.monotonic()
        if stack["proc"].poll() is not None:
            break
        time.sleep(0.25)
    tail = (stack["data"] / "supervise.log").read_text()[-3000:]
    raise AssertionError(f"servers {names or 'all'} not serving after {seconds} s:\n{tail}")


def _wait_restarted(stack: dict, name: str, restarts: int, seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        entry = _state(stack).get(name, {})
        if entry.get("restarts", 0) >= restarts and entry.get("ready"):
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{name} was not restarted and serving within {seconds} s")


def _pid_of(stack: dict, name: str) -> int:
    pid = int(_state(stack)[name]["pid"])
    if name.startswith("actions"):  # bash scripts/bot.sh actions: the server is its child
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0])
    return pid


def _signed_in(url: str, user: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/staff/login", timeout=30).text
    session.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[attr-defined]
    reply = session.post(
        f"{url}/staff/login",
        data={"username": user, "password": PASSWORD, "csrf_token": session.csrf},  # type: ignore[attr-defined]
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302, reply.text[:300]
    return session


def _web_client(stack: dict, first: int, tally: Tally, stop: threading.Event) -> None:
    urls = [f"http://127.0.0.1:{stack['ports']['web'] + i}/api/chat" for i in range(2)]
    n = 0
    while not stop.is_set():
        sender = f"fault-web{first}-{uuid.uuid4().hex[:8]}"
        sent = time.monotonic()
        kind, worker = "none", first
        try:
            reply, worker = _post(urls, first, json={"sender": sender, "message": QUESTIONS[n % 4]}, timeout=WEB_LIMIT)
            messages = reply.json().get("messages", []) if reply.status_code == 200 else []
            text = "".join(m.get("text", "") for m in messages)
            kind = "busy" if BUSY in text else "answer" if text else "none"
        except (requests.RequestException, ValueError):
            messages = []
        tally.add(path=f"web-{first}", served_by=worker, sent=sent, seconds=time.monotonic() - sent, kind=kind)
        n += 1
        if kind != "answer":
            stop.wait(0.5)  # a citizen told to try later does not send again at once
        if (
            kind == "answer"
            and n % 3 == 0
            and any(b.get("payload") == "/feedback_useful" for m in messages for b in m.get("buttons", []))
        ):
            try:
                thanks, _ = _post(
                    urls, worker, json={"sender": sender, "payload": "/feedback_useful"}, timeout=WEB_LIMIT
                )
                said = "".join(m.get("text", "") for m in thanks.json().get("messages", []))
                tally.feedback_sent[sender] = "thanked" if "谢谢您的反馈" in said else "unsure"
            except (requests.RequestException, ValueError):
                tally.feedback_sent[sender] = "unsure"


def _hotline_client(stack: dict, first: int, tally: Tally, stop: threading.Event) -> None:
    urls = [f"http://127.0.0.1:{stack['ports']['rasa'] + i}/webhooks/hotline/webhook" for i in range(2)]
    n = 0
    while not stop.is_set():
        sent = time.monotonic()
        kind, worker = "none", first
        body = {"call_id": f"fault-call{first}-{uuid.uuid4().hex[:8]}", "text": QUESTIONS[n % 4]}
        try:
            reply, worker = _post(urls, first, json=body, headers={"X-Hotline-Secret": SECRET}, timeout=HOTLINE_LIMIT)
            speech = "".join(reply.json().get("speech", [])) if reply.status_code == 200 else ""
            kind = "busy" if BUSY in speech else "answer" if speech else "none"
        except (requests.RequestException, ValueError):
            pass
        tally.add(path=f"hotline-{first}", served_by=worker, sent=sent, seconds=time.monotonic() - sent, kind=kind)
        n += 1
        if kind != "answer":
            stop.wait(0.5)


def _writer(stack: dict, tally: Tally, stop: threading.Event) -> None:
    """Work orders (operator console) and drafts (admin) through the web workers, one of each a second."""
    urls = [f"http://127.0.0.1:{stack['ports']['web'] + i}" for i in range(2)]
    sessions = {(user, i): _signed_in(urls[i], user) for user in ("fault-operator", "fault-editor") for i in range(2)}
    n = 0
    while not stop.is_set():
        i = n % 2
        marker = f"FAULT-{uuid.uuid4().hex[:10]}"
        operator = sessions[("fault-operator", i)]
        try:
            reply = operator.post(
                f"{urls[i]}/operator/api/work_orders",
                json={"question": "故障测试来电", "description": marker, "name": "测试", "phone": "13800000000"},
                headers={"X-CSRF-Token": operator.csrf},  # type: ignore[attr-defined]
                timeout=WEB_LIMIT,
            )
            tally.orders[marker] = "created" if reply.status_code == 201 else "unsure"
        except requests.RequestException:
            tally.orders[marker] = "unsure"
        editor = sessions[("fault-editor", i)]
        question = f"故障测试草稿{marker}怎么办"
        form = {
            "csrf_token": editor.csrf,  # type: ignore[attr-defined]
            "draft_version": "0",
            "question": question,
            "answer": "这是故障测试写下的草稿答案，用来清点保存是否丢失或重复。",
        }
        try:
            saved = editor.post(f"{urls[i]}/admin/drafts", data=form, allow_redirects=False, timeout=WEB_LIMIT)
            tally.drafts[question] = "created" if saved.status_code == 302 else "unsure"
        except requests.RequestException:
            tally.drafts[question] = "unsure"
        n += 1
        stop.wait(1.0)


def _kill_and_measure(stack: dict, tally: Tally, name: str, how: int, paths: list[str]) -> dict:
    restarts = _state(stack)[name]["restarts"]
    pid = _pid_of(stack, name)
    struck = time.monotonic()
    os.kill(pid, how)
    back = _wait_restarted(stack, name, restarts + 1, 150 if name.startswith("rasa") else 60)
    return _recovered(tally, name, struck, back, paths)


def _recovered(tally: Tally, fault: str, struck: float, back: float, paths: list[str]) -> dict:
    deadline = back + RECOVERY_LIMIT + HOTLINE_LIMIT
    answered: dict[str, float | None] = {}
    while time.monotonic() < deadline:
        answered = {p: tally.last_answer(p, back) for p in paths}
        if all(answered.values()):
            break
        time.sleep(0.2)
    recovery = max((t or deadline) - back for t in answered.values()) if answered else 0.0
    return {"fault": fault, "back_after": back - struck, "recovery": max(0.0, recovery), "answered": answered}


def test_every_message_is_answered_and_nothing_is_lost_while_servers_die(supervised):
    stack = supervised
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=_web_client, args=(stack, i, tally, stop), daemon=True) for i in range(2)]
    threads += [threading.Thread(target=_hotline_client, args=(stack, i, tally, stop), daemon=True) for i in range(2)]
    threads.append(threading.Thread(target=_writer, args=(stack, tally, stop), daemon=True))
    began = time.monotonic()
    for t in threads:
        t.start()
    faults = []
    try:
        time.sleep(5)
        # A Rasa worker killed: its web worker answers politely, the hotline client fails over. Rasa takes
        # the longest to come back, so the faults on the other path run meanwhile, one after another.
        rasa = threading.Thread(
            target=lambda: faults.append(
                _kill_and_measure(stack, tally, "rasa-1", signal.SIGKILL, ["web-1", "hotline-1"])
            )
        )
        rasa.start()
        time.sleep(2)
        # An action server killed as the out-of-memory killer would: its Rasa worker's citizens get the
        # polite reply until the supervisor has it back.
        faults.append(_kill_and_measure(stack, tally, "actions-0", signal.SIGKILL, ["web-0", "hotline-0"]))
        # A web worker that hangs: the port stays open, nothing answers; the supervisor must notice.
        faults.append(_kill_and_measure(stack, tally, "web-0", signal.SIGSTOP, ["web-0"]))
        rasa.join(timeout=200)
        # Redis killed and started again by the test (the supervisor does not run it): every path.
        struck = time.monotonic()
        os.kill(stack["redis"].proc.pid, signal.SIGKILL)
        stack["redis"].proc.wait(timeout=10)
        time.sleep(2)
        stack["redis"].start()
        paths = ["web-0", "web-1", "hotline-0", "hotline-1"]
        faults.append(_recovered(tally, "redis", struck, time.monotonic(), paths))
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=WEB_LIMIT + 5)
    ran = time.monotonic() - began
    counts = _count_writes(stack, tally)

    messages = tally.messages
    answers = sum(m["kind"] == "answer" for m in messages)
    polite = sum(m["kind"] == "busy" for m in messages)
    unanswered = [m for m in messages if m["kind"] == "none"]
    slow = [m for m in messages if m["seconds"] > (WEB_LIMIT if m["path"].startswith("web") else HOTLINE_LIMIT)]
    print(f"\nfaults under load: {len(messages)} messages in {ran:.0f} s, {answers} answers, {polite} polite failures")
    print(
        f"  unanswered {len(unanswered)}, slower than the hop timeout {len(slow)}, "
        f"slowest {max(m['seconds'] for m in messages):.1f} s"
    )
    for f in faults:
        print(
            f"  {f['fault']}: serving again {f['back_after']:.1f} s after the fault, every path answering "
            f"{f['recovery']:.1f} s after that"
        )
    print(f"  work orders {counts['orders']}, feedback {counts['feedback']}, drafts {counts['drafts']}")
    print(
        "  supervisor: "
        + " | ".join(
            line.split("supervise: ", 1)[1]
            for line in (stack["data"] / "supervise.log").read_text().splitlines()
            if "restart " in line and "supervise: " in line
        )
    )

    assert not unanswered, unanswered[:5]
    assert not slow, slow[:5]
    assert answers > 0 and polite > 0
    for f in faults:
        assert f["recovery"] <= RECOVERY_LIMIT, f
    for kind in ("orders", "feedback", "drafts"):
        assert counts[kind]["lost"] == [] and counts[kind]["doubled"] == [], (kind, counts[kind])
        assert counts[kind]["confirmed"] > 0, (kind, counts[kind])


def _count_writes(stack: dict, tally: Tally) -> dict:
    """Each confirmed write exactly once in the database, an unconfirmed one at most once."""
    from knowledge_base.storage.database import open_database

    db = open_database(stack["env"]["HOTLINE_DATABASE_URL"])
    try:
        order_rows = db.query("SELECT description FROM work_orders WHERE description LIKE 'FAULT-%'")
        feedback_rows = db.query("SELECT sender_id FROM feedback WHERE sender_id LIKE 'fault-web%'")
        draft_rows = db.query("SELECT content FROM drafts WHERE content LIKE '%故障测试草稿FAULT-%'")
    finally:
        db.close()
    seen = {
        "orders": [r["description"] for r in order_rows],
        "feedback": [r["sender_id"] for r in feedback_rows],
        "drafts": [re.search(r"故障测试草稿FAULT-[0-9a-f]+怎么办", r["content"]).group(0) for r in draft_rows],
    }
    sent = {"orders": tally.orders, "feedback": tally.feedback_sent, "drafts": tally.drafts}
    result = {}
    for kind, rows in seen.items():
        outcome = sent[kind]
        result[kind] = {
            "confirmed": sum(v in ("created", "thanked") for v in outcome.values()),
            "unsure": sum(v == "unsure" for v in outcome.values()),
            "stored": len(rows),
            "lost": [k for k, v in outcome.items() if v in ("created", "thanked") and k not in rows],
            "doubled": sorted({k for k in rows if rows.count(k) > 1}),
        }
    return result
