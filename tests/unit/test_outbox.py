"""The outbox's courier against a real local HTTP receiver: signature, backoff, lease, dead letters, retry, order.

The receiver is :class:`http.server.ThreadingHTTPServer` in a thread; it answers from a script
(one status per request, then 200) and records every request it saw.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from knowledge_base.orders.book import WorkOrderBook
from knowledge_base.orders.outbox import Answer, Courier, Deliveries, backoff, http_post, signature

pytestmark = pytest.mark.unit

SECRET = "0123456789abcdef-test"


class Receiver:
    """A scripted webhook receiver: ``script`` holds the statuses of the next answers ("sleep" waits 2 s)."""

    def __init__(self) -> None:
        self.script: list[int | str] = []
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.seen.append({"headers": dict(self.headers), "body": body})
                    step = receiver.script.pop(0) if receiver.script else 200
                if step == "sleep":
                    time.sleep(2)
                    step = 200
                if step == "garbage":
                    self.wfile.write(b"\x00\xffnot http at all\r\n\r\n")
                    return
                self.send_response(int(step))
                self.end_headers()
                self.wfile.write(b"<html>whatever</html>")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.seen]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def book(tmp_path) -> Iterator[WorkOrderBook]:
    b = WorkOrderBook(tmp_path / "kb.sqlite3", outbox=True)
    yield b
    b.close()


def _courier(book: WorkOrderBook, url: str, **kw: object) -> Courier:
    options: dict = {"url": url, "secret": SECRET, "timeout": 1.0, "attempts": 4, "base": 0.05, "cap": 0.2}
    options.update(kw)
    return Courier(book.db, **options)


def _order(book: WorkOrderBook, text: str = "楼下装修噪音太大") -> str:
    return book.create(channel="web", sender_id="s", description=text, kind="complaint").number


def _drain(courier: Courier, seconds: float = 5.0) -> None:
    """Run passes until nothing is pending (the backoff here is a fraction of a second)."""
    deadline = time.monotonic() + seconds
    while courier.db.query_one("SELECT 1 AS x FROM outbox WHERE status='pending'") and time.monotonic() < deadline:
        courier.deliver_due()
        time.sleep(0.02)


def test_a_delivery_is_signed_and_carries_its_key(book, receiver):
    number = _order(book)
    assert _courier(book, receiver.url).deliver_due() == 1
    (request,) = receiver.seen
    headers, body = request["headers"], request["body"]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Idempotency-Key"] == f"{number}:work_order.created"
    assert headers["X-Hotline-Event"] == "work_order.created"
    assert abs(int(headers["X-Hotline-Timestamp"]) - time.time()) < 60
    # What a receiver does (README): HMAC over "<timestamp>.<body>" with the shared secret.
    expected = hmac.new(SECRET.encode(), headers["X-Hotline-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-Hotline-Signature"] == "sha256=" + expected.hexdigest()
    document = json.loads(body)
    assert document["work_order"]["number"] == number and document["work_order"]["description"] == "楼下装修噪音太大"
    assert Deliveries(book.db).counts() == {"pending": 0, "delivered": 1, "dead": 0}


def test_the_signature_changes_with_body_timestamp_and_secret():
    one = signature(SECRET, "1700000000", b"{}")
    assert one.startswith("sha256=") and len(one) == 7 + 64
    assert len({one, signature(SECRET, "1700000001", b"{}"), signature(SECRET, "1700000000", b"{ }")}) == 3
    assert signature("another-secret-16", "1700000000", b"{}") != one


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 2), (2, 4), (3, 8), (4, 16), (9, 512), (10, 600), (11, 600), (100, 600)]
)
def test_backoff_doubles_from_two_seconds_up_to_ten_minutes(attempts, seconds):
    assert backoff(attempts) == seconds


def test_backoff_refuses_attempt_zero():
    with pytest.raises(ValueError, match="attempts starts at 1"):
        backoff(0)


def test_a_failure_waits_its_backoff_then_succeeds(book, receiver):
    receiver.script = [500, 503]
    number = _order(book)
    clock = [datetime(2026, 11, 30, 12, 0, 0)]
    courier = _courier(book, receiver.url, base=2.0, cap=600.0, now=lambda: clock[0])
    book.db.execute("UPDATE outbox SET next_attempt_at=?", ("2026-11-30T11:00:00",))
    assert courier.deliver_due() == 0
    row = book.db.query_one("SELECT * FROM outbox")
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 1, "2026-11-30T12:00:02.000000")
    assert "HTTP 500" in row["last_error"]
    clock[0] += timedelta(seconds=1)
    assert courier.deliver_due() == 0 and len(receiver.seen) == 1  # not due yet: nothing posted
    clock[0] += timedelta(seconds=1)
    assert courier.deliver_due() == 0
    assert book.db.query_one("SELECT next_attempt_at FROM outbox")["next_attempt_at"] == "2026-11-30T12:00:06.000000"
    clock[0] += timedelta(seconds=4)
    assert courier.deliver_due() == 1
    assert receiver.keys() == [f"{number}:work_order.created"] * 3
    assert Deliveries(book.db).get(number).status == "delivered"


def test_after_the_last_attempt_the_delivery_is_dead_and_the_line_moves_on(book, receiver):
    receiver.script = [500, 500, 500, 500]
    first, second = _order(book), _order(book, "路灯不亮")
    courier = _courier(book, receiver.url, attempts=4)
    _drain(courier)
    deliveries = Deliveries(book.db)
    dead = deliveries.get(first)
    assert (dead.status, dead.attempts, dead.status_name) == ("dead", 4, "投递失败")
    assert [d.number for d in deliveries.dead()] == [first]
    assert deliveries.get(second).status == "delivered"
    assert receiver.keys() == [f"{first}:work_order.created"] * 4 + [f"{second}:work_order.created"]


def test_a_refusal_4xx_goes_dead_at_once_but_408_and_429_are_retried(book, receiver):
    receiver.script = [429, 408, 422]
    _order(book)
    _drain(_courier(book, receiver.url, attempts=10))
    row = book.db.query_one("SELECT * FROM outbox")
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert "422" in row["last_error"]


def test_a_failing_head_blocks_later_orders_and_order_is_kept(book, receiver):
    receiver.script = [500, "sleep", 502]  # a failure, a timeout, a failure, then success
    numbers = [_order(book, f"第{i}件事") for i in range(5)]
    courier = _courier(book, receiver.url, timeout=0.5, attempts=10)
    assert courier.deliver_due() == 0
    assert receiver.keys() == [f"{numbers[0]}:work_order.created"]  # the later four wait behind the head
    _drain(courier)
    accepted = [r["headers"]["Idempotency-Key"] for r in receiver.seen[3:]]
    assert accepted == [f"{n}:work_order.created" for n in numbers]
    assert Deliveries(book.db).counts() == {"pending": 0, "delivered": 5, "dead": 0}


def test_a_2xx_with_a_garbage_body_counts_as_accepted_and_garbage_http_as_failure(book, receiver):
    receiver.script = ["garbage"]
    number = _order(book)
    courier = _courier(book, receiver.url)
    assert courier.deliver_due() == 0
    assert book.db.query_one("SELECT last_error FROM outbox")["last_error"]
    _drain(courier)
    assert Deliveries(book.db).get(number).status == "delivered"


def test_a_receiver_that_is_not_there_is_a_failure_not_a_crash(book):
    answer = http_post("http://127.0.0.1:9/nothing", b"{}", {}, 0.5)
    assert answer.status == 0 and answer.reason


def test_two_workers_never_post_the_same_row_at_once(book):
    """The second worker's claim fails while the first holds the lease, and succeeds once it has run out."""
    _order(book)
    clock = [datetime(2026, 11, 30, 12, 0, 0)]
    first = _courier(book, "http://unused", post=lambda *a: Answer(0, "late failure"), lease=30.0, now=lambda: clock[0])
    second = _courier(book, "http://unused", post=lambda *a: Answer(200), lease=30.0, now=lambda: clock[0])
    book.db.execute("UPDATE outbox SET next_attempt_at=?", ("2026-11-30T11:00:00",))
    row = first._claim()  # the first worker takes the head and hangs (or is killed) before it has an answer
    assert row is not None and second.deliver_due() == 0
    clock[0] += timedelta(seconds=29)
    assert second.deliver_due() == 0  # the lease still holds
    clock[0] += timedelta(seconds=2)
    assert second.deliver_due() == 1  # run out: taken over, delivered
    assert first._deliver(row) is False  # the first worker's late failure changes nothing
    row = book.db.query_one("SELECT status, attempts, last_error FROM outbox")
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 1, "")


