"""Change notifications and the shared search cache against a real Redis (databases 15 and 14).

Two knowledge bases on one SQLite file stand for two workers: what one writes, the
other's listener must apply without a search; the cache in Redis must answer
exactly what a search answers and never serve a result of an older KB version.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from knowledge_base.factory import open_cache, open_notifier, start_listener
from knowledge_base.records import Entry
from knowledge_base.search.cache import RedisResultCache
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.storage.store import SQLStore
from tests.conftest import REDIS_TEST_URLS, TODAY, sample_entries

pytestmark = pytest.mark.integration

QUESTIONS = ["社保缴费记录在哪查", "深圳公积金怎么提取", "公积金提取", "新生儿落户", "完全无关的问题天气"]


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition`` held; fails the test after ``seconds``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"condition not met within {seconds} s")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def redis_settings(tmp_path: Path, redis) -> Settings:
    # Pub/sub channels span every Redis database: a fresh prefix keeps parallel runs apart.
    return Settings(
        data_dir=str(tmp_path / "var"), redis_url=REDIS_TEST_URLS[0], redis_prefix=f"test-{uuid.uuid4().hex[:8]}:"
    )


@pytest.fixture
def workers(tmp_path: Path, normaliser, redis_settings) -> Iterator[tuple[KnowledgeBase, KnowledgeBase]]:
    """Two knowledge bases ("workers") on one SQLite file, both announcing writes on Redis."""
    stores = [SQLStore(tmp_path / "shared.sqlite3") for _ in range(2)]
    a, b = (
        KnowledgeBase(
            store,
            FakeEmbedder(),
            normaliser,
            settings=redis_settings,
            today=lambda: TODAY,
            notifier=open_notifier(redis_settings),
        )
        for store in stores
    )
    a.import_entries(sample_entries(), author="tester")
    b.warm_up()
    yield a, b
    for store in stores:
        store.close()


def new_entry(n: int) -> Entry:
    return Entry(key=f"T-NEW-{n}", question=f"第{n}个新问题怎么办理", answer=f"新答案{n}", department="测试局")


def test_a_write_reaches_the_other_worker_within_a_second_without_a_search(workers, redis_settings):
    a, b = workers
    listener = start_listener(redis_settings, b)
    try:
        assert listener.wait_connected(5)
        before = b.kb_version
        stored = a.add(new_entry(1), author="editor")
        took = wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        assert b.kb_version == before + 1
        assert b.stats()["entries_indexed"] == a.stats()["entries_indexed"]
        assert stored.id in b._entries  # in b's index, though b never searched
        assert took < 1.0
    finally:
        listener.stop()


def test_every_write_method_is_announced(workers, redis_settings):
    a, b = workers
    listener = start_listener(redis_settings, b)
    try:
        assert listener.wait_connected(5)
        entry = a.add(new_entry(2), author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        entry = a.update(entry.replace(answer="改过的答案"), author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        assert b._entries[entry.id].answer == "改过的答案"
        entry = a.set_status(entry.id, "archived", expected_version=entry.version, author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        assert entry.id not in b._entries
        first = a.revisions(entry.id)[0]
        entry = a.rollback(entry.id, first.id, expected_version=entry.version, author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        assert entry.id in b._entries
        a.delete(entry.id, expected_version=entry.version, author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        assert entry.id not in b._entries
        a.import_entries([new_entry(3)], author="import")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
    finally:
        listener.stop()


def test_listener_survives_client_kill_and_catches_up(workers, redis_settings, redis, caplog):
    a, b = workers
    caplog.set_level(logging.INFO, logger="knowledge_base.storage.events")
    listener = start_listener(redis_settings, b)
    try:
        assert listener.wait_connected(5)
        killed = 0
        for client in redis.client_list():
            if client.get("name") == "hotline-kb-listener" and client.get("db") == "15":
                killed += redis.client_kill_filter(_id=client["id"])
        assert killed == 1
        a.add(new_entry(4), author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 3.0)
        # And it is still subscribed: the next write arrives as fast as ever.
        a.add(new_entry(5), author="editor")
        assert wait_for(lambda: b.kb_version == a.kb_version, 1.0) < 1.0
    finally:
        listener.stop()
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


class FlakyProxy:
    """A TCP relay to Redis that the test can take down and bring back, as a Redis restart would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen()
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            if self._server is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
                with contextlib.suppress(OSError):
                    self._server.shutdown(socket.SHUT_RDWR)
                self._server.close()
                self._server = None
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_listener_backs_off_while_redis_is_gone_and_catches_up_on_return(workers, redis_settings, caplog):
    a, b = workers
    caplog.set_level(logging.INFO, logger="knowledge_base.storage.events")
    proxy = FlakyProxy(("127.0.0.1", 6379))
    proxy.up()
    via_proxy = replace(redis_settings, redis_url=f"redis://127.0.0.1:{proxy.port}/15")
    listener = start_listener(via_proxy, b)
    try:
        assert listener.wait_connected(5)
        listener.min_backoff, listener.max_backoff = 0.05, 0.2
        proxy.down()
        wait_for(lambda: not listener.connected, 3.0)
        before = b.kb_version
        a.add(new_entry(6), author="editor")  # announced while b cannot hear it
        time.sleep(0.5)
        assert b.kb_version == before, "b cannot have heard the announcement"
        assert any("KB change notifications paused" in r.getMessage() for r in caplog.records)
        proxy.up()
        wait_for(lambda: b.kb_version == a.kb_version, 3.0)
        assert any("Redis is back" in r.getMessage() for r in caplog.records)
    finally:
        listener.stop()
        proxy.down()


