"""The admin dashboard's numbers: what citizens asked, what the bot did, what went wrong.

:func:`build_dashboard` reads the interaction tables (``answer_log``, ``feedback``,
``work_orders``, ``operator_reports``) over a window of days ending today, and the
knowledge base's entries, and returns a :class:`Dashboard` of frozen records that
a template renders as it is. It is a pure function of its arguments: the database
is reached only through ``query``, so it runs the same on SQLite and PostgreSQL,
and tests pass an in-memory SQLite connection.

The SQL is deliberately plain: the only condition of every statement is
``created_at >= ? AND created_at < ?`` on ISO date strings, because the date
functions that would group by day in SQL differ between SQLite and PostgreSQL.
Days are read from the first ten characters of ``created_at`` (ISO text) in
Python instead. Measured on 100,000 log rows in SQLite: about 0.4-0.6 s, of which
fetching the rows is 0.3 s; grouping in SQL (one grouped query per day and one per
question) was slower on SQLite, so it is not done.

Example:
    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:")
    >>> conn.row_factory = sqlite3.Row
    >>> _ = conn.executescript(
    ...     "CREATE TABLE answer_log (created_at TEXT, channel TEXT, sender_id TEXT, query TEXT,"
    ...     " decision TEXT, entry_key TEXT);"
    ...     "CREATE TABLE feedback (created_at TEXT, entry_key TEXT, useful INTEGER);"
    ...     "CREATE TABLE work_orders (created_at TEXT);"
    ...     "CREATE TABLE operator_reports (created_at TEXT, outcome TEXT);"
    ...     "INSERT INTO answer_log VALUES ('2026-11-26T09:30:00', 'web', 's1', '社保怎么查', 'answer', 'SB-1');"
    ... )
    >>> def query(sql, params):
    ...     return [dict(row) for row in conn.execute(sql, params)]
    >>> board = build_dashboard(query, [], today=date(2026, 11, 26), days=7)
    >>> board.questions["web"]
    (0, 0, 0, 0, 0, 0, 1)
    >>> board.overall.answer_rate
    1.0
    >>> board.top_questions[0].entry_key
    'SB-1'
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from knowledge_base.orders.book import DepartmentLoad
from knowledge_base.records import Entry, Status

__all__ = [
    "CHANNELS",
    "DECISIONS",
    "EXPIRY_HORIZON_DAYS",
    "MAX_DAYS",
    "OUTCOMES",
    "TOP_N",
    "Dashboard",
    "EntryFeedback",
    "ExpiringEntry",
    "FeedbackCount",
    "Query",
    "Rates",
    "TopQuestion",
    "build_dashboard",
    "collapse_whitespace",
    "expiring_entries",
]

Query = Callable[[str, Sequence[Any]], Iterable[Mapping[str, Any]]]
"""Runs one SQL statement with ``?`` placeholders and returns its rows as mappings.

Each result is iterated once, so a generator over the cursor works too and keeps
memory flat over a long window.
"""

CHANNELS = ("web", "hotline")
"""Channels that always have a series, even in a window where nobody used them."""

DECISIONS = ("answer", "clarify", "no_answer")
"""The search's decisions as the answer log writes them (see :class:`knowledge_base.records.Decision`)."""

OUTCOMES = ("used", "not_found", "wrong")
"""What an operator can report about the knowledge base's suggestion."""

MAX_DAYS = 366
"""Longest window: a year, so a dashboard never asks for the whole history at once."""

TOP_N = 10
"""Length of every "top" list."""

EXPIRY_HORIZON_DAYS = 30
"""How far ahead the "expiring soon" list looks: enough time for the policy owner to review an entry."""

_QUESTIONS_SQL = (
    "SELECT created_at, channel, query, decision, entry_key FROM answer_log WHERE created_at >= ? AND created_at < ?"
)
_FEEDBACK_SQL = "SELECT created_at, entry_key, useful FROM feedback WHERE created_at >= ? AND created_at < ?"
_WORK_ORDERS_SQL = "SELECT created_at FROM work_orders WHERE created_at >= ? AND created_at < ?"
# GROUP BY and COUNT are the same in every SQL dialect, and there are only three outcomes.
_OUTCOMES_SQL = (
    "SELECT outcome, COUNT(*) AS n FROM operator_reports WHERE created_at >= ? AND created_at < ? GROUP BY outcome"
)


def collapse_whitespace(text: str) -> str:
    """The default grouping of questions: trimmed, every run of whitespace made one space.

    Example:
        >>> collapse_whitespace("  社保 \\n 怎么查 ")
        '社保 怎么查'
    """
    return " ".join(text.split())


