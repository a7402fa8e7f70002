"""Hot topics (舆情收集研判): a topic asked about far more than usual raises one alert, until it calms down.

A topic is what a question or a work order is about: the entry that answered it (or
that the citizen chose, or that led the "您是想问" choice); for an unanswered question
or an order without an entry, its group in the curation queue (the same grouping by
meaning, :meth:`CurationQueue.group <knowledge_base.staff.curation.CurationQueue.group>`,
passed in as a :class:`Grouper` because this floor sits below ``staff``).

Each check counts questions plus work orders per topic and hour, and compares the last
complete hour and the current hour so far with the mean of the same hour of day over
the past 7 days. The current hour counts too: an alert minutes after a surge starts is
the point of 舆情预警, and a partial count can only be lower than the full hour's, so
it raises nothing the full hour would not. A topic is hot when its count is at least
``hot_topic_min_count`` and at least ``hot_topic_factor`` × the baseline (at least 1, so
a brand-new topic needs the minimum count).

One surge, one alert: while a topic's alert is active, later hot hours update it; it
ends once a complete hour is back below the threshold. Checking again with the same
data changes nothing, so a timer and every web worker may all run it.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from knowledge_base.plain.privacy import mask
from knowledge_base.settings import Settings
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

log = logging.getLogger("hotline.topics")

HOUR = timedelta(hours=1)
BASELINE_DAYS = 7
MAX_SAMPLES = 5
CHOICE_WINDOW = timedelta(minutes=10)  # as the curation queue: a choice within ten minutes answers the 您是想问
NOTIFY_WITHIN = timedelta(days=1)  # an alert the webhook could not take for a day is not news any more
WEBHOOK_EVENT = "hot_topic.alert"
CLAIM = "sending:"  # notified_at while one worker is sending the alert
CLAIM_EXPIRY = timedelta(minutes=10)


class Grouper(Protocol):
    """Groups questions by meaning (the curation queue does)."""

    def fingerprint(self, query: str) -> str: ...

    def group(self, texts: list[str]) -> list[tuple[str, list[int]]]: ...


@dataclass(frozen=True)
class Alert:
    """One surge of one topic, as the dashboard and the webhook show it."""

    id: int
    topic_key: str
    topic: str
    started_at: datetime
    last_hour: datetime
    count: int
    baseline: float
    samples: list[str]
    entries: list[str]
    status: str
    created_at: datetime
    notified_at: str = ""

    def body(self) -> dict[str, Any]:
        """The webhook's JSON."""
        return {
            "event": WEBHOOK_EVENT,
            "id": self.id,
            "topic": self.topic,
            "started_at": self.started_at.isoformat(),
            "last_hour": self.last_hour.isoformat(),
            "count": self.count,
            "baseline": round(self.baseline, 2),
            "samples": self.samples,
            "entries": self.entries,
            "status": self.status,
        }


@dataclass(frozen=True)
class CheckResult:
    """What one check did: alerts raised, alerts updated or ended, webhook deliveries."""

    created: list[Alert] = field(default_factory=list)
    updated: int = 0
    ended: int = 0
    notified: int = 0


