"""Dashboard numbers over an in-memory SQLite database that the tests fill row by row."""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from knowledge_base.records import Entry, Status
from knowledge_base.staff.reports import (
    MAX_DAYS,
    TOP_N,
    EntryFeedback,
    FeedbackCount,
    Rates,
    build_dashboard,
    collapse_whitespace,
)

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 26)

# The columns the interaction tables have in production; the tests own this copy
# so that they do not depend on the schema module's private text.
SCHEMA = """
CREATE TABLE answer_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, channel TEXT NOT NULL,
    sender_id TEXT NOT NULL, query TEXT NOT NULL, decision TEXT NOT NULL, entry_key TEXT NOT NULL,
    score REAL, kb_version INTEGER NOT NULL, thresholds TEXT NOT NULL, candidates TEXT NOT NULL
);
CREATE INDEX answer_log_time ON answer_log (created_at);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, channel TEXT NOT NULL,
    sender_id TEXT NOT NULL, entry_key TEXT NOT NULL, kb_version INTEGER NOT NULL,
    useful INTEGER NOT NULL, comment TEXT NOT NULL
);
CREATE TABLE work_orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT UNIQUE, created_at TEXT NOT NULL,
    channel TEXT NOT NULL, sender_id TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
    phone TEXT NOT NULL, description TEXT NOT NULL, transcript TEXT NOT NULL, entries TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE operator_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, operator TEXT NOT NULL,
    query TEXT NOT NULL, entry_key TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
    kb_version INTEGER NOT NULL
);
"""