@dataclass(frozen=True)
class Rates:
    """How many questions got each decision, and the shares these make.

    ``total`` counts the three decisions only; with no question at all every
    rate is 0.0, so check ``total`` before reading a rate as "the bot never answered".
    """

    answer: int = 0
    clarify: int = 0
    no_answer: int = 0

    def __post_init__(self) -> None:
        for name in DECISIONS:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Rates.{name} must be a count (an int >= 0), got {value!r}")

    @property
    def total(self) -> int:
        return self.answer + self.clarify + self.no_answer

    @property
    def answer_rate(self) -> float:
        return self.answer / self.total if self.total else 0.0

    @property
    def clarify_rate(self) -> float:
        return self.clarify / self.total if self.total else 0.0

    @property
    def no_answer_rate(self) -> float:
        return self.no_answer / self.total if self.total else 0.0


@dataclass(frozen=True)
class FeedbackCount:
    """Citizens' 有用 / 没用 clicks."""

    useful: int = 0
    not_useful: int = 0

    @property
    def total(self) -> int:
        return self.useful + self.not_useful


@dataclass(frozen=True)
class TopQuestion:
    """A question as citizens asked it, grouped by its normalised text.

    Attributes:
        text: the normalised text that grouped the questions.
        example: the spelling citizens used most often, to show on the page.
        count: how many times it was asked in the window.
        entry_key: the entry most often given as the answer; "" when it was never answered.
    """

    text: str
    example: str
    count: int
    entry_key: str = ""


@dataclass(frozen=True)
class EntryFeedback:
    """Feedback on one entry; ``question`` is "" when the entry no longer exists."""

    entry_key: str
    question: str
    useful: int
    not_useful: int


@dataclass(frozen=True)
class ExpiringEntry:
    """A published entry whose policy stops applying soon."""

    entry: Entry
    days_left: int

    @property
    def expiry_date(self) -> date:
        assert self.entry.expiry_date is not None
        return self.entry.expiry_date


@dataclass(frozen=True)
class Dashboard:
    """Everything the admin dashboard shows, for the ``len(days)`` days ending ``today``.

    Every per-day tuple is aligned with :attr:`days` (oldest first) and has a value
    for every day, zeros included, so it can be charted as it is.

    Attributes:
        today: the last day of the window.
        days: the days of the window, oldest first.
        questions: channel -> questions per day; ``web`` and ``hotline`` are always present.
        rates: the decisions of each day.
        overall: the decisions of the whole window.
        top_questions: the most asked questions, at most :data:`TOP_N`.
        top_unanswered: the most asked questions that got ``no_answer``, at most :data:`TOP_N`.
        feedback: the window's 有用 / 没用 totals.
        feedback_per_day: the 有用 / 没用 counts of each day.
        least_useful: the entries with the most 没用, at most :data:`TOP_N`, only those with at least one.
        operator_outcomes: outcome -> count of operators' reports; the :data:`OUTCOMES` are always present.
        work_orders: work orders created each day.
        expiring: published entries expiring within :data:`EXPIRY_HORIZON_DAYS` days of today, soonest first.
        departments: open, overdue and closed work orders per department now (not limited to the window),
            most overdue first; ``未派单`` for orders not yet assigned.
    """

    today: date
    days: tuple[date, ...]
    questions: Mapping[str, tuple[int, ...]]
    rates: tuple[Rates, ...]
    overall: Rates
    top_questions: tuple[TopQuestion, ...]
    top_unanswered: tuple[TopQuestion, ...]
    feedback: FeedbackCount
    feedback_per_day: tuple[FeedbackCount, ...]
    least_useful: tuple[EntryFeedback, ...]
    operator_outcomes: Mapping[str, int]
    work_orders: tuple[int, ...]
    expiring: tuple[ExpiringEntry, ...]
    departments: tuple[DepartmentLoad, ...] = ()

    @property
    def labels(self) -> list[str]:
        """The days as short Chinese labels for chart axes and table rows, e.g. ``11月26日``."""
        return [f"{d.month}月{d.day}日" for d in self.days]

    @property
    def questions_per_day(self) -> tuple[int, ...]:
        """Questions per day, all channels together."""
        return tuple(sum(day) for day in zip(*self.questions.values(), strict=True))

    @property
    def total_questions(self) -> int:
        return sum(sum(counts) for counts in self.questions.values())

    def rate_series(self) -> dict[str, list[float | None]]:
        """Decision -> its share of each day's questions, None on a day without questions.

        None rather than 0.0, so that a chart draws no bar and does not report a
        quiet day as a day when nothing was answered.
        """
        return {
            "answer": [r.answer_rate if r.total else None for r in self.rates],
            "clarify": [r.clarify_rate if r.total else None for r in self.rates],
            "no_answer": [r.no_answer_rate if r.total else None for r in self.rates],
        }