@dataclass
class _Topic:
    name: str = ""
    entries: list[str] = field(default_factory=list)
    hours: Counter[datetime] = field(default_factory=Counter)
    wordings: dict[datetime, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


class HotTopics:
    """Counts topics per hour and keeps ``topic_alerts`` up to date.

    Args:
        db: the knowledge base's database (answer log, work orders, entries, alerts).
        grouper: groups unanswered questions and orders without an entry (the curation queue).
        factor: ``hot_topic_factor``.
        min_count: ``hot_topic_min_count``.
        webhook_url: ``hot_topic_webhook_url`` (empty: dashboard only).
        timeout: seconds to wait for the webhook.
    """

    def __init__(
        self,
        db: Database,
        grouper: Grouper,
        *,
        factor: float = 3.0,
        min_count: int = 10,
        webhook_url: str = "",
        timeout: float = 10.0,
    ) -> None:
        if factor < 1 or min_count < 1:
            raise ValueError(f"factor must be >= 1 (got {factor}) and min_count >= 1 (got {min_count})")
        ensure_current(db)
        self.db = db
        self.grouper = grouper
        self.factor = factor
        self.min_count = min_count
        self.webhook_url = webhook_url
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, grouper: Grouper) -> HotTopics:
        return cls(
            db,
            grouper,
            factor=settings.hot_topic_factor,
            min_count=settings.hot_topic_min_count,
            webhook_url=settings.hot_topic_webhook_url,
            timeout=settings.order_webhook_timeout,
        )

    def threshold(self, baseline: float) -> float:
        return max(float(self.min_count), self.factor * max(baseline, 1.0))

    def check(self, now: datetime | None = None) -> CheckResult:
        """Count, raise, update and end alerts as of ``now``, then deliver new alerts to the webhook."""
        now = now or datetime.now()
        current = now.replace(minute=0, second=0, microsecond=0)
        last = current - HOUR
        topics = self._count(last - timedelta(days=BASELINE_DAYS), current + HOUR)
        hot: dict[str, list[tuple[datetime, int, float]]] = {}
        for key, topic in topics.items():
            for hour in (last, current):
                count = topic.hours[hour]
                days = range(1, BASELINE_DAYS + 1)
                baseline = sum(topic.hours[hour - timedelta(days=d)] for d in days) / BASELINE_DAYS
                if count >= self.threshold(baseline):
                    hot.setdefault(key, []).append((hour, count, baseline))
        created: list[Alert] = []
        updated = ended = 0
        stamp = now.isoformat(timespec="seconds")
        with self.db.transaction():  # one writer at a time: two workers checking at once raise one alert
            active = {a.topic_key: a for a in self.alerts()}
            for key, hours in hot.items():
                top_hour, top_count, top_base = max(hours, key=lambda h: h[1])
                latest = max(h for h, _, _ in hours)
                alert = active.get(key)
                if alert is None:
                    topic = topics[key]
                    samples = [mask(w) for w, _ in topic.wordings[top_hour].most_common(MAX_SAMPLES)]
                    new_id = self.db.insert(
                        "INSERT INTO topic_alerts (topic_key, topic, started_at, last_hour, count, baseline, "
                        "samples, entries, status, created_at, notified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            key,
                            mask(topic.name)[:200],
                            min(h for h, _, _ in hours).isoformat(),
                            latest.isoformat(),
                            top_count,
                            top_base,
                            json.dumps(samples, ensure_ascii=False),
                            json.dumps(topic.entries[:10], ensure_ascii=False),
                            "active",
                            stamp,
                            "",
                        ),
                    )
                    created.append(self._alert(new_id))
                elif latest > alert.last_hour or top_count > alert.count:
                    bigger = top_count > alert.count
                    self.db.execute(
                        "UPDATE topic_alerts SET last_hour=?, count=?, baseline=? WHERE id=?",
                        (
                            max(latest, alert.last_hour).isoformat(),
                            max(top_count, alert.count),
                            top_base if bigger else alert.baseline,
                            alert.id,
                        ),
                    )
                    updated += 1
            for key, alert in active.items():
                if key not in hot and alert.last_hour < last:  # a whole hour back below the threshold
                    self.db.execute("UPDATE topic_alerts SET status='ended' WHERE id=?", (alert.id,))
                    ended += 1
        for alert in created:
            log.warning(
                "hot topic %r: %d in the hour from %s (usually %.1f)",
                alert.topic,
                alert.count,
                alert.last_hour,
                alert.baseline,
            )
        return CheckResult(created, updated, ended, self.notify(now))

    def alerts(self, *, status: str = "active", limit: int = 50) -> list[Alert]:
        """Alerts of ``status`` (``active``, ``ended``, or ``""`` for all), newest first."""
        return alerts(self.db, status=status, limit=limit)

    def notify(self, now: datetime | None = None) -> int:
        """POST every alert the webhook has not taken yet (at most a day old); returns how many it took.

        An alert is claimed before it is sent, so two workers never send it twice; a failure releases it for
        the next check.
        """
        if not self.webhook_url:
            return 0
        since = ((now or datetime.now()) - NOTIFY_WITHIN).isoformat(timespec="seconds")
        # A claim older than CLAIM_EXPIRY belonged to a worker that died mid-send: the alert is free again.
        stale = f"{CLAIM}{(datetime.now() - CLAIM_EXPIRY).isoformat(timespec='seconds')}"
        rows = self.db.query(
            "SELECT id, notified_at FROM topic_alerts WHERE created_at>=? "
            "AND (notified_at='' OR (notified_at LIKE ? AND notified_at<?)) ORDER BY id",
            (since, f"{CLAIM}%", stale),
        )
        sent = 0
        for row in rows:
            claim = f"{CLAIM}{datetime.now().isoformat(timespec='seconds')}"
            taken = self.db.execute(
                "UPDATE topic_alerts SET notified_at=? WHERE id=? AND notified_at=?",
                (claim, row["id"], row["notified_at"]),
            )
            if taken != 1:
                continue  # another worker claimed it first
            alert = self._alert(row["id"])
            try:
                self._post(alert.body())
            except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
                log.warning("hot-topic webhook refused alert %d (%s); retrying at the next check", alert.id, exc)
                self.db.execute("UPDATE topic_alerts SET notified_at='' WHERE id=?", (alert.id,))
                continue
            self.db.execute(
                "UPDATE topic_alerts SET notified_at=? WHERE id=?",
                (datetime.now().isoformat(timespec="seconds"), alert.id),
            )
            sent += 1
        return sent

    # -- inside ----------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "hotline-qa"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as reply:
            if not 200 <= reply.status < 300:
                raise ValueError(f"HTTP {reply.status}")

    def _alert(self, alert_id: int) -> Alert:
        row = self.db.query_one("SELECT * FROM topic_alerts WHERE id=?", (alert_id,))
        assert row is not None
        return _to_alert(row)

    def _count(self, since: datetime, until: datetime) -> dict[str, _Topic]:
        """Questions and work orders of [since, until) per topic and hour."""
        start, end = since.isoformat(timespec="seconds"), until.isoformat(timespec="seconds")
        events: list[tuple[datetime, str, str]] = []  # hour, entry key (or "" for the grouper), wording
        rows = self.db.query(
            "SELECT created_at, sender_id, query, decision, entry_key, candidates FROM answer_log "
            "WHERE created_at>=? AND created_at<? ORDER BY created_at",
            (start, end),
        )
        by_sender: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_sender[row["sender_id"]].append(row)
        for sender_rows in by_sender.values():
            for i, row in enumerate(sender_rows):
                if row["decision"] == "chosen":  # the answer to an earlier 您是想问: that question, not a new one
                    continue
                key = row["entry_key"] if row["decision"] == "answer" else ""
                if row["decision"] == "clarify":
                    key = _chosen(row, sender_rows[i + 1 :]) or _first_candidate(row["candidates"])
                events.append((_hour(row["created_at"]), key, row["query"]))
        for order in self.db.query(
            "SELECT created_at, description, entries FROM work_orders WHERE created_at>=? AND created_at<?",
            (start, end),
        ):
            entries = _json_list(order["entries"])
            events.append((_hour(order["created_at"]), entries[0] if entries else "", order["description"]))

        topics: dict[str, _Topic] = defaultdict(_Topic)
        loose = [e for e in events if not e[1]]
        for hour, key, wording in (e for e in events if e[1]):
            topic = topics[f"entry:{key}"]
            topic.hours[hour] += 1
            topic.wordings[hour][wording] += 1
        active_groups = {a.topic_key for a in self.alerts() if a.topic_key.startswith("group:")}
        for group_key, members in self.grouper.group([w for _, _, w in loose]):
            # A group's key is its most frequent wording, which may change as it grows: an active alert of any
            # of its wordings keeps its key, so one surge stays one alert.
            prints = {self.grouper.fingerprint(loose[m][2]) for m in members}
            key = next((k for k in sorted(active_groups) if k[len("group:") :] in prints), f"group:{group_key}")
            topic = topics[key]
            for m in members:
                hour, _, wording = loose[m]
                topic.hours[hour] += 1
                topic.wordings[hour][wording] += 1
        for key, topic in topics.items():
            if key.startswith("entry:"):
                entry_key = key[len("entry:") :]
                topic.entries = [entry_key]
                topic.name = self._entry_question(entry_key) or entry_key
            else:
                every = Counter[str]()
                for wordings in topic.wordings.values():
                    every.update(wordings)
                topic.name = every.most_common(1)[0][0]
        return topics

    def _entry_question(self, key: str) -> str:
        row = self.db.query_one("SELECT content FROM entries WHERE key=?", (key,))
        if row is None:
            return ""
        try:
            return str(json.loads(row["content"]).get("question", ""))
        except (ValueError, AttributeError):
            return ""


