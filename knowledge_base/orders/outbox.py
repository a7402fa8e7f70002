"""Delivering new work orders to the city's own work-order system: the outbox's courier.

:meth:`WorkOrderBook.create` writes each order's ``outbox`` row in the order's own transaction;
the :class:`Courier` here posts those rows to ``order_webhook_url``, signed, one at a time and in
the order they were written (README "Work orders: the webhook contract").

Why it is built this way:

* **In order.** Only the oldest pending row is ever tried. A failing head blocks the line until
  it is delivered or goes dead (dead-letter list), so the city's system never sees order 7 before 6.
* **Several workers, no double posts at once.** A worker claims the head with a conditional
  ``UPDATE ... SET lease_until`` that succeeds for one worker only (compare-and-set on the old
  lease, atomic on SQLite and PostgreSQL alike). A worker killed mid-delivery loses nothing: its
  lease runs out and another worker posts the row again, with the same ``Idempotency-Key``.
* **At least once, deduplicated by the receiver.** A post whose answer was lost (timeout, kill)
  is posted again; the receiver drops a key it has already accepted.

Example:
    >>> courier = Courier(book.db, url="https://orders.example.gov.cn/hook", secret="x" * 16)  # doctest: +SKIP
    >>> courier.deliver_due()  # one pass: delivers what is due, returns the number delivered  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from knowledge_base.settings import Settings
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

log = logging.getLogger("hotline.outbox")

RETRYABLE_4XX = frozenset({408, 425, 429})
"""Client errors that say "later", not "never": retried like a 5xx."""


@dataclass(frozen=True)
class Answer:
    """What one post got back: an HTTP status (0 when none came) and a short reason for the log."""

    status: int
    reason: str = ""


Post = Callable[[str, bytes, dict[str, str], float], Answer]
"""``post(url, body, headers, timeout)``: one HTTP POST; never raises, reports failures in the Answer."""


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One POST with the standard library (no redirects followed: a 3xx is a failed delivery)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as reply:
            reply.read(64 * 1024)  # the body does not matter (a 2xx is acceptance), but read it politely
            return Answer(reply.status)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, f"HTTP {exc.code} {exc.reason}")
    except TimeoutError:
        return Answer(0, f"超时（{timeout:g} 秒无应答）")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return Answer(0, f"超时（{timeout:g} 秒无应答）")
        return Answer(0, f"连接失败：{reason}"[:300])
    except Exception as exc:  # a malformed answer (bad status line …): a failed delivery, never a crash
        return Answer(0, f"应答无法解析：{type(exc).__name__}: {exc}"[:300])


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Hotline-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with the secret."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff(attempts: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Seconds to wait after the ``attempts``-th failed delivery: base, 2·base, 4·base … at most ``cap``."""
    if attempts < 1:
        raise ValueError(f"attempts starts at 1, got {attempts}")
    return float(min(cap, base * 2 ** min(attempts - 1, 60)))


def _stamp(moment: datetime) -> str:
    # Always with microseconds, so that stamps compare as text (the book's own, without them, sort right too).
    return moment.isoformat(timespec="microseconds")