def build_dashboard(
    query: Query,
    entries: Iterable[Entry],
    *,
    today: date,
    days: int = 30,
    normalise: Callable[[str], str] | None = None,
    department_load: Iterable[DepartmentLoad] = (),
) -> Dashboard:
    """Compute the dashboard for the ``days`` days ending ``today`` (both included).

    Args:
        query: runs SQL with ``?`` placeholders and returns rows as mappings, e.g.
            ``lambda sql, params: [dict(r) for r in conn.execute(sql, params)]``.
        entries: the knowledge base's entries: they give the questions of the
            least useful entries and the list of entries about to expire.
        today: the last day of the window, given so the result does not depend on the clock.
        days: the window's length in days, 1 to :data:`MAX_DAYS`.
        normalise: groups questions for the top lists; trimmed, collapsed whitespace
            by default. Called once per distinct question text: the search's
            ``TextNormaliser.normalise`` takes about 50 µs a text, so 50,000 distinct
            texts add some 2.5 s; give it a cache that outlives the request if that matters.
        department_load: the work-order book's :meth:`~knowledge_base.orders.book.WorkOrderBook.department_load`.

    Returns:
        The dashboard, every per-day series aligned with ``Dashboard.days``.

    Raises:
        ValueError: ``days`` is out of range.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
    if isinstance(today, datetime):
        today = today.date()
    window = tuple(today - timedelta(days=days - 1 - i) for i in range(days))
    # ISO text compares in date order, so the window is a half-open range of
    # strings: "2026-11-26T23:59:59" < "2026-11-27" excludes the day after.
    params = (window[0].isoformat(), (today + timedelta(days=1)).isoformat())
    index = {d.isoformat(): i for i, d in enumerate(window)}
    normalise = normalise or collapse_whitespace
    entries = list(entries)
    by_key = {e.key: e for e in entries if e.key}

    questions = _questions(query(_QUESTIONS_SQL, params), index, normalise)
    feedback = _feedback(query(_FEEDBACK_SQL, params), index, by_key)
    orders = [0] * days
    for row in query(_WORK_ORDERS_SQL, params):
        i = _day_index(row["created_at"], index)
        if i is not None:
            orders[i] += 1
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for row in query(_OUTCOMES_SQL, params):
        outcomes[str(row["outcome"])] = outcomes.get(str(row["outcome"]), 0) + int(row["n"])

    return Dashboard(
        today=today,
        days=window,
        questions=questions.per_channel,
        rates=questions.rates,
        overall=questions.overall,
        top_questions=questions.top,
        top_unanswered=questions.top_unanswered,
        feedback=feedback.total,
        feedback_per_day=feedback.per_day,
        least_useful=feedback.least_useful,
        operator_outcomes=MappingProxyType(outcomes),
        work_orders=tuple(orders),
        expiring=expiring_entries(entries, today=today),
        departments=tuple(department_load),
    )


def expiring_entries(
    entries: Iterable[Entry], *, today: date, within: int = EXPIRY_HORIZON_DAYS
) -> tuple[ExpiringEntry, ...]:
    """Published entries whose expiry date is from ``today`` to ``today + within`` days, soonest first.

    An entry expiring today is listed (it still applies today); one that already
    expired is not, because it is no longer served and is the archive's business.
    """
    last = today + timedelta(days=within)
    soon = [
        ExpiringEntry(e, (e.expiry_date - today).days)
        for e in entries
        if e.status is Status.PUBLISHED and e.expiry_date is not None and today <= e.expiry_date <= last
    ]
    soon.sort(key=lambda x: (x.expiry_date, x.entry.key, x.entry.question))
    return tuple(soon)


@dataclass(frozen=True)
class _Questions:
    per_channel: Mapping[str, tuple[int, ...]]
    rates: tuple[Rates, ...]
    overall: Rates
    top: tuple[TopQuestion, ...]
    top_unanswered: tuple[TopQuestion, ...]


def _questions(
    rows: Iterable[Mapping[str, Any]], index: Mapping[str, int], normalise: Callable[[str], str]
) -> _Questions:
    days = len(index)
    # The loop over rows is the only one whose length grows with traffic, so it
    # does the least possible: two counter increments a row. Days, channels and
    # groups of questions are worked out afterwards from the distinct keys.
    cells: Counter[tuple[int, str, str]] = Counter()
    asked: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        created_at = row["created_at"]
        i = index.get(created_at[:10]) if isinstance(created_at, str) else _day_index(created_at, index)
        if i is None:
            continue
        decision = row["decision"]
        cells[i, row["channel"], decision] += 1
        asked[row["query"] or "", decision, row["entry_key"] or ""] += 1

    per_channel: dict[str, list[int]] = {channel: [0] * days for channel in CHANNELS}
    per_day = {decision: [0] * days for decision in DECISIONS}
    for (i, channel, decision), n in cells.items():
        per_channel.setdefault(channel, [0] * days)[i] += n
        if decision in per_day:
            per_day[decision][i] += n
    rates = tuple(Rates(*day) for day in zip(*(per_day[d] for d in DECISIONS), strict=True))
    overall = Rates(*(sum(per_day[d]) for d in DECISIONS))
    # Known channels first in a fixed order, so charts keep their colours from day to day.
    ordered = {channel: tuple(per_channel.pop(channel)) for channel in CHANNELS}
    ordered.update((channel, tuple(per_channel[channel])) for channel in sorted(per_channel))

    # Once per distinct text, so that a slow normaliser (jieba, OpenCC) costs little.
    groups: dict[str, str] = {}
    totals: Counter[str] = Counter()
    unanswered: Counter[str] = Counter()
    for (text, decision, _key), n in asked.items():
        group = groups.get(text)
        if group is None:
            group = groups[text] = normalise(text)
        if group:  # a question that normalises to nothing is noise, not a topic
            totals[group] += n
            if decision == "no_answer":
                unanswered[group] += n
    top = _rank(totals)
    top_unanswered = _rank(unanswered)

    # Spellings and answers are collected for the winners only, not for every group.
    wanted = {group for group, _ in top} | {group for group, _ in top_unanswered}
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    unanswered_spellings: dict[str, Counter[str]] = defaultdict(Counter)
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    for (text, decision, key), n in asked.items():
        group = groups[text]
        if group not in wanted:
            continue
        spellings[group][text] += n
        if decision == "no_answer":
            unanswered_spellings[group][text] += n
        elif decision == "answer" and key:
            answers[group][key] += n
    return _Questions(
        per_channel=MappingProxyType(ordered),
        rates=rates,
        overall=overall,
        top=tuple(
            TopQuestion(group, _most_common(spellings[group]), n, _most_common(answers[group])) for group, n in top
        ),
        top_unanswered=tuple(
            TopQuestion(group, _most_common(unanswered_spellings[group]), n) for group, n in top_unanswered
        ),
    )


def _rank(totals: Mapping[str, int]) -> list[tuple[str, int]]:
    """The :data:`TOP_N` largest counts; ties by text, so the page does not reshuffle between reloads."""
    return heapq.nsmallest(TOP_N, totals.items(), key=lambda item: (-item[1], item[0]))


def _most_common(counter: Counter[str]) -> str:
    """The most frequent key, the smallest on a tie; "" when there is none."""
    if not counter:
        return ""
    return min(counter.items(), key=lambda item: (-item[1], item[0]))[0]


@dataclass(frozen=True)
class _Feedback:
    total: FeedbackCount
    per_day: tuple[FeedbackCount, ...]
    least_useful: tuple[EntryFeedback, ...]


def _feedback(rows: Iterable[Mapping[str, Any]], index: Mapping[str, int], by_key: Mapping[str, Entry]) -> _Feedback:
    days = len(index)
    useful = [0] * days
    not_useful = [0] * days
    per_entry: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        i = _day_index(row["created_at"], index)
        if i is None:
            continue
        # PostgreSQL may hand back a boolean where SQLite has 0/1; bool() reads both.
        if bool(row["useful"]):
            useful[i] += 1
            per_entry[row["entry_key"]][0] += 1
        else:
            not_useful[i] += 1
            per_entry[row["entry_key"]][1] += 1
    worst = sorted(
        ((key, counts) for key, counts in per_entry.items() if counts[1]),
        key=lambda item: (-item[1][1], item[1][0], item[0]),
    )[:TOP_N]
    entry_question = {key: entry.question for key, entry in by_key.items()}
    return _Feedback(
        total=FeedbackCount(sum(useful), sum(not_useful)),
        per_day=tuple(FeedbackCount(u, n) for u, n in zip(useful, not_useful, strict=True)),
        least_useful=tuple(
            EntryFeedback(entry_key=key, question=entry_question.get(key, ""), useful=u, not_useful=n)
            for key, (u, n) in worst
        ),
    )


def _day_index(created_at: object, index: Mapping[str, int]) -> int | None:
    """The window position of a row's day, or None for a row outside the window.

    SQLite gives ISO text; PostgreSQL gives a datetime when the column is a timestamp.
    """
    if isinstance(created_at, str):
        return index.get(created_at[:10])
    if isinstance(created_at, date):
        return index.get(created_at.isoformat()[:10])
    return None
