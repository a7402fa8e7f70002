"""Wires the real parts together: the one place that knows which store, embedder, normaliser and Redis run."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from knowledge_base.orders.book import WorkOrderBook
from knowledge_base.orders.departments import DepartmentList, DepartmentMatcher
from knowledge_base.search.cache import LRUResultCache, RedisResultCache, ResultCache
from knowledge_base.search.embedder import Embedder, make_embedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.staff.interactions import InteractionStore
from knowledge_base.storage import database
from knowledge_base.storage.events import ChangeListener, Notifier, NullListener, NullNotifier, RedisNotifier, Syncable
from knowledge_base.storage.store import SQLStore

if TYPE_CHECKING:
    import redis


_databases: dict[tuple[int, str], database.Database] = {}
_databases_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    """Where the configured database lives: ``database_url``, or the SQLite file in ``data_dir`` when empty."""
    if settings.database_url.startswith(("postgresql://", "postgres://")):
        return settings.database_url
    # Absolute, so a later change of working directory cannot point the same process at another file.
    return f"sqlite:///{settings.sqlite_path.resolve()}"


def open_database(settings: Settings) -> database.Database:
    """This process's one handle on the configured database, opened on the first call.

    Every store of the process shares it, so a PostgreSQL deployment keeps one small pool per
    process. Keyed by process id as well: a forked worker opens its own connections instead of
    using its parent's. Closing it is allowed; the next call opens it again.

    Raises:
        DatabaseError: PostgreSQL could not be reached.
    """
    url = database_url(settings)
    key = (os.getpid(), url)
    with _databases_lock:
        db = _databases.get(key)
        if db is None or db.closed:
            db = _databases[key] = database.open_database(url, timeout=settings.db_timeout)
    return db


def open_store(settings: Settings, db: database.Database | None = None) -> SQLStore:
    """The knowledge-base store on ``db`` (default: :func:`open_database`); SQLite file by default."""
    return SQLStore(db if db is not None else open_database(settings))


def open_interactions(
    settings: Settings,
    db: database.Database | None = None,
    *,
    embedder: Embedder | Callable[[], Embedder] | None = None,
) -> InteractionStore:
    """Work orders, feedback and the answer log on ``db`` (default: :func:`open_database`).

    With ``embedder`` (the knowledge base's), new work orders get a suggested department.
    """
    db = db if db is not None else open_database(settings)
    return InteractionStore(db, orders=open_work_order_book(settings, db, embedder=embedder))


def open_work_order_book(
    settings: Settings, db: database.Database, *, embedder: Embedder | Callable[[], Embedder] | None = None
) -> WorkOrderBook:
    """The work-order book with the configured due dates, queueing deliveries when a webhook is configured.

    Args:
        embedder: the knowledge base's embedder (or a function giving it, so the model loads on first use):
            each new order then gets the responsibility list's suggested department, matched by the same model.
    """
    matcher = DepartmentMatcher(DepartmentList(db), embedder) if embedder is not None else None
    return WorkOrderBook(
        db,
        due_days=settings.order_due_days,
        outbox=bool(settings.order_webhook_url),
        suggest=matcher.suggest if matcher is not None else None,
    )


def open_redis(settings: Settings) -> redis.Redis | None:
    """The process's client for ``redis_url`` (None when it is empty); it connects on first use, not here.

    It fails fast: the cache and the notifier sit on the citizens' path and must not wait
    out a Redis outage (redis-py's default retries back off for seconds).
    """
    if not settings.redis_url:
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        settings.redis_url,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
    )


def open_notifier(settings: Settings, client: redis.Redis | None = None) -> Notifier:
    """Who is told about committed writes: Redis pub/sub, or nobody without ``redis_url``."""
    client = client if client is not None else open_redis(settings)
    if client is None:
        return NullNotifier()
    return RedisNotifier(client, prefix=settings.redis_prefix)


def open_cache(settings: Settings, client: redis.Redis | None = None) -> ResultCache:
    """The search-result cache: shared in Redis with ``redis_url``, else in this process."""
    client = client if client is not None else open_redis(settings)
    if client is None:
        return LRUResultCache()
    return RedisResultCache(client, prefix=settings.redis_prefix)


def start_listener(settings: Settings, kb: Syncable) -> ChangeListener | NullListener:
    """Start keeping ``kb`` current from Redis announcements (a no-op without ``redis_url``).

    Call it once per worker process, after forking; stop it with ``.stop()``.
    """
    if not settings.redis_url:
        return NullListener()
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One immediate retry reconnects a dropped connection (the listener then catches up); anything
    # longer surfaces to the listener, which logs it and backs off itself. The name shows in CLIENT LIST.
    client = redis.Redis.from_url(
        settings.redis_url,
        retry=Retry(NoBackoff(), 1),
        client_name="hotline-kb-listener",
        socket_connect_timeout=settings.redis_timeout,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return ChangeListener(client, kb, prefix=settings.redis_prefix).start()


def open_knowledge_base(
    settings: Settings, *, warm: bool = True, progress: bool = False, db: database.Database | None = None
) -> KnowledgeBase:
    """The production knowledge base for ``settings``; ``warm`` loads the model and index now.

    Its store works on ``db`` (default: the process's shared :func:`open_database`).

    Writes are announced and searches cached through Redis when ``redis_url`` is set;
    call :func:`start_listener` to receive other processes' announcements.

    Raises:
        ModelNotBuilt: the model folder is missing (run ``hotline model build``).
    """
    from knowledge_base.search.dictionaries import DictionaryStore

    client = open_redis(settings)
    db = db if db is not None else open_database(settings)
    kb = KnowledgeBase(
        open_store(settings, db),
        make_embedder(settings),
        DictionaryStore(db).normaliser(),  # the staff-edited tables, so every worker reads text alike
        settings=settings,
        index_dir=settings.index_path,
        notifier=open_notifier(settings, client),
        cache=open_cache(settings, client),
    )
    if warm:
        kb.warm_up(progress=progress)
    return kb
