"""Hot topics on a real SQLite database: a week of ordinary days raises nothing, a surge raises exactly one alert.

The grouping of unanswered questions is the curation queue's, over the FAKE n-gram embedder of tests/conftest.py;
the counting, the thresholds, the alerts and the webhook are the real thing.
"""

from __future__ import annotations

import json
import math
import random
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from knowledge_base.orders.book import WorkOrderBook
from knowledge_base.orders.topics import HotTopics, alerts, check_hot_topics
from knowledge_base.settings import Settings
from knowledge_base.staff.curation import CurationQueue

pytestmark = pytest.mark.unit

DAY0 = datetime(2026, 11, 20)  # seven ordinary days, then the day under test
TODAY = DAY0 + timedelta(days=7)
ORDINARY = ("T-SB-1", "T-GJJ-SZ")


def _log(db, when: datetime, query: str, *, decision: str = "answer", entry_key: str = "", sender: str = ""):
    candidates = [[entry_key, 0.9]] if entry_key else []
    db.execute(
        "INSERT INTO answer_log (created_at, channel, sender_id, query, decision, entry_key, score, kb_version, "
        "thresholds, candidates) VALUES (?, 'web', ?, ?, ?, ?, 0.9, 1, '{}', ?)",
        (
            when.isoformat(timespec="seconds"),
            sender or f"s{random.random()}",
            query,
            decision,
            entry_key if decision in ("answer", "chosen") else "",
            json.dumps(candidates),
        ),
    )


def _ordinary_week(db, seed: int = 12345) -> dict[tuple[str, datetime], int]:
    """2-6 questions an hour per entry, busier by day than by night, with noise; also up to 2 unanswered ones."""
    rng = random.Random(seed)
    counts: dict[tuple[str, datetime], int] = {}
    for hour_index in range(8 * 24):
        hour = DAY0 + timedelta(hours=hour_index)
        rhythm = 0.5 - 0.5 * math.cos((hour.hour - 3) / 24 * 2 * math.pi)  # 0 at 03:00, 1 at 15:00
        for key in ORDINARY:
            n = max(2, min(6, round(2 + 4 * rhythm + rng.choice((-1, 0, 0, 1)))))
            counts[(key, hour)] = n
            for _ in range(n):
                _log(db, hour + timedelta(minutes=rng.randrange(60)), f"{key} 的问法", entry_key=key)
        for _ in range(rng.randrange(3)):
            _log(db, hour + timedelta(minutes=rng.randrange(60)), "办事大厅几点开门", decision="no_answer")
    return counts


@pytest.fixture
def queue(fake_kb):
    return CurationQueue(fake_kb, fake_kb.store.db)


@pytest.fixture
def db(queue):
    return queue.db


@pytest.fixture
def topics(db, queue):
    return HotTopics(db, queue, factor=3.0, min_count=10)


def _rows(db):
    return db.query("SELECT * FROM topic_alerts ORDER BY id")


@pytest.mark.parametrize("min_count", [10, 3])
def test_a_week_of_ordinary_variation_raises_nothing(db, queue, min_count):
    """With the default minimum, and with a minimum of 3 so that only the factor stands between noise and an alert."""
    _ordinary_week(db)
    topics = HotTopics(db, queue, factor=3.0, min_count=min_count)
    for hour in range(24):
        result = topics.check(TODAY + timedelta(hours=hour, minutes=5))
        assert result.created == [] and result.updated == 0
    assert _rows(db) == []


