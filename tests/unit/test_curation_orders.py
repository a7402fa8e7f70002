"""Closed work orders with a general reply in the curation queue (工单答复), on a real SQLite database.

The grouping uses the FAKE n-gram embedder of tests/conftest.py, as the queue's other unit tests do.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from knowledge_base.errors import InvalidEntry
from knowledge_base.orders.book import WorkOrderBook
from knowledge_base.records import Status
from knowledge_base.staff.curation import CurationQueue
from knowledge_base.staff.interactions import InteractionStore
from knowledge_base.staff.workflow import Workflow

pytestmark = pytest.mark.unit

REPLY = "路灯已由城市管理局照明所修复；路灯故障可拨打 12345 或在“市容巡查”小程序报修，一般 3 个工作日内修好。"


@pytest.fixture
def db(fake_kb):
    db = fake_kb.store.db
    db.execute(
        "INSERT INTO departments (name, duties, keywords, region, active, updated_at, updated_by) "
        "VALUES ('市城市管理局', '路灯、市容', '路灯 市容', '', 1, ?, 'test')",
        (datetime.now().isoformat(timespec="seconds"),),
    )
    return db


@pytest.fixture
def queue(fake_kb, db):
    return CurationQueue(fake_kb, db)


@pytest.fixture
def book(db):
    return WorkOrderBook(db)


def _closed(book, description: str, *, general: bool, name: str = "", phone: str = "", visit: bool = False):
    order = book.create(
        channel="hotline", sender_id="s1", description=description, kind="report", name=name, phone=phone
    )
    book.assign(order.number, "市城市管理局", actor="dispatcher1")
    book.start(order.number, actor="dispatcher1")
    order = book.finish(order.number, REPLY, actor="dispatcher1", general=general)
    if visit:
        order = book.visit(order.number, "satisfied", actor="dispatcher1")
    return order


def _unanswered(db, query: str) -> None:
    InteractionStore(db).log_answer(
        channel="web",
        sender_id="w1",
        query=query,
        decision="no_answer",
        entry_key="",
        score=None,
        kb_version=1,
        thresholds={},
        candidates=[],
    )


def test_a_general_reply_is_in_the_queue_and_a_personal_one_is_not(queue, book):
    general = _closed(book, "小区路灯坏了好几天了没人修", general=True)
    _closed(book, "我家门口的井盖是我自己弄坏的", general=False)
    still_open = book.create(channel="web", sender_id="s2", description="公园路灯不亮", kind="report")
    visited = _closed(book, "公园的健身器材坏了", general=True, visit=True)

    items = {i.order: i for i in queue.items() if i.order}
    assert set(items) == {general.number, visited.number}
    assert still_open.number not in items
    item = items[general.number]
    assert item.source == "order_reply" and item.query == "小区路灯坏了好几天了没人修" and item.detail == REPLY
    clusters = queue.clusters()
    assert sorted(c.orders[0].order for c in clusters) == sorted(items)
    assert all(c.sources == {"工单答复": 1} for c in clusters)


def test_an_order_is_clustered_with_the_unanswered_questions_about_the_same_matter(queue, book, db):
    order = _closed(book, "小区路灯坏了好几天了没人修", general=True)
    _unanswered(db, "小区路灯坏了好几天没人修")
    _unanswered(db, "小区路灯坏了好几天没人修")
    _unanswered(db, "社保卡丢了怎么补办")
    clusters = queue.clusters()
    [lamp] = [c for c in clusters if any(i.order for i in c.items)]
    assert lamp.sources == {"未能回答": 2, "工单答复": 1}
    assert [o.order for o in lamp.orders] == [order.number]
    assert lamp.wordings == ["小区路灯坏了好几天没人修", "小区路灯坏了好几天了没人修"]
    assert all("社保卡" not in w for w in lamp.wordings)


def test_the_draft_has_the_masked_description_the_wordings_and_the_reply_and_the_order_leaves_the_queue(
    fake_kb, queue, book, db
):
    order = _closed(
        book,
        "我是张三，小区路灯坏了好几天了没人修，张先生电话13812345678",
        general=True,
        name="张三",
        phone="13812345678",
    )
    _unanswered(db, "小区路灯坏了好几天没人修")
    workflow = Workflow(fake_kb, db)
    draft = queue.draft_from_order(
        order.number,
        wordings=["小区路灯坏了好几天没人修", "小区路灯坏了好几天没人修"],
        workflow=workflow,
        author="editor1",
    )
    entry = draft.entry
    assert entry.question == "我是市民，小区路灯坏了好几天了没人修，市民电话138****5678"
    assert entry.similar_questions == ("小区路灯坏了好几天没人修",)
    assert entry.answer == REPLY and entry.department == "市城市管理局"
    assert entry.status == Status.DRAFT and draft.state == "draft" and draft.entry_id is None
    assert [d.id for d in workflow.drafts()] == [draft.id]

    left = queue.items()
    assert all(i.order != order.number for i in left)
    assert all(i.query != "小区路灯坏了好几天没人修" for i in left)  # the wordings went into the draft as well
    with pytest.raises(InvalidEntry, match="已经处理过"):
        queue.draft_from_order(order.number, wordings=[], workflow=workflow, author="editor1")


def test_no_draft_from_a_personal_or_open_order(fake_kb, queue, book):
    workflow = Workflow(fake_kb, fake_kb.store.db)
    personal = _closed(book, "我家的水表读数不对", general=False)
    still_open = book.create(channel="web", sender_id="s2", description="公园路灯不亮", kind="report")
    for number in (personal.number, still_open.number):
        with pytest.raises(InvalidEntry, match="不能生成草稿"):
            queue.draft_from_order(number, wordings=[], workflow=workflow, author="editor1")
    assert workflow.drafts() == []


def test_dismissing_the_cluster_takes_the_order_off_the_queue(queue, book):
    order = _closed(book, "小区路灯坏了好几天了没人修", general=True)
    [cluster] = queue.clusters()
    queue.resolve(cluster.wordings, action="dismissed", actor="editor1")
    assert all(i.order != order.number for i in queue.items())
