"""The operators' reports (knowledge_base/staff/operator_log.py) on a real in-memory SQLite database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from knowledge_base.errors import InvalidEntry
from knowledge_base.staff.operator_log import OUTCOMES, OperatorLog
from knowledge_base.storage.database import open_database

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 30, 15, 123456)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db():
    database = open_database(":memory:")
    yield database
    database.close()


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def log(db, clock):
    return OperatorLog(db, clock=clock)


def test_a_report_is_stored_as_the_table_other_readers_expect(log, db):
    report = log.record("wang", "  社保  怎么查\n", "used", "GD-SB-001", kb_version=7)
    assert (report.operator, report.query, report.entry_key, report.outcome, report.reason, report.kb_version) == (
        "wang",
        "社保 怎么查",
        "GD-SB-001",
        "used",
        "",
        7,
    )
    [row] = db.query("SELECT * FROM operator_reports")
    assert row == {
        "id": report.id,
        "created_at": "2026-11-26T09:30:15",  # ISO to the second: the dashboard reads its first ten characters
        "operator": "wang",
        "query": "社保 怎么查",
        "entry_key": "GD-SB-001",
        "outcome": "used",
        "reason": "",
        "kb_version": 7,
    }
    assert log.reports() == [report]


def test_the_table_is_created_once_and_shared(db):
    OperatorLog(db).record("wang", "社保", "not_found", reason="没有异地转移的条目", kb_version=1)
    assert len(OperatorLog(db).reports()) == 1  # a second log on the same database sees the first one's rows


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("wang", "社保", "great", "K"), {}, "outcome"),
        (("wang", "社保", ""), {}, "outcome"),
        (("wang", "社保", "not_found"), {}, "reason"),
        (("wang", "社保", "wrong", "K"), {}, "reason"),
        (("wang", "社保", "wrong", "K", " \n "), {}, "reason"),
        (("wang", "社保", "wrong", "", "过期了"), {}, "entry_key"),
        (("wang", "社保", "used"), {}, "entry_key"),
        (("wang", "社保", "used", "K 1"), {}, "entry_key"),
        (("wang", "社保", "used", "K" * 65), {}, "entry_key"),
        (("wang", "", "used", "K"), {}, "query"),
        (("wang", " \t ", "used", "K"), {}, "query"),
        (("wang", None, "used", "K"), {}, "query"),
        (("wang", 42, "used", "K"), {}, "query"),
        (("wang", "问" * 1001, "used", "K"), {}, "query"),
        (("wang", "社保\x00", "used", "K"), {}, "query"),
        (("wang", "社保", "not_found", "", "因" * 501), {}, "reason"),
        (("wang", "社保", "not_found", "", "坏\x1b"), {}, "reason"),
        (("", "社保", "used", "K"), {}, "operator"),
        (("wang", "社保", "used", "K"), {"kb_version": -1}, "kb_version"),
        (("wang", "社保", "used", "K"), {"kb_version": "3"}, "kb_version"),
        (("wang", "社保", "used", "K"), {"kb_version": True}, "kb_version"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(log, args, kwargs, field):
    with pytest.raises(InvalidEntry) as refused:
        log.record(*args, **{"kb_version": 1, **kwargs})
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")
    assert log.reports() == []


def test_limits_are_inclusive(log):
    report = log.record("wang", "问" * 1000, "not_found", "", "因" * 500, kb_version=0)
    assert len(report.query) == 1000 and len(report.reason) == 500


def test_reports_filter_by_time_and_outcome_newest_first(log, clock):
    log.record("wang", "社保怎么查", "used", "K1", kb_version=1)
    clock.now = T0 + timedelta(days=1)
    log.record("li", "公积金提取", "wrong", "K2", "电话已停用", kb_version=2)
    clock.now = T0 + timedelta(days=2)
    log.record("li", "居住证", "not_found", "", "没有居住证续签条目", kb_version=2)
    assert [r.query for r in log.reports()] == ["居住证", "公积金提取", "社保怎么查"]
    assert [r.outcome for r in log.reports(outcomes=["wrong", "not_found"])] == ["not_found", "wrong"]
    assert [r.query for r in log.reports(since=T0 + timedelta(hours=1))] == ["居住证", "公积金提取"]
    assert [r.query for r in log.reports(since=date(2026, 11, 28))] == ["居住证"]
    assert [r.query for r in log.reports(since="2026-11-27T09:30:15")] == ["居住证", "公积金提取"]
    assert log.reports(outcomes=[]) == []
    assert len(log.reports(limit=1)) == 1


@pytest.mark.parametrize("kwargs", [{"outcomes": ["great"]}, {"since": "yesterday"}, {"limit": 0}, {"limit": 10_001}])
def test_bad_report_queries_say_what_is_allowed(log, kwargs):
    with pytest.raises(ValueError, match=r"allowed|ISO|between"):
        log.reports(**kwargs)


def test_the_outcomes_are_the_dashboards():
    from knowledge_base.staff.reports import OUTCOMES as DASHBOARD_OUTCOMES

    assert OUTCOMES == DASHBOARD_OUTCOMES


def test_hostile_text_is_stored_as_it_was_typed(log):
    text = "'); DROP TABLE operator_reports; -- <script>alert(1)</script>"
    log.record("wang", text, "not_found", "", text, kb_version=1)
    [report] = log.reports()
    assert report.query == text and report.reason == text