def test_a_surge_raises_one_alert_that_lasts_while_hot_and_ends_after_a_calm_hour(db, topics):
    counts = _ordinary_week(db)
    surge = TODAY + timedelta(hours=10)
    for i in range(40):
        wording = ("社保缴费记录怎么查，我电话13812345678", "社保交了几个月在哪查", "查社保缴费记录")[i % 3]
        _log(db, surge + timedelta(minutes=i % 30), wording, entry_key="T-SB-1")

    first = topics.check(surge + timedelta(minutes=30))  # the current hour so far is already hot
    assert len(first.created) == 1
    alert = first.created[0]
    expected_baseline = sum(counts[("T-SB-1", surge - timedelta(days=d))] for d in range(1, 8)) / 7
    assert alert.topic == "怎么查询社保缴费记录" and alert.entries == ["T-SB-1"]
    assert alert.count == counts[("T-SB-1", surge)] + 40
    assert alert.baseline == pytest.approx(expected_baseline)
    assert alert.started_at == surge == alert.last_hour and alert.status == "active"
    assert len(alert.samples) <= 5 and "社保交了几个月在哪查" in alert.samples
    assert "社保缴费记录怎么查，我电话138****5678" in alert.samples
    assert not any("13812345678" in s for s in alert.samples)

    before = _rows(db)
    assert topics.check(surge + timedelta(minutes=45)).created == []
    assert _rows(db) == before  # the same hour, the same data: nothing changes
    assert topics.check(surge + timedelta(hours=1, minutes=5)).created == []  # that hour, now complete
    assert _rows(db) == before

    for i in range(45):  # the surge goes on into the next hour
        _log(db, surge + timedelta(hours=1, minutes=i % 60), "社保交了几个月在哪查", entry_key="T-SB-1")
    second = topics.check(surge + timedelta(hours=2, minutes=5))
    assert second.created == [] and second.updated == 1
    [row] = _rows(db)
    assert row["status"] == "active" and row["count"] == counts[("T-SB-1", surge + timedelta(hours=1))] + 45
    assert row["started_at"] == surge.isoformat() and row["last_hour"] == (surge + timedelta(hours=1)).isoformat()

    calm = topics.check(surge + timedelta(hours=3, minutes=5))  # hour 12 was ordinary
    assert calm.ended == 1
    assert [r["status"] for r in _rows(db)] == ["ended"]
    assert topics.check(surge + timedelta(hours=3, minutes=50)).ended == 0

    later = TODAY + timedelta(hours=18)
    for i in range(40):
        _log(db, later + timedelta(minutes=i), "社保缴费记录怎么查", entry_key="T-SB-1")
    assert len(topics.check(later + timedelta(hours=1, minutes=5)).created) == 1
    assert [r["status"] for r in _rows(db)] == ["ended", "active"]
    assert [a.id for a in alerts(db)] == [_rows(db)[1]["id"]]


def test_unanswered_questions_and_work_orders_surge_as_one_group(db, topics):
    _ordinary_week(db)
    surge = TODAY + timedelta(hours=9)
    for i in range(25):
        _log(db, surge + timedelta(minutes=i), "人民路红绿灯坏了", decision="no_answer")
    book = WorkOrderBook(db)
    for i in range(15):
        order = book.create(channel="hotline", sender_id=f"o{i}", description="人民路红绿灯坏了", kind="report")
        stamp = (surge + timedelta(minutes=30 + i)).isoformat(timespec="seconds")
        db.execute("UPDATE work_orders SET created_at=? WHERE id=?", (stamp, order.id))
    result = topics.check(surge + timedelta(hours=1, minutes=1))
    assert len(result.created) == 1
    alert = result.created[0]
    assert alert.topic == "人民路红绿灯坏了" and alert.count == 40 and alert.baseline == 0.0
    assert alert.samples == ["人民路红绿灯坏了"] and alert.entries == []


def test_the_minimum_count_keeps_a_quiet_topic_quiet(db, topics):
    for day in range(7):
        _log(db, DAY0 + timedelta(days=day, hours=10, minutes=7), "广州公积金提取流程", entry_key="T-GJJ-GZ")
    for i in range(5):  # 1 → 5: five times as many, but only five
        _log(db, TODAY + timedelta(hours=10, minutes=i), "广州公积金提取流程", entry_key="T-GJJ-GZ")
    assert topics.check(TODAY + timedelta(hours=11, minutes=1)).created == []
    for i in range(5):  # 1 → 10 reaches both the factor and the minimum
        _log(db, TODAY + timedelta(hours=10, minutes=20 + i), "广州公积金提取流程", entry_key="T-GJJ-GZ")
    assert len(topics.check(TODAY + timedelta(hours=11, minutes=2)).created) == 1


