"""The interaction log: work orders and their numbers, feedback, the answer log.

Run here on SQLite; tests/integration/test_postgres.py runs the same functions on PostgreSQL too.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest

from knowledge_base.errors import EntryNotFound, InvalidEntry
from knowledge_base.staff.interactions import InteractionStore

pytestmark = pytest.mark.unit


@pytest.fixture
def interactions(tmp_path):
    log = InteractionStore(tmp_path / "kb.sqlite3")
    yield log
    log.close()


def test_work_orders_are_numbered_by_date_and_sequence(interactions):
    first = interactions.create_work_order(
        channel="web", sender_id="s1", description="噪音扰民", name=" 张先生 ", phone="138 1234 5678"
    )
    second = interactions.create_work_order(channel="hotline", sender_id="s2", description="路灯不亮")
    today = f"GD{date.today():%Y%m%d}"
    assert (first.number, second.number) == (f"{today}000001", f"{today}000002")
    assert (first.name, first.phone, first.status) == ("张先生", "13812345678", "received")
    assert interactions.work_order(first.number) == first
    assert [o.number for o in interactions.work_orders()] == [second.number, first.number]  # newest first
    with pytest.raises(EntryNotFound):
        interactions.work_order("GD19990101000001")


def test_concurrent_work_orders_get_distinct_numbers(interactions):
    numbers: list[str] = []
    threads = [
        threading.Thread(
            target=lambda i=i: numbers.append(
                interactions.create_work_order(channel="web", sender_id=f"s{i}", description="问题").number
            )
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(n[-6:]) for n in numbers) == list(range(1, 9))


def test_a_bad_work_order_is_refused_and_nothing_is_stored(interactions):
    with pytest.raises(InvalidEntry, match="description"):
        interactions.create_work_order(channel="web", sender_id="s", description=" ")
    with pytest.raises(InvalidEntry, match="phone"):
        interactions.create_work_order(channel="web", sender_id="s", description="问题", phone="12")
    assert interactions.work_orders(status=None) == []


def test_feedback_and_answer_log_round_trip(interactions):
    interactions.record_feedback(
        channel="web", sender_id="s", entry_key="KB-000001", kb_version=3, useful=True, comment="好"
    )
    interactions.record_feedback(channel="web", sender_id="s", entry_key="KB-000002", kb_version=3, useful=False)
    interactions.log_answer(
        channel="web",
        sender_id="s",
        query="社保怎么查",
        decision="answer",
        entry_key="KB-000001",
        score=0.961,
        kb_version=3,
        thresholds={"answer_threshold": 0.952},
        candidates=[("KB-000001", 0.961)],
    )
    assert [(f["entry_key"], f["useful"]) for f in interactions.feedback()] == [("KB-000001", 1), ("KB-000002", 0)]
    assert len(interactions.feedback("KB-000002")) == 1
    (logged,) = interactions.answer_log()
    assert (logged["query"], logged["score"], logged["kb_version"]) == ("社保怎么查", 0.961, 3)


def test_one_citizens_judgement_of_one_answer_counts_once(interactions):
    """有用 pressed twice, or one request delivered twice after a worker died: one row; a change of mind replaces."""
    for useful in (True, True, False):
        interactions.record_feedback(channel="web", sender_id="s", entry_key="KB-1", kb_version=3, useful=useful)
    interactions.record_feedback(channel="web", sender_id="s", entry_key="KB-1", kb_version=4, useful=True)
    interactions.record_feedback(channel="web", sender_id="t", entry_key="KB-1", kb_version=3, useful=True)
    rows = interactions.feedback("KB-1")
    assert sorted((r["sender_id"], r["kb_version"], r["useful"]) for r in rows) == [
        ("s", 3, 0),
        ("s", 4, 1),
        ("t", 3, 1),
    ]
