"""Change notifications without Redis: who is told what after a write, and the factory's no-op parts."""

from __future__ import annotations

import logging
import time

import pytest

from knowledge_base.errors import StaleVersion
from knowledge_base.factory import open_cache, open_notifier, start_listener
from knowledge_base.records import Entry
from knowledge_base.search.cache import LRUResultCache
from knowledge_base.settings import Settings
from knowledge_base.storage.events import ChangeListener, NullListener, NullNotifier, RedisNotifier, channel

pytestmark = pytest.mark.unit


class RecordingNotifier:
    """Remembers every announced KB version."""

    def __init__(self) -> None:
        self.versions: list[int] = []

    def published(self, kb_version: int) -> None:
        self.versions.append(kb_version)


class BrokenNotifier:
    def published(self, kb_version: int) -> None:
        raise RuntimeError("the message bus is on fire")


def test_every_write_announces_the_committed_version(fake_kb):
    fake_kb.notifier = notifier = RecordingNotifier()
    entry = fake_kb.add(Entry(key="T-N", question="新问题怎么办", answer="答"), author="editor")
    entry = fake_kb.update(entry.replace(answer="新答"), author="editor")
    entry = fake_kb.set_status(entry.id, "archived", expected_version=entry.version, author="editor")
    first = fake_kb.revisions(entry.id)[0]
    entry = fake_kb.rollback(entry.id, first.id, expected_version=entry.version, author="editor")
    fake_kb.delete(entry.id, expected_version=entry.version, author="editor")
    summary = fake_kb.import_entries([Entry(key="T-M", question="另一个问题", answer="答")], author="import")
    assert len(notifier.versions) == 6
    assert notifier.versions == sorted(notifier.versions)
    assert notifier.versions[-1] == summary.kb_version == fake_kb.store.kb_version() == fake_kb.kb_version


def test_a_refused_write_announces_nothing(fake_kb):
    fake_kb.notifier = notifier = RecordingNotifier()
    entry = fake_kb.store.get_by_key("T-SB-1")
    with pytest.raises(StaleVersion):
        fake_kb.update(entry.replace(answer="x", version=entry.version + 5), author="editor")
    assert notifier.versions == []


def test_a_failing_notifier_does_not_undo_or_fail_the_write(fake_kb, caplog):
    fake_kb.notifier = BrokenNotifier()
    stored = fake_kb.add(Entry(key="T-N", question="新问题怎么办", answer="答"), author="editor")
    assert fake_kb.get(stored.id).answer == "答"
    assert fake_kb.kb_version == fake_kb.store.kb_version()
    assert any("could not be announced" in r.getMessage() for r in caplog.records)


def test_redis_notifier_swallows_redis_errors(caplog):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    notifier = RedisNotifier(redis.Redis(port=1, retry=Retry(NoBackoff(), 0)), prefix="x:")
    notifier.published(7)
    assert notifier.channel == "x:kb-version" == channel("x:")
    assert any("KB version 7 is committed but could not be announced" in r.getMessage() for r in caplog.records)


def test_without_redis_url_the_factory_hands_out_no_op_parts(fake_kb, settings):
    assert not settings.redis_url
    assert isinstance(open_notifier(settings), NullNotifier)
    assert isinstance(open_cache(settings), LRUResultCache)
    listener = start_listener(settings, fake_kb)
    assert isinstance(listener, NullListener) and not listener.connected
    listener.stop()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_backoff": 0}, "min_backoff"), ({"min_backoff": 5, "max_backoff": 1}, "min_backoff"), ({"poll": 0}, "poll")],
)
def test_listener_arguments_are_checked(fake_kb, kwargs, message):
    import redis

    with pytest.raises(ValueError, match=message):
        ChangeListener(redis.Redis(port=1), fake_kb, **kwargs)


def test_listener_without_redis_keeps_retrying_and_stops_cleanly(fake_kb, caplog):
    caplog.set_level(logging.INFO, logger="knowledge_base.storage.events")
    unreachable = Settings(data_dir=fake_kb.settings.data_dir, redis_url="redis://127.0.0.1:1/15")
    listener = start_listener(unreachable, fake_kb)
    assert isinstance(listener, ChangeListener)
    listener.min_backoff = listener.max_backoff = 0.05
    deadline = time.monotonic() + 5
    while sum("notifications paused" in r.getMessage() for r in caplog.records) < 2:
        assert time.monotonic() < deadline, "the listener did not retry"
        time.sleep(0.02)
    assert not listener.connected
    listener.stop()
    assert listener._thread is not None and not listener._thread.is_alive()
    with pytest.raises(RuntimeError, match="stopped"):
        listener.start()
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