def alerts(db: Database, *, status: str = "active", limit: int = 50) -> list[Alert]:
    """Alerts of ``status`` (``active``, ``ended``, or ``""`` for all), newest first: what the dashboard shows."""
    rows = db.query(
        "SELECT * FROM topic_alerts WHERE (?='' OR status=?) ORDER BY id DESC LIMIT ?", (status, status, limit)
    )
    return [_to_alert(r) for r in rows]


def check_hot_topics(settings: Settings, db: Database, grouper: Grouper, *, now: datetime | None = None) -> CheckResult:
    """One check with the deployment's settings: what ``hotline topics check`` and the web worker's loop run."""
    return HotTopics.from_settings(settings, db, grouper).check(now)


def _to_alert(row: dict[str, Any]) -> Alert:
    return Alert(
        id=int(row["id"]),
        topic_key=row["topic_key"],
        topic=row["topic"],
        started_at=datetime.fromisoformat(row["started_at"]),
        last_hour=datetime.fromisoformat(row["last_hour"]),
        count=int(row["count"]),
        baseline=float(row["baseline"]),
        samples=_json_list(row["samples"]),
        entries=_json_list(row["entries"]),
        status=row["status"],
        created_at=datetime.fromisoformat(row["created_at"]),
        notified_at=row["notified_at"] or "",
    )


