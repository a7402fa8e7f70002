"""New work orders reach the city's system exactly once and in order, whatever the receiver and the workers do.

A real local HTTP receiver (http.server in this process) fails (500), answers too late (past the
webhook timeout), answers with bytes that are not HTTP, accepts with a garbage body, and accepts;
it keeps what a real receiver keeps: the first acceptance of each Idempotency-Key (later posts of a
key it already has are answered 200 and dropped). Orders are created while it misbehaves. The
delivering worker is a real web worker (``hotline web``, whose courier thread runs with the
settings' backoff: 2, 4, 8 … s), SIGKILLed while the receiver holds one of its posts; a restarted
web worker and a ``hotline outbox run`` process then share the line on the same SQLite file. At
the end every order was accepted exactly once, in creation order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from knowledge_base.orders.book import WorkOrderBook
from tests.conftest import REPO
from tests.dialogue.conftest import free_port
from tests.integration.test_postgres import empty_schema_url, postgres  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789"
ORDERS = 12
TIMEOUT = 1.0
LEASE = 3.0  # hotline outbox run's; the web worker's is the default, timeout + 10 s
# What the receiver does with the n-th request it gets (then 200): every kind of trouble, spread out.
SCRIPT = {0: "500", 2: "late", 4: "not-http", 5: "garbage-200", 7: "500", 9: "hold", 12: "late", 14: "503"}


class Receiver:
    """The city's system, as far as the contract goes: verifies, deduplicates by key, records everything."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (key, what the receiver did)
        self.accepted: list[str] = []  # keys, in the order first accepted
        self.duplicates = 0  # posts of a key already accepted
        self.bad_signatures = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                signed = f"{self.headers['X-Hotline-Timestamp']}.".encode() + body
                good = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
                with receiver.lock:
                    step = SCRIPT.get(len(receiver.requests), "ok")
                    receiver.requests.append((key, step))
                    if not hmac.compare_digest(good, self.headers["X-Hotline-Signature"]):
                        receiver.bad_signatures += 1
                        step = "401"
                if step in ("500", "503", "401"):
                    self.send_response(int(step))
                    self.end_headers()
                    return
                if step == "not-http":
                    self.wfile.write(b"\x00\x01 this is not HTTP\r\n\r\n")
                    return
                if step == "late":
                    time.sleep(TIMEOUT * 2)  # the courier has given up by now; the receiver still takes it
                if step == "hold":
                    receiver.holding.set()
                    receiver.release.wait(30)  # the worker is killed meanwhile; the order still arrives
                receiver.accept(key, json.loads(body))
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"\xff\xfe<<garbage>>" if step == "garbage-200" else b'{"ok": true}')
                except OSError:
                    pass  # nobody listens any more (the killed worker, the timed-out post)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/orders"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accept(self, key: str, document: dict) -> None:
        assert document["idempotency_key"] == key
        with self.lock:
            if key in self.accepted:
                self.duplicates += 1
            else:
                self.accepted.append(key)


def _worker(tmp_path: Path, url: str, name: str, model_dir: Path) -> subprocess.Popen:
    """``hotline web`` (its courier thread, with the settings' own backoff and lease) or ``hotline outbox run``."""
    env = {
        **os.environ,
        "HOTLINE_DATA_DIR": str(tmp_path / "data"),
        "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
        "HOTLINE_MODEL_DIR": str(model_dir),
        "HOTLINE_ORDER_WEBHOOK_URL": url,
        "HOTLINE_ORDER_WEBHOOK_SECRET": SECRET,
        "HOTLINE_ORDER_WEBHOOK_TIMEOUT": str(TIMEOUT),
        "HOTLINE_ORDER_WEBHOOK_ATTEMPTS": "50",
        "HOTLINE_REDIS_URL": "",
    }
    hotline = str(REPO / ".venv" / "bin" / "hotline")
    if name.startswith("web"):
        command = [hotline, "web", "--port", str(free_port())]
    else:
        command = [hotline, "outbox", "run", "--interval", "0.1", "--base", "0.2", "--lease", str(LEASE)]
    log = (tmp_path / f"{name}.log").open("a")
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds} s")
        time.sleep(0.1)


