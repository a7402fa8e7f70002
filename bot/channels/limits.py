"""Rate limits of our channels: messages per key (a client address, a call) and minute.

The same fixed one-minute windows and Redis keys as the web app's limiter (``web_widget/security.py``),
so a client's messages count once whether they reach Rasa directly or through the web app's relay
(which Rasa then leaves to the web app). With ``redis_url`` every Rasa worker shares one count; without
it, or while Redis is down, each worker counts its own (a client may then send the limit to each worker).
Rasa's environment has redis-py (its Redis tracker store needs it); its asyncio client keeps the event
loop free while Redis answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("hotline.channel")

# Redis may be slow or gone: a message waits at most this long for its count, then is counted here.
REDIS_TIMEOUT = 0.5


def setting(credentials: Mapping[str, Any] | None, name: str, default: int) -> int:
    """An integer from the channel's credentials (strings after ``${VAR}`` substitution); ``default`` when empty.

    Raises:
        ValueError: the value is not a whole number of 0 or more.
    """
    raw = (credentials or {}).get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{name} in bot/credentials.yml must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} in bot/credentials.yml must be 0 or more, got {value}")
    return value


class ChannelLimiter:
    """Allows ``per_minute`` messages per key and minute (0: no limit).

    Args:
        per_minute: messages allowed per key and minute; 0 turns the limit off.
        redis_url: Redis shared by every Rasa worker (``redis://...``), or "" to count in this process.
        prefix: the deployment's Redis key prefix (``redis_prefix``).
        clock: seconds since the epoch (tests pass their own).
    """

    def __init__(
        self, per_minute: int, redis_url: str = "", prefix: str = "hotline:", clock: Callable[[], float] = time.time
    ) -> None:
        self.per_minute = per_minute
        self.redis_url = redis_url
        self.prefix = prefix
        self.clock = clock
        self._redis: Any = None
        self._counts: dict[str, tuple[int, int]] = {}
        self._warned_window = -1

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> ChannelLimiter:
        credentials = credentials or {}
        return cls(
            setting(credentials, "rate_limit_per_minute", 30),
            str(credentials.get("redis_url") or ""),
            str(credentials.get("redis_prefix") or "hotline:"),
        )

    async def allow(self, key: str) -> bool:
        """Count one message for ``key``; False when it is over this minute's limit."""
        if self.per_minute <= 0:
            return True
        window = int(self.clock() // 60)
        if self.redis_url:
            try:
                return await self._count_in_redis(f"{self.prefix}rate:{key}:{window}") <= self.per_minute
            except Exception as exc:  # Redis down: count in this worker rather than refuse or wave through
                if self._warned_window != window:  # once a minute, not once a message
                    self._warned_window = window
                    log.warning("channel rate limit: Redis unavailable (%s); counting in this Rasa worker", exc)
        seen_window, count = self._counts.get(key, (window, 0))
        count = count + 1 if seen_window == window else 1
        self._counts[key] = (window, count)
        if len(self._counts) > 100_000:  # forget last minute's clients rather than grow without bound
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        return count <= self.per_minute

    async def _count_in_redis(self, name: str) -> int:
        if self._redis is None:
            import redis.asyncio

            self._redis = redis.asyncio.from_url(
                self.redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
            )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, 120)
            count, _ = await pipe.execute()
        return int(count)


def client_address(request: Any, trusted_proxies: int) -> str:
    """The client's address: the connecting one, or with ``trusted_proxies`` hops the one they saw.

    As Werkzeug's ProxyFix (the web app's): the ``trusted_proxies``-th address from the right of
    X-Forwarded-For, where the nearest proxy appended it; with fewer entries than that, the header is
    not believed.
    """
    if trusted_proxies > 0:
        header = str(request.headers.get("X-Forwarded-For", ""))
        forwarded = [part.strip() for part in header.split(",") if part.strip()]
        if len(forwarded) >= trusted_proxies:
            return forwarded[-trusted_proxies]
    return str(request.ip or "unknown")