def _hour(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(minute=0, second=0, microsecond=0)


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _first_candidate(text: str | None) -> str:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return ""
    first = value[0] if isinstance(value, list) and value else None
    return str(first[0]) if isinstance(first, list) and first else ""


def _chosen(clarify: dict[str, Any], later: Iterable[dict[str, Any]]) -> str:
    """The entry the citizen picked from this 您是想问 within ten minutes, or ''."""
    limit = (datetime.fromisoformat(clarify["created_at"]) + CHOICE_WINDOW).isoformat(timespec="seconds")
    for row in later:
        if row["created_at"] > limit or row["decision"] in ("answer", "clarify", "no_answer"):
            return ""  # too late, or a new question came first
        if row["decision"] == "chosen":
            return str(row["entry_key"] or "")
    return ""


class TopicWatch:
    """:func:`check_hot_topics` every ``interval`` seconds in a daemon thread of a web worker.

    Every worker may run one: a check is one exclusive transaction and idempotent, and each alert's
    webhook is claimed before it is sent, so several watches raise and send each alert once.
    """

    def __init__(self, settings: Settings, db: Database, grouper: Grouper, *, interval: float = 300.0) -> None:
        self.settings, self.db, self.grouper, self.interval = settings, db, grouper, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> TopicWatch:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hotline-topics", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                result = check_hot_topics(self.settings, self.db, self.grouper)
            except Exception:  # a failed check must not end the watch for the life of the worker
                log.exception("舆情预警检查出错，%g 秒后再试", self.interval)
                continue
            if result.created or result.ended:
                log.info("舆情预警：新增 %d 条，结束 %d 条", len(result.created), result.ended)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
