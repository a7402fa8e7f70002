"""KB change notifications over Redis pub/sub: the last step of the edit path.

After a write commits, the writing process publishes the new KB version on the
channel ``<redis_prefix>kb-version``; a :class:`ChangeListener` in every worker
receives it and brings that worker's index up to date with ``kb.sync()`` at once,
instead of at its next search.

Pub/sub forgets what a stopped or disconnected worker missed, so a message is
only a hint: the store's ``kb_version`` stays the source of truth. ``sync()``
compares versions, every search calls it, and the listener calls it again each
time it (re)connects.

Nothing here connects at import or construction: :meth:`ChangeListener.start`
starts the background thread, and the factory (:mod:`knowledge_base.factory`)
hands out the no-op :class:`NullNotifier` and :class:`NullListener` when no
``redis_url`` is configured.

Example:
    >>> NullNotifier().published(42)  # no Redis: other processes catch up at their next search
    >>> channel("hotline:")
    'hotline:kb-version'
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


def channel(prefix: str) -> str:
    """The pub/sub channel that carries new KB versions for the deployment with ``prefix``."""
    return f"{prefix}kb-version"


class Notifier(Protocol):
    """Told by :class:`~knowledge_base.search.kb.KnowledgeBase` after every committed write."""

    def published(self, kb_version: int) -> None: ...


class NullNotifier:
    """No Redis: nothing to tell; other processes catch up at their next search."""

    def published(self, kb_version: int) -> None:
        return None


class RedisNotifier:
    """Publishes each new KB version on ``<prefix>kb-version``.

    A failed publish is logged and swallowed: the write has already committed, and
    every worker still catches up from the store at its next search.

    Args:
        client: a Redis client (connects on first publish).
        prefix: the deployment's ``redis_prefix``.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "hotline:") -> None:
        self.client = client
        self.channel = channel(prefix)

    def published(self, kb_version: int) -> None:
        import redis

        try:
            receivers = self.client.publish(self.channel, str(kb_version))
        except redis.RedisError as exc:
            log.warning(
                "KB version %d is committed but could not be announced on Redis channel %s (%s); "
                "other workers will see it at their next search",
                kb_version,
                self.channel,
                exc,
            )
            return
        log.debug("announced KB version %d on %s to %s listener(s)", kb_version, self.channel, receivers)


class Syncable(Protocol):
    """What the listener needs of a knowledge base."""

    @property
    def kb_version(self) -> int: ...
    def sync(self) -> object: ...


class NullListener:
    """No Redis: nothing to listen to (the factory's stand-in for :class:`ChangeListener`)."""

    connected = False

    def start(self) -> NullListener:
        return self

    def stop(self, timeout: float = 5.0) -> None:
        return None


