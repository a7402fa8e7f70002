"""CSRF tokens, rate limits and the secret key: the defences every page shares.

CSRF: every staff session holds a random token; every state-changing request
(form field ``csrf_token`` or header ``X-CSRF-Token``) must echo it. The public
chat endpoint takes no cookies and changes nothing staff own, so it is exempt.

Rate limits count requests per client and minute, in Redis when configured (so
every worker shares one count) and in this process otherwise.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import abort, request, session
from flask.json.provider import DefaultJSONProvider

from knowledge_base.settings import Settings

if TYPE_CHECKING:
    import redis as redis_client

log = logging.getLogger("hotline.web")

# The inbound work-order API authenticates by bearer token, not by cookie: no session for CSRF to ride on.
CSRF_EXEMPT = frozenset({"chat.relay_message", "orders_api.set_status"})
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def secret_key(settings: Settings) -> str:
    """The configured key, or one kept in ``data_dir/secret_key`` (created readable by its owner only)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_path / "secret_key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        log.info("created a new session key in %s", path)
    return Path(path).read_text().strip()


def csrf_token() -> str:
    """This session's CSRF token (made on first use); templates put it in every form."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """``before_request``: refuse a state-changing request without this session's token (400)."""
    if request.method not in _UNSAFE or request.endpoint in CSRF_EXEMPT:
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        log.warning("refused %s %s: missing or wrong CSRF token", request.method, request.path)
        abort(400, description="表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing request bodies that parse but cannot be handled: they become malformed JSON (a 400).

    ``"\\ud800"`` is valid JSON syntax, but a lone surrogate is no text a database can store (UTF-8
    refuses it); and deep nesting (``[[[[...``) raises RecursionError, which ``get_json(silent=True)``
    does not catch. Both ended in a 500; raised as ValueError they are refused like any other bad body.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        except UnicodeEncodeError:
            raise ValueError("JSON text with a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
        return value


class RateLimiter:
    """Fixed one-minute windows per key; Redis-backed when a client is given.

    Args:
        per_minute: requests allowed per key and minute (0: unlimited).
        redis: a redis client shared by every worker, or None for an in-process count.
        prefix: Redis key prefix.
        clock: seconds since the epoch (injectable for tests).
    """

    def __init__(
        self,
        per_minute: int,
        *,
        redis: redis_client.Redis | None = None,
        prefix: str = "hotline:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_minute = per_minute
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one request for ``key``; False when it is over the limit."""
        if self.per_minute <= 0:
            return True
        window = int(self.clock() // 60)
        if self.redis is not None:
            try:
                name = f"{self.prefix}rate:{key}:{window}"
                pipe = self.redis.pipeline()
                pipe.incr(name)
                pipe.expire(name, 120)
                count = int(pipe.execute()[0])
                return count <= self.per_minute
            except Exception as exc:  # Redis down: fall back to this worker's own count
                log.warning("rate limit: Redis unavailable (%s); counting in this worker", exc)
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
            if len(self._counts) > 100_000:  # forget old clients rather than grow without bound
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            return count <= self.per_minute


def client_address() -> str:
    """The client's address; behind a reverse proxy configure ProxyFix so this is the real one."""
    return request.remote_addr or "unknown"