def test_concurrent_claims_of_one_head_give_it_to_one_worker(book):
    _order(book)
    couriers = [_courier(book, "http://unused", post=lambda *a: Answer(200)) for _ in range(8)]
    barrier = threading.Barrier(len(couriers))
    claimed: list[object] = []

    def claim(courier: Courier) -> None:
        barrier.wait()
        claimed.append(courier._claim())

    threads = [threading.Thread(target=claim, args=(c,)) for c in couriers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(c is not None for c in claimed) == 1


def test_retry_puts_a_dead_delivery_back_with_a_fresh_count(book, receiver):
    receiver.script = [500, 500]
    number = _order(book)
    courier = _courier(book, receiver.url, attempts=2)
    _drain(courier)
    deliveries = Deliveries(book.db)
    assert deliveries.get(number).status == "dead"
    assert deliveries.retry(number) is True
    again = deliveries.get(number)
    assert (again.status, again.attempts) == ("pending", 0)
    _drain(courier)
    assert deliveries.get(number).status == "delivered"
    assert deliveries.retry(number) is False  # delivered: nothing to retry
    assert deliveries.retry("GD20000101000001") is False


def test_retry_all_dead(book, receiver):
    receiver.script = [500] * 4
    numbers = [_order(book), _order(book)]
    _drain(_courier(book, receiver.url, attempts=2))
    deliveries = Deliveries(book.db)
    assert [d.number for d in deliveries.dead()] == numbers
    assert deliveries.retry_dead() == 2
    assert deliveries.counts()["dead"] == 0 and deliveries.oldest_pending().number == numbers[0]


def test_troubled_lists_dead_and_failing_deliveries_only(book, receiver):
    receiver.script = [500, 500, 500]
    failing, waiting = _order(book), _order(book)
    courier = _courier(book, receiver.url, attempts=2, base=60.0, cap=60.0)
    courier.deliver_due()
    troubled = Deliveries(book.db).troubled()
    assert [(d.number, d.status, d.attempts) for d in troubled] == [(failing, "pending", 1)]
    assert waiting not in [d.number for d in troubled]


def test_the_loop_thread_delivers_and_stops(book, receiver):
    number = _order(book)
    courier = _courier(book, receiver.url).start(interval=0.05)
    try:
        deadline = time.monotonic() + 5
        while Deliveries(book.db).get(number).status != "delivered" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        courier.stop()
    assert Deliveries(book.db).get(number).status == "delivered"
    assert courier._thread is None


def test_without_a_webhook_no_outbox_row_is_written(tmp_path):
    quiet = WorkOrderBook(tmp_path / "quiet.sqlite3")
    try:
        quiet.create(channel="web", sender_id="s", description="路灯不亮")
        assert Deliveries(quiet.db).counts() == {"pending": 0, "delivered": 0, "dead": 0}
    finally:
        quiet.close()


def test_the_courier_refuses_a_nonsense_schedule(book):
    with pytest.raises(ValueError, match="base <= cap"):
        Courier(book.db, url="http://x", secret=SECRET, base=5, cap=1)