def test_every_order_arrives_exactly_once_in_order_across_a_killed_worker(tmp_path, model_dir):
    receiver = Receiver()
    book = WorkOrderBook(tmp_path / "kb.sqlite3", outbox=True)
    created: list[str] = []

    def create_orders() -> None:  # while the receiver misbehaves and workers die
        for i in range(ORDERS):
            order = book.create(channel="web", sender_id=f"s{i}", description=f"第{i + 1}件事：路灯不亮", kind="help")
            created.append(f"{order.number}:work_order.created")
            time.sleep(0.4)

    started = time.monotonic()
    first = _worker(tmp_path, receiver.url, "web-1", model_dir)
    creator = threading.Thread(target=create_orders)
    creator.start()
    workers = [first]
    try:
        _wait(receiver.holding.is_set, 40, "the post to hold")
        os.killpg(first.pid, signal.SIGKILL)  # mid-delivery: the post is out, its answer never read
        first.wait(10)
        receiver.release.set()
        # The web worker restarted, and a delivery process beside it: two workers on one line.
        workers += [
            _worker(tmp_path, receiver.url, "web-2", model_dir),
            _worker(tmp_path, receiver.url, "outbox", model_dir),
        ]
        creator.join(30)

        def settled() -> bool:
            row = book.db.query_one("SELECT COUNT(*) AS n FROM outbox WHERE status='pending'")
            return len(created) == ORDERS and row is not None and row["n"] == 0

        _wait(settled, 45, "every delivery to settle")
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
        receiver.server.shutdown()
    rows = book.db.query("SELECT status, attempts FROM outbox ORDER BY id")
    book.close()
    attempts = sum(r["attempts"] for r in rows)
    figures = {
        "orders sent": ORDERS,
        "posts seen by the receiver": len(receiver.requests),
        "attempts recorded": attempts,
        "retries (failed posts)": len(receiver.requests) - ORDERS - receiver.duplicates,
        "duplicate deliveries of one key seen by the receiver": receiver.duplicates,
        "accepted duplicates": len(receiver.accepted) - len(set(receiver.accepted)),
        "lost": len(set(created) - set(receiver.accepted)),
        "dead": sum(r["status"] == "dead" for r in rows),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nwebhook delivery figures:", json.dumps(figures, ensure_ascii=False))
    print("receiver saw:", [(k.split(":")[0][-3:], step) for k, step in receiver.requests])
    assert receiver.bad_signatures == 0
    assert receiver.accepted == created  # every order, once, in creation order
    assert figures["lost"] == 0 and figures["accepted duplicates"] == 0 and figures["dead"] == 0
    assert {r["status"] for r in rows} == {"delivered"}
    steps = {step for _, step in receiver.requests}
    assert {"500", "late", "not-http", "garbage-200", "hold"} <= steps  # every kind of trouble happened


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_workers_claim_each_row_once_on_both_databases(backend, tmp_path, request):
    """Eight couriers, each on its own connection, racing for the same line: no row is posted twice at once."""
    from knowledge_base.orders.outbox import Answer, Courier
    from knowledge_base.storage.database import open_database

    if backend == "sqlite":
        url: str | Path = tmp_path / "race.sqlite3"
    else:
        url = empty_schema_url(request.getfixturevalue("postgres"))
    book = WorkOrderBook(url, outbox=True)
    for i in range(20):
        book.create(channel="web", sender_id=f"s{i}", description=f"第{i}件事")
    in_flight: set[str] = set()
    posted: list[str] = []
    overlaps = []
    lock = threading.Lock()

    def post(target: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        key = headers["Idempotency-Key"]
        with lock:
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            posted.append(key)
        time.sleep(0.005)
        with lock:
            in_flight.discard(key)
        return Answer(200)

    databases = [open_database(url) for _ in range(8)]
    couriers = [Courier(db, url="http://unused", secret=SECRET, post=post) for db in databases]
    threads = [threading.Thread(target=lambda c=c: [c.deliver_due() for _ in range(40)]) for c in couriers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = book.db.query("SELECT o.status, w.number FROM outbox o JOIN work_orders w ON w.id=o.order_id ORDER BY o.id")
    for db in databases:
        db.close()
    book.close()
    assert overlaps == []
    assert {r["status"] for r in rows} == {"delivered"}
    assert posted == [f"{r['number']}:work_order.created" for r in rows]  # each once, in order