def test_publishing_without_redis_keeps_the_write(tmp_path, normaliser, caplog):
    unreachable = Settings(data_dir=str(tmp_path / "var"), redis_url="redis://127.0.0.1:1/15")
    kb = KnowledgeBase(
        SQLStore(tmp_path / "kb.sqlite3"),
        FakeEmbedder(),
        normaliser,
        settings=unreachable,
        today=lambda: TODAY,
        notifier=open_notifier(unreachable),
    )
    stored = kb.add(new_entry(7), author="editor")
    assert kb.get(stored.id).answer == "新答案7"
    assert kb.kb_version == kb.store.kb_version() == 1
    assert any("could not be announced" in r.getMessage() for r in caplog.records)


# -- the search cache in Redis ---------------------------------------------------------


def test_cached_results_in_redis_equal_uncached_ones(workers, redis_settings, redis):
    a, _ = workers
    cache = open_cache(redis_settings)
    assert isinstance(cache, RedisResultCache)
    cached_kb = KnowledgeBase(
        a.store, FakeEmbedder(), a.normaliser, settings=a.settings, today=lambda: TODAY, cache=cache
    )
    for question in QUESTIONS:
        for kwargs in ({}, {"region": "深圳"}, {"department": "公积金"}, {"top_k": 2}):
            fresh = a.search(question, **kwargs)
            first = cached_kb.search(question, **kwargs)
            again = cached_kb.search(question, **kwargs)
            assert first == fresh
            assert again == fresh
    assert cache.hits == len(QUESTIONS) * 4
    keys = redis.keys(f"{redis_settings.redis_prefix}search:*")
    assert len(keys) == len(QUESTIONS) * 4
    assert 0 < redis.ttl(keys[0]) <= 3600


def test_redis_cache_never_serves_an_older_kb_version(workers, redis_settings):
    a, b = workers
    cache = open_cache(redis_settings)
    b.cache = cache
    listener = start_listener(redis_settings, b)
    try:
        assert listener.wait_connected(5)
        question = "第8个新问题怎么办理"
        before = b.search(question)
        assert b.search(question) == before and cache.hits == 1
        a.add(new_entry(8), author="editor")
        wait_for(lambda: b.kb_version == a.kb_version, 1.0)
        after = b.search(question)
        assert cache.hits == 1, "a result of the old KB version was served"
        assert after.kb_version == before.kb_version + 1
        assert after.best is not None and after.best.entry.key == "T-NEW-8"
        assert after == a.search(question)
    finally:
        listener.stop()