def test_a_choice_counts_once_for_the_entry_the_citizen_picked(db, topics):
    hour = TODAY + timedelta(hours=8)
    for i in range(12):
        sender = f"c{i}"
        db.execute(
            "INSERT INTO answer_log (created_at, channel, sender_id, query, decision, entry_key, score, kb_version, "
            "thresholds, candidates) VALUES (?, 'web', ?, '公积金提取', 'clarify', '', 0.7, 1, '{}', ?)",
            ((hour + timedelta(minutes=i)).isoformat(), sender, json.dumps([["T-GJJ-SZ", 0.7], ["T-GJJ-GZ", 0.69]])),
        )
        later = hour + timedelta(minutes=i, seconds=30)
        _log(db, later, "广州公积金", decision="chosen", entry_key="T-GJJ-GZ", sender=sender)
    [alert] = topics.check(hour + timedelta(hours=1, minutes=1)).created
    assert alert.entries == ["T-GJJ-GZ"] and alert.count == 12


class _Receiver(BaseHTTPRequestHandler):
    fail_next = 0
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Receiver.fail_next:
            _Receiver.fail_next -= 1
            self.send_response(500)
            self.end_headers()
            return
        _Receiver.bodies.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.bodies = []
    _Receiver.fail_next = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


def test_the_webhook_gets_each_new_alert_once_and_a_failure_is_retried(db, queue, receiver, tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"), hot_topic_webhook_url=receiver, order_webhook_timeout=5)
    surge = TODAY + timedelta(hours=10)
    for i in range(30):
        _log(db, surge + timedelta(minutes=i), "社保缴费记录怎么查", entry_key="T-SB-1")
    _Receiver.fail_next = 1
    first = check_hot_topics(settings, db, queue, now=surge + timedelta(minutes=40))
    assert len(first.created) == 1 and first.notified == 0 and _Receiver.bodies == []
    assert _rows(db)[0]["notified_at"] == ""  # refused: left for the next check

    assert check_hot_topics(settings, db, queue, now=surge + timedelta(minutes=45)).notified == 1
    for minutes in (50, 65, 70):
        assert check_hot_topics(settings, db, queue, now=surge + timedelta(minutes=minutes)).notified == 0
    for i in range(30):
        _log(db, surge + timedelta(hours=5, minutes=i), "人民路红绿灯坏了", decision="no_answer")
    assert check_hot_topics(settings, db, queue, now=surge + timedelta(hours=5, minutes=40)).notified == 1
    check_hot_topics(settings, db, queue, now=surge + timedelta(hours=5, minutes=50))

    assert [b["topic"] for b in _Receiver.bodies] == ["怎么查询社保缴费记录", "人民路红绿灯坏了"]
    assert [b["id"] for b in _Receiver.bodies] == [r["id"] for r in _rows(db)]
    assert _Receiver.bodies[0]["count"] == 30 and _Receiver.bodies[0]["event"] == "hot_topic.alert"
    assert all(r["notified_at"] and not r["notified_at"].startswith("sending") for r in _rows(db))


def test_an_alert_left_claimed_by_a_worker_that_died_is_sent_later_and_a_fresh_claim_is_not(db, queue, receiver):
    topics = HotTopics(db, queue, webhook_url=receiver, timeout=5)
    surge = TODAY + timedelta(hours=10)
    for i in range(30):
        _log(db, surge + timedelta(minutes=i), "社保缴费记录怎么查", entry_key="T-SB-1")
    _Receiver.fail_next = 1  # the first try fails: the alert stays unsent
    [alert] = topics.check(surge + timedelta(minutes=40)).created
    fresh = f"sending:{datetime.now().isoformat(timespec='seconds')}"
    db.execute("UPDATE topic_alerts SET notified_at=? WHERE id=?", (fresh, alert.id))
    assert topics.notify(surge + timedelta(minutes=41)) == 0  # another worker is sending it right now
    db.execute("UPDATE topic_alerts SET notified_at='sending:2026-11-27T10:00:00' WHERE id=?", (alert.id,))
    assert topics.notify(surge + timedelta(minutes=42)) == 1  # that worker died: the claim expired
    assert [b["id"] for b in _Receiver.bodies] == [alert.id]