class Db:
    """The four tables in memory, with one insert helper per table."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:")
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(SCHEMA)
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        self.statements.append((sql, tuple(params)))
        return [dict(row) for row in self.conn.execute(sql, params)]

    def ask(
        self, when: str, query: str = "社保怎么查", *, channel: str = "web", decision: str = "answer", key: str = ""
    ) -> None:
        if decision == "answer" and not key:
            key = "SB-1"
        self.conn.execute(
            "INSERT INTO answer_log (created_at, channel, sender_id, query, decision, entry_key, score, kb_version,"
            " thresholds, candidates) VALUES (?, ?, 's1', ?, ?, ?, 0.9, 1, '{}', '[]')",
            (when, channel, query, decision, key),
        )

    def feedback(self, when: str, key: str, useful: bool) -> None:
        self.conn.execute(
            "INSERT INTO feedback (created_at, channel, sender_id, entry_key, kb_version, useful, comment)"
            " VALUES (?, 'web', 's1', ?, 1, ?, '')",
            (when, key, int(useful)),
        )

    def work_order(self, when: str) -> None:
        self.conn.execute(
            "INSERT INTO work_orders (created_at, channel, sender_id, region, name, phone, description, transcript,"
            " entries, status) VALUES (?, 'web', 's1', '', '', '', '噪音扰民', '[]', '[]', 'open')",
            (when,),
        )

    def operator_report(self, when: str, outcome: str) -> None:
        self.conn.execute(
            "INSERT INTO operator_reports (created_at, operator, query, entry_key, outcome, reason, kb_version)"
            " VALUES (?, 'op1', '社保怎么查', 'SB-1', ?, '', 1)",
            (when, outcome),
        )


@pytest.fixture
def db() -> Iterator[Db]:
    d = Db()
    yield d
    d.conn.close()


def board(db: Db, entries: Sequence[Entry] = (), **kwargs: Any):
    kwargs.setdefault("today", TODAY)
    kwargs.setdefault("days", 7)
    return build_dashboard(db.query, list(entries), **kwargs)


def at(day: int, time: str = "10:00:00") -> str:
    """An ISO timestamp on a day of November 2026, as the interaction log writes it."""
    return f"2026-11-{day:02d}T{time}"


# -- window and per-day counts -----------------------------------------------------


def test_an_empty_database_gives_every_day_with_zeros(db):
    b = board(db)
    assert b.days == tuple(date(2026, 11, d) for d in range(20, 27))
    assert b.labels[0] == "11月20日" and b.labels[-1] == "11月26日"
    assert dict(b.questions) == {"web": (0,) * 7, "hotline": (0,) * 7}
    assert b.rates == (Rates(),) * 7 and b.overall.total == 0 and b.overall.answer_rate == 0.0
    assert b.top_questions == () and b.top_unanswered == ()
    assert b.feedback == FeedbackCount() and b.feedback_per_day == (FeedbackCount(),) * 7 and b.least_useful == ()
    assert dict(b.operator_outcomes) == {"used": 0, "not_found": 0, "wrong": 0}
    assert b.work_orders == (0,) * 7 and b.expiring == ()
    assert b.total_questions == 0 and b.questions_per_day == (0,) * 7


def test_questions_are_counted_per_day_and_channel_with_the_window_edges_exact(db):
    db.ask("2026-11-19T23:59:59")  # the day before the window
    db.ask("2026-11-20T00:00:00")  # first second of the window
    db.ask(at(22), channel="hotline")
    db.ask(at(22, "18:30:00"), channel="hotline")
    db.ask("2026-11-26T23:59:59")  # last second of today
    db.ask("2026-11-27T00:00:00")  # tomorrow: a clock ahead must not add to today
    b = board(db)
    assert b.questions["web"] == (1, 0, 0, 0, 0, 0, 1)
    assert b.questions["hotline"] == (0, 0, 2, 0, 0, 0, 0)
    assert b.questions_per_day == (1, 0, 2, 0, 0, 0, 1)
    assert b.total_questions == 4


def test_a_one_day_window_is_today_only(db):
    db.ask(at(25))
    db.ask(at(26))
    b = board(db, days=1)
    assert b.days == (TODAY,) and b.questions["web"] == (1,)


def test_a_datetime_today_is_read_as_its_date(db):
    db.ask(at(26))
    assert board(db, today=datetime(2026, 11, 26, 8, 0)).questions["web"][-1] == 1


def test_an_unknown_channel_gets_its_own_series_after_the_known_ones(db):
    db.ask(at(26), channel="wechat")
    db.ask(at(26), channel="app")
    b = board(db)
    assert list(b.questions) == ["web", "hotline", "app", "wechat"]
    assert b.questions["wechat"][-1] == 1


@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1, True, 7.0, "7"])
def test_a_window_out_of_range_is_refused_with_the_allowed_range(db, days):
    with pytest.raises(ValueError, match=rf"1 to {MAX_DAYS}, got"):
        board(db, days=days)


def test_the_sql_is_portable_plain_comparisons_with_question_mark_placeholders(db):
    board(db)
    assert len(db.statements) == 4
    for sql, params in db.statements:
        assert "created_at >= ? AND created_at < ?" in sql
        assert not re.search(r"date\(|strftime|julianday|substr|::|%s", sql, re.IGNORECASE)
        assert params == ("2026-11-20", "2026-11-27")


def test_rows_with_datetime_values_as_postgresql_returns_them_are_counted_too(db):
    db.ask(at(24))
    db.ask(at(26))

    def query(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        rows = db.query(sql, params)
        for row in rows:
            if "created_at" in row:
                row["created_at"] = datetime.fromisoformat(row["created_at"])
        return rows

    b = build_dashboard(query, [], today=TODAY, days=7)
    assert b.questions["web"] == (0, 0, 0, 0, 1, 0, 1)


# -- decisions --------------------------------------------------------------------


def test_rates_per_day_and_overall(db):
    for decision in ("answer", "answer", "clarify", "no_answer"):
        db.ask(at(25), decision=decision)
    db.ask(at(26), decision="no_answer")
    b = board(db)
    assert b.rates[-2] == Rates(answer=2, clarify=1, no_answer=1)
    assert (b.rates[-2].answer_rate, b.rates[-2].clarify_rate, b.rates[-2].no_answer_rate) == (0.5, 0.25, 0.25)
    assert b.rates[-1].no_answer_rate == 1.0 and b.rates[-1].answer_rate == 0.0
    assert b.rates[0].total == 0 and b.rates[0].answer_rate == 0.0  # a quiet day is not a bad day
    assert b.overall == Rates(answer=2, clarify=1, no_answer=2)
    assert b.overall.answer_rate == pytest.approx(0.4)


def test_rate_series_leave_days_without_questions_empty(db):
    db.ask(at(26), decision="answer")
    db.ask(at(26), decision="no_answer")
    series = board(db, days=2).rate_series()
    assert series == {"answer": [None, 0.5], "clarify": [None, 0.0], "no_answer": [None, 0.5]}


def test_rates_refuse_a_negative_count():
    with pytest.raises(ValueError, match="answer must be a count"):
        Rates(answer=-1)


# -- top lists -------------------------------------------------------------------


def test_top_questions_group_spellings_and_name_the_entry_most_often_given(db):
    for _ in range(3):
        db.ask(at(26), "社保 怎么查", key="SB-1")
    db.ask(at(25), "  社保  怎么查 ", key="SB-2")
    db.ask(at(25), "社保\t怎么查", decision="clarify", key="")
    db.ask(at(24), "港澳通行证续签", decision="no_answer")
    db.ask(at(24), "港澳通行证续签", decision="no_answer")
    b = board(db)
    first, second = b.top_questions
    assert (first.text, first.example, first.count, first.entry_key) == ("社保 怎么查", "社保 怎么查", 5, "SB-1")
    assert (second.text, second.count, second.entry_key) == ("港澳通行证续签", 2, "")
    assert [(q.text, q.count) for q in b.top_unanswered] == [("港澳通行证续签", 2)]


def test_the_example_is_the_spelling_citizens_used_most(db):
    db.ask(at(26), "社保  怎么查")
    db.ask(at(26), "社保 怎么查 ")
    db.ask(at(26), "社保 怎么查 ")
    assert board(db).top_questions[0].example == "社保 怎么查 "


def test_top_lists_hold_ten_most_asked_with_ties_in_text_order(db):
    for i in range(12):
        for _ in range(20 - i if i < 10 else 1):
            db.ask(at(26), f"问题{i:02d}", decision="no_answer")
    db.ask(at(26), "问题99", decision="no_answer")  # ties with 问题10 and 问题11 for the last places
    b = board(db)
    assert len(b.top_questions) == TOP_N == len(b.top_unanswered)
    assert [q.text for q in b.top_questions] == [f"问题{i:02d}" for i in range(10)]
    assert [q.count for q in b.top_unanswered] == list(range(20, 10, -1))


def test_ties_are_ordered_by_text_so_the_page_is_stable(db):
    for text in ("乙", "甲", "丙"):
        db.ask(at(26), text)
    assert [q.text for q in board(db).top_questions] == sorted(["乙", "甲", "丙"])


def test_a_custom_normaliser_groups_questions_and_is_called_once_per_distinct_text(db):
    calls: list[str] = []

    def normalise(text: str) -> str:
        calls.append(text)
        return collapse_whitespace(text).rstrip("？?")

    for text in ("社保怎么查？", "社保怎么查?", "社保怎么查", "社保怎么查"):
        db.ask(at(26), text)
    b = board(db, normalise=normalise)
    assert [(q.text, q.count, q.example) for q in b.top_questions] == [("社保怎么查", 4, "社保怎么查")]
    assert sorted(calls) == sorted(["社保怎么查？", "社保怎么查?", "社保怎么查"])


def test_questions_that_normalise_to_nothing_stay_out_of_the_top_lists_but_are_counted(db):
    db.ask(at(26), "   ", decision="no_answer")
    b = board(db)
    assert b.top_questions == () and b.top_unanswered == ()
    assert b.total_questions == 1 and b.overall.no_answer == 1


def test_the_top_lists_see_only_the_window(db):
    db.ask(at(19), "上周的问题")
    db.ask(at(26), "今天的问题")
    assert [q.text for q in board(db).top_questions] == ["今天的问题"]


# -- feedback ---------------------------------------------------------------------

ENTRIES = [
    Entry(key="SB-1", question="怎么查询社保缴费记录"),
    Entry(key="GA-1", question="港澳通行证怎么续签"),
]


def test_feedback_totals_per_day_and_the_least_useful_entries(db):
    db.feedback(at(26), "SB-1", useful=True)
    db.feedback(at(26), "SB-1", useful=False)
    db.feedback(at(25), "GA-1", useful=False)
    db.feedback(at(25), "GA-1", useful=False)
    db.feedback(at(24), "GONE-1", useful=False)  # an entry deleted since
    db.feedback(at(24), "OK-1", useful=True)  # never 没用: not in the list
    db.feedback(at(19), "SB-1", useful=False)  # before the window
    b = board(db, ENTRIES)
    assert b.feedback == FeedbackCount(useful=2, not_useful=4) and b.feedback.total == 6
    assert b.feedback_per_day[-3:] == (FeedbackCount(1, 1), FeedbackCount(0, 2), FeedbackCount(1, 1))
    assert b.feedback_per_day[0] == FeedbackCount()
    assert b.least_useful == (
        EntryFeedback("GA-1", "港澳通行证怎么续签", useful=0, not_useful=2),
        EntryFeedback("GONE-1", "", useful=0, not_useful=1),
        EntryFeedback("SB-1", "怎么查询社保缴费记录", useful=1, not_useful=1),
    )


def test_feedback_accepts_booleans_as_postgresql_returns_them(db):
    db.feedback(at(26), "SB-1", useful=True)
    db.feedback(at(26), "SB-1", useful=False)

    def query(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        rows = db.query(sql, params)
        for row in rows:
            if "useful" in row:
                row["useful"] = bool(row["useful"])
        return rows

    assert build_dashboard(query, [], today=TODAY).feedback == FeedbackCount(1, 1)


def test_at_most_ten_least_useful_entries(db):
    for i in range(12):
        for _ in range(i + 1):
            db.feedback(at(26), f"E-{i:02d}", useful=False)
    b = board(db)
    assert [f.entry_key for f in b.least_useful] == [f"E-{i:02d}" for i in range(11, 1, -1)]


# -- operators, work orders --------------------------------------------------------


def test_operator_outcomes_are_counted_in_the_window_with_every_outcome_present(db):
    db.operator_report(at(26), "used")
    db.operator_report(at(25), "used")
    db.operator_report(at(25), "wrong")
    db.operator_report(at(19), "not_found")  # before the window
    db.operator_report(at(26), "other")  # an outcome added later still shows
    assert dict(board(db).operator_outcomes) == {"used": 2, "not_found": 0, "wrong": 1, "other": 1}


def test_work_orders_per_day(db):
    db.work_order(at(20, "00:00:00"))
    db.work_order(at(26))
    db.work_order(at(26, "23:59:59"))
    db.work_order("2026-11-27T00:00:01")
    assert board(db).work_orders == (1, 0, 0, 0, 0, 0, 2)


def test_the_dashboard_is_read_only(db):
    b = board(db)
    with pytest.raises(TypeError):
        b.questions["web"] = ()  # type: ignore[index]
    with pytest.raises(TypeError):
        b.operator_outcomes["used"] = 5  # type: ignore[index]


# -- expiring entries -------------------------------------------------------------


def test_expiring_entries_are_published_ones_within_thirty_days_soonest_first(db):
    def entry(key: str, expiry: date | None, status: Status = Status.PUBLISHED) -> Entry:
        return Entry(key=key, question=f"问题 {key}", expiry_date=expiry, status=status)

    entries = [
        entry("LATE", TODAY + timedelta(days=30)),  # last day of the horizon: listed
        entry("TOO-LATE", TODAY + timedelta(days=31)),
        entry("TODAY", TODAY),  # still applies today: listed
        entry("GONE", TODAY - timedelta(days=1)),  # already expired
        entry("SOON", TODAY + timedelta(days=3)),
        entry("DRAFT", TODAY + timedelta(days=3), Status.DRAFT),
        entry("NEVER", None),
        entry("ALSO-SOON", TODAY + timedelta(days=3)),
    ]
    b = board(db, entries)
    assert [(x.entry.key, x.days_left) for x in b.expiring] == [
        ("TODAY", 0),
        ("ALSO-SOON", 3),
        ("SOON", 3),
        ("LATE", 30),
    ]
    assert b.expiring[0].expiry_date == TODAY


def test_entries_without_a_key_are_listed_too(db):
    entries = [Entry(question=f"问题{i}", expiry_date=TODAY + timedelta(days=i)) for i in (1, 2)]
    assert [x.entry.question for x in board(db, entries).expiring] == ["问题1", "问题2"]


def test_the_expiry_horizon_does_not_follow_the_window(db):
    entries = [Entry(key="SOON", question="问题", expiry_date=TODAY + timedelta(days=20))]
    assert [x.entry.key for x in board(db, entries, days=1).expiring] == ["SOON"]


# -- volume -----------------------------------------------------------------------


def test_a_hundred_thousand_log_rows_add_up(db):
    """Totals over 100,000 rows must match what was inserted (the timing is measured separately)."""
    rng = random.Random(12345)
    decisions = ("answer", "clarify", "no_answer")
    rows = []
    expected_per_day = [0] * 30
    expected_decisions = dict.fromkeys(decisions, 0)
    expected_channels = {"web": 0, "hotline": 0}
    for i in range(100_000):
        offset = rng.randrange(35)  # five days fall before the window
        day = TODAY - timedelta(days=offset)
        channel = rng.choice(("web", "hotline"))
        decision = rng.choice(decisions)
        rows.append(
            (
                f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
                channel,
                f"问题{rng.randrange(500)}",
                decision,
                f"E-{i % 50}" if decision == "answer" else "",
            )
        )
        if offset < 30:
            expected_per_day[29 - offset] += 1
            expected_decisions[decision] += 1
            expected_channels[channel] += 1
    db.conn.executemany(
        "INSERT INTO answer_log (created_at, channel, sender_id, query, decision, entry_key, score, kb_version,"
        " thresholds, candidates) VALUES (?, ?, 's', ?, ?, ?, NULL, 1, '{}', '[]')",
        rows,
    )
    b = board(db, days=30)
    assert list(b.questions_per_day) == expected_per_day
    assert {channel: sum(counts) for channel, counts in b.questions.items()} == expected_channels
    assert (b.overall.answer, b.overall.clarify, b.overall.no_answer) == tuple(expected_decisions[d] for d in decisions)
    assert b.total_questions == sum(expected_per_day) == b.overall.total
    assert sum(day.total for day in b.rates) == b.overall.total
    assert len(b.top_questions) == TOP_N and len(b.top_unanswered) == TOP_N
    assert b.top_questions[0].count >= b.top_questions[-1].count


def test_rows_outside_the_window_from_a_loose_query_are_ignored():
    """A query function that ignores the bounds (a view, a cache) still gives the window's numbers only."""

    def query(sql: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
        if "answer_log" not in sql:
            return []
        return [
            {
                "created_at": "2026-10-01T10:00:00",
                "channel": "web",
                "query": "旧",
                "decision": "answer",
                "entry_key": "",
            },
            {"created_at": at(26), "channel": "web", "query": "新", "decision": "answer", "entry_key": ""},
        ]

    b = build_dashboard(query, [], today=TODAY, days=7)
    assert b.total_questions == 1 and [q.text for q in b.top_questions] == ["新"]