class Courier:
    """Posts the outbox's pending rows to the city's system, oldest first, one worker at a time per row.

    Args:
        db: the database holding ``outbox`` (shared; not closed here).
        url: ``order_webhook_url``.
        secret: ``order_webhook_secret`` (the HMAC key).
        timeout: seconds one post may take.
        attempts: posts per row before it goes ``dead``.
        base: the first wait after a failure (then doubled each time); tests use a fraction of a second.
        cap: the longest wait between two posts.
        lease: seconds a claim holds a row; longer than ``timeout``, so a live worker never loses it mid-post.
        post: the HTTP client (tests may pass another; the default is :func:`http_post`).
        now: the clock (local time, as the book stamps rows).
    """

    def __init__(
        self,
        db: Database,
        *,
        url: str,
        secret: str,
        timeout: float = 10.0,
        attempts: int = 10,
        base: float = 2.0,
        cap: float = 600.0,
        lease: float | None = None,
        post: Post = http_post,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        if attempts < 1 or base <= 0 or cap < base:
            raise ValueError(f"need attempts >= 1 and 0 < base <= cap, got {attempts}, {base}, {cap}")
        ensure_current(db)
        self.db = db
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.lease = lease if lease is not None else timeout + 10.0
        self.post = post
        self.now = now
        self.worker = uuid.uuid4().hex[:8]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, *, base: float = 2.0, lease: float | None = None
    ) -> Courier:
        return cls(
            db,
            url=settings.order_webhook_url,
            secret=settings.order_webhook_secret,
            timeout=settings.order_webhook_timeout,
            attempts=settings.order_webhook_attempts,
            base=base,
            lease=lease,
        )

    # -- one pass -----------------------------------------------------------------------

    def deliver_due(self, *, limit: int = 100) -> int:
        """Post the head of the line while it is due and ours to claim; the number delivered.

        Stops at the first row that is not due yet, is held by another worker, or failed now.
        """
        delivered = 0
        for _ in range(limit):
            row = self._claim()
            if row is None or not self._deliver(row):
                break
            delivered += 1
        return delivered

    def _claim(self) -> dict[str, Any] | None:
        head = self.db.query_one("SELECT * FROM outbox WHERE status='pending' ORDER BY id LIMIT 1")
        now = self.now()
        if head is None or head["next_attempt_at"] > _stamp(now):
            return None
        held = head["lease_until"] or ""
        if held and held > _stamp(now):
            return None  # another worker is posting it right now
        lease = _stamp(now + timedelta(seconds=self.lease))
        # Compare-and-set on the lease we read: of two workers reading the same head, one update matches.
        taken = self.db.execute(
            "UPDATE outbox SET lease_until=? WHERE id=? AND status='pending' AND lease_until=?",
            (lease, head["id"], head["lease_until"]),
        )
        if taken != 1:
            return None
        if held:
            log.warning("工单 %s 的投递租约已过期（上一个进程可能中断），由进程 %s 接手", _number(head), self.worker)
        return {**head, "lease_until": lease}

    def _deliver(self, row: dict[str, Any]) -> bool:
        body = str(row["body"]).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": row["idempotency_key"],
            "X-Hotline-Event": row["kind"],
            "X-Hotline-Timestamp": timestamp,
            "X-Hotline-Signature": signature(self.secret, timestamp, body),
            "User-Agent": "hotline-qa outbox",
        }
        attempt = int(row["attempts"]) + 1
        answer = self.post(self.url, body, headers, self.timeout)
        now = self.now()
        if 200 <= answer.status < 300:
            # Delivered is final whoever holds the lease now: a second post of the same key is the receiver's
            # to drop, a row marked delivered twice is harmless.
            self.db.execute(
                "UPDATE outbox SET status='delivered', attempts=?, delivered_at=?, last_error='', lease_until='' "
                "WHERE id=? AND status='pending'",
                (attempt, _stamp(now), row["id"]),
            )
            log.info("工单 %s 已投递（第 %d 次，HTTP %d）", _number(row), attempt, answer.status)
            return True
        error = answer.reason or f"HTTP {answer.status}"
        permanent = 400 <= answer.status < 500 and answer.status not in RETRYABLE_4XX
        if permanent or attempt >= self.attempts:
            status, wait = "dead", 0.0
        else:
            status, wait = "pending", backoff(attempt, base=self.base, cap=self.cap)
        # Only the lease holder records the attempt: a worker whose lease ran out leaves the row to its successor.
        self.db.execute(
            "UPDATE outbox SET status=?, attempts=?, next_attempt_at=?, last_error=?, lease_until='' "
            "WHERE id=? AND status='pending' AND lease_until=?",
            (status, attempt, _stamp(now + timedelta(seconds=wait)), error[:500], row["id"], row["lease_until"]),
        )
        if status == "dead":
            why = "对方拒收（4xx），不再重试" if permanent else f"已达 {self.attempts} 次上限"
            log.error("工单 %s 投递失败（第 %d 次：%s），%s，转入「投递失败」列表", _number(row), attempt, error, why)
        else:
            log.warning("工单 %s 投递失败（第 %d 次：%s），%g 秒后重试", _number(row), attempt, error, wait)
        return False

    # -- the loop in a web worker -----------------------------------------------------------

    def start(self, *, interval: float = 1.0) -> Courier:
        """Run :meth:`deliver_due` every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run, kwargs={"interval": interval}, name="hotline-outbox", daemon=True
            )
            self._thread.start()
            log.info("工单投递已启动：%s（进程 %s）", self.url, self.worker)
        return self

    def run(self, *, interval: float = 1.0) -> None:
        """The loop itself (the daemon thread's, or ``hotline outbox run`` in the foreground)."""
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # a database hiccup must not end deliveries for the life of the worker
                log.exception("工单投递出错，%g 秒后再试", interval)
            self._stop.wait(interval)

    def stop(self, timeout: float | None = None) -> None:
        """End the loop after the post in flight (waits at most ``timeout``, default the post's own timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1 if timeout is None else timeout)
            self._thread = None


def start_courier(settings: Settings, db: Database) -> Courier | None:
    """The web worker's courier, started; None (nothing to deliver to) without ``order_webhook_url``."""
    if not settings.order_webhook_url:
        return None
    return Courier.from_settings(settings, db).start()


# -- what operators see and do --------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One outbox row as the admin and ``hotline outbox`` show it."""

    id: int
    number: str
    status: str
    attempts: int
    last_error: str
    created_at: str
    next_attempt_at: str
    delivered_at: str

    @property
    def status_name(self) -> str:
        return {"pending": "待投递", "delivered": "已投递", "dead": "投递失败"}.get(self.status, self.status)


class Deliveries:
    """The outbox seen from the admin and the command line: counts, troubled rows, retry."""

    def __init__(self, db: Database) -> None:
        ensure_current(db)
        self.db = db

    def counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {"pending": 0, "delivered": 0, "dead": 0} | {r["status"]: int(r["n"]) for r in rows}

    def troubled(self, *, limit: int = 200) -> list[Delivery]:
        """Dead rows and pending rows that have failed at least once, oldest first."""
        return self._rows("(o.status='dead' OR (o.status='pending' AND o.attempts>0))", (), limit)

    def dead(self, *, limit: int = 200) -> list[Delivery]:
        return self._rows("o.status='dead'", (), limit)

    def oldest_pending(self) -> Delivery | None:
        rows = self._rows("o.status='pending'", (), 1)
        return rows[0] if rows else None

    def get(self, number: str) -> Delivery | None:
        rows = self._rows("w.number=?", (number,), 1)
        return rows[0] if rows else None

    def retry(self, number: str, *, now: datetime | None = None) -> bool:
        """Put a dead (or failing) order's delivery back in line with a fresh count; False if there is none."""
        changed = self.db.execute(
            # The lease stays: a worker posting the row right now keeps it (no second post beside it).
            "UPDATE outbox SET status='pending', attempts=0, next_attempt_at=? "
            "WHERE status IN ('dead', 'pending') AND order_id=(SELECT id FROM work_orders WHERE number=?)",
            (_stamp(now or datetime.now()), number),
        )
        return changed > 0

    def retry_dead(self, *, now: datetime | None = None) -> int:
        """Every dead delivery back in line; the number of rows."""
        return self.db.execute(
            "UPDATE outbox SET status='pending', attempts=0, next_attempt_at=?, lease_until='' WHERE status='dead'",
            (_stamp(now or datetime.now()),),
        )

    def _rows(self, where: str, args: tuple[Any, ...], limit: int) -> list[Delivery]:
        rows = self.db.query(
            "SELECT o.*, w.number AS number FROM outbox o JOIN work_orders w ON w.id=o.order_id "
            f"WHERE {where} ORDER BY o.id LIMIT ?",
            (*args, limit),
        )
        return [
            Delivery(
                id=r["id"],
                number=r["number"],
                status=r["status"],
                attempts=int(r["attempts"]),
                last_error=r["last_error"] or "",
                created_at=r["created_at"] or "",
                next_attempt_at=r["next_attempt_at"] or "",
                delivered_at=r["delivered_at"] or "",
            )
            for r in rows
        ]


def _number(row: dict[str, Any]) -> str:
    return str(row["idempotency_key"]).split(":", 1)[0]