class ChangeListener:
    """Keeps one knowledge base at the newest KB version announced on Redis.

    A daemon thread, started by :meth:`start` (never at import or construction),
    subscribes to ``<prefix>kb-version`` and calls ``kb.sync()`` when a version newer
    than the knowledge base's arrives, and once after every (re)connection to cover
    what was published meanwhile. When Redis goes away it logs a warning and retries
    with exponential backoff; nothing it meets ends the worker. A knowledge base that
    has not loaded its index yet (``kb_version`` -1) is left alone: its first search
    loads the newest state anyway, and the listener never triggers a model load.

    Args:
        client: a Redis client; the listener takes one connection of its pool.
        kb: the knowledge base to keep current.
        prefix: the deployment's ``redis_prefix``.
        min_backoff: first wait in seconds after a failed connection; doubled per failure.
        max_backoff: the longest wait between attempts.
        poll: how often, in seconds, the thread checks whether it should stop.

    Example:
        >>> import redis
        >>> from knowledge_base.search.embedder import FakeEmbedder
        >>> from knowledge_base.search.kb import KnowledgeBase
        >>> from knowledge_base.storage.store import SQLStore
        >>> from knowledge_base.search.textnorm import TextNormaliser
        >>> kb = KnowledgeBase(SQLStore(":memory:"), FakeEmbedder(), TextNormaliser.from_dir())
        >>> listener = ChangeListener(redis.Redis.from_url("redis://127.0.0.1:6379/15"), kb)
        >>> listener.connected  # not started: no thread, no connection
        False
    """

    def __init__(
        self,
        client: redis.Redis,
        kb: Syncable,
        *,
        prefix: str = "hotline:",
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        poll: float = 1.0,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError(f"need 0 < min_backoff <= max_backoff, got {min_backoff} and {max_backoff}")
        if poll <= 0:
            raise ValueError(f"poll must be positive, got {poll}")
        self.client = client
        self.kb = kb
        self.channel = channel(prefix)
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        # Set by redis-py's connect callback when it silently reconnects the subscription.
        self._reconnected = threading.Event()

    @property
    def connected(self) -> bool:
        """Whether the listener is subscribed right now."""
        return self._connected.is_set()

    def start(self) -> ChangeListener:
        """Start the background thread (idempotent); returns self.

        Raises:
            RuntimeError: the listener was stopped (make a new one).
        """
        if self._stop.is_set():
            raise RuntimeError("this ChangeListener was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hotline-kb-listener", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        """Wait until subscribed (for start-up code and tests); False when ``timeout`` passed first."""
        return self._connected.wait(timeout)

    # -- the thread ----------------------------------------------------------

    def _run(self) -> None:
        import redis

        delay = self.min_backoff
        failures = 0
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]  # redis-py: untyped
            try:
                pubsub.subscribe(self.channel)
                if pubsub.connection is not None:
                    pubsub.connection.register_connect_callback(self._on_connect)
                self._reconnected.clear()  # this fresh subscription catches up below anyway
                self._connected.set()
                if failures:
                    log.info("Redis is back after %d failed attempt(s): listening on %s again", failures, self.channel)
                else:
                    log.info("listening for KB changes on Redis channel %s", self.channel)
                delay, failures = self.min_backoff, 0
                self._catch_up("subscribed")
                self._listen(pubsub)
            except redis.RedisError as exc:
                self._connected.clear()
                failures += 1
                log.warning(
                    "KB change notifications paused: Redis unreachable (%s); retry %d in %.1f s "
                    "(searches still catch up from the database)",
                    exc,
                    failures,
                    delay,
                )
            except Exception:
                # A listener must never take the worker down; the database remains the source of truth.
                self._connected.clear()
                failures += 1
                log.exception("KB change listener failed; retry %d in %.1f s", failures, delay)
            finally:
                self._connected.clear()
                try:
                    if pubsub.connection is not None:
                        # The connection goes back to the pool; our callback must not ride along.
                        with contextlib.suppress(ValueError):
                            pubsub.connection.deregister_connect_callback(self._on_connect)
                    pubsub.close()
                except Exception:  # closing a broken connection may fail too; nothing left to do
                    log.debug("closing the pub/sub connection failed", exc_info=True)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.max_backoff)
        log.info("KB change listener on %s stopped", self.channel)

    def _listen(self, pubsub: Any) -> None:
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=self.poll)
            if self._reconnected.is_set():
                self._reconnected.clear()
                log.warning("Redis connection of the KB change listener was re-established; catching up")
                self._catch_up("reconnected")
            if message is None or message.get("type") != "message":
                continue
            try:
                version = int(message["data"])
            except (TypeError, ValueError):
                log.warning("ignored a malformed KB version %r on %s", message.get("data"), self.channel)
                continue
            if version > self.kb.kb_version:
                self._catch_up(f"KB version {version} announced")

    def _on_connect(self, connection: Any) -> None:
        # Called by redis-py inside its reconnect; only flag it, the loop does the work.
        self._reconnected.set()

    def _catch_up(self, why: str) -> None:
        if self.kb.kb_version < 0:
            return  # index not loaded yet: its first use reads the newest state
        try:
            report = self.kb.sync()
        except Exception:
            # E.g. the database is locked or gone for a moment; the next message or search retries.
            log.exception("could not bring the index up to date (%s)", why)
            return
        changed = getattr(report, "entries_changed", None)
        if changed:
            log.info("%s: index now at KB version %d (%d entries changed)", why, self.kb.kb_version, changed)
