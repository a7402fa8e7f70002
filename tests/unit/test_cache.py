"""The search-result cache: keys, values, the in-process LRU, and results identical to uncached ones."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from knowledge_base.records import Decision, Entry, Region
from knowledge_base.search.cache import CachedResult, LRUResultCache, RedisResultCache, result_key
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from tests.conftest import TODAY

pytestmark = pytest.mark.unit

QUESTIONS = [
    "社保缴费记录在哪查",
    "怎么查询社保缴费记录？",
    "深圳公积金怎么提取",
    "公积金提取",
    "新生儿落户",
    "2024年临时生活补贴怎么申请",
    "完全无关的问题天气",
]
SEARCHES = [{}, {"region": "深圳"}, {"region": Region("广东省", "广州市")}, {"department": "公积金"}, {"top_k": 1}]


@pytest.fixture
def cached_kb(fake_kb, normaliser, settings):
    """A second knowledge base on fake_kb's database, with an LRU cache."""
    return KnowledgeBase(
        fake_kb.store, FakeEmbedder(), normaliser, settings=settings, today=lambda: TODAY, cache=LRUResultCache()
    )


def test_cached_results_are_identical_to_uncached_ones(fake_kb, cached_kb):
    for question in QUESTIONS:
        for kwargs in SEARCHES:
            uncached = fake_kb.search(question, **kwargs)
            assert cached_kb.search(question, **kwargs) == uncached  # miss: searched and stored
            assert cached_kb.search(question, **kwargs) == uncached  # hit: rebuilt from the cache
    assert cached_kb.cache.hits == len(QUESTIONS) * len(SEARCHES)
    assert cached_kb.cache.misses == len(QUESTIONS) * len(SEARCHES)


def test_a_cut_question_keeps_its_notice_when_cached(fake_kb, normaliser):
    settings = Settings(data_dir=fake_kb.settings.data_dir, max_query_chars=10)
    kb = KnowledgeBase(fake_kb.store, FakeEmbedder(), normaliser, settings=settings, cache=LRUResultCache())
    long = "怎么查询社保缴费记录" + "啊" * 20
    first, second = kb.search(long), kb.search(long)
    assert second == first and second.truncated and "cut to 10" in second.reason
    assert kb.cache.hits == 1
    assert kb.search("怎么查询社保缴费记录").truncated is False  # same text, not cut: its own entry


def test_a_write_changes_the_key_so_old_results_are_not_served(cached_kb):
    before = cached_kb.search("第一个新问题怎么办理")
    cached_kb.add(Entry(key="T-NEW", question="第一个新问题怎么办理", answer="新答案"), author="editor")
    after = cached_kb.search("第一个新问题怎么办理")
    assert after.kb_version == before.kb_version + 1
    assert after.best is not None and after.best.entry.key == "T-NEW"
    assert cached_kb.cache.hits == 0


def test_explained_searches_bypass_the_cache(cached_kb):
    cached_kb.search("社保缴费记录在哪查", explain=True)
    cached_kb.search("社保缴费记录在哪查", explain=True)
    assert (cached_kb.cache.hits, len(cached_kb.cache)) == (0, 0)


def test_a_new_day_is_a_new_key(fake_kb, normaliser, settings):
    day = [TODAY]
    kb = KnowledgeBase(
        fake_kb.store, FakeEmbedder(), normaliser, settings=settings, today=lambda: day[0], cache=LRUResultCache()
    )
    kb.search("新政策补贴怎么领")
    day[0] = date(2027, 1, 1)  # T-FUTURE takes effect
    result = kb.search("新政策补贴怎么领")
    assert kb.cache.hits == 0
    assert result.best is not None and result.best.entry.key == "T-FUTURE"


def test_an_entry_at_another_version_is_a_miss(cached_kb):
    result = cached_kb.search("深圳公积金怎么提取")
    value = CachedResult.of(result)
    best = result.hits[0].entry
    assert value.rebuild(query="q", normalised="q", entries={best.id: best}, thresholds={}, truncated=False) is None
    entries = {h.entry_id: h.entry for h in result.hits}
    assert value.rebuild(query="q", normalised="q", entries=entries, thresholds={}, truncated=False) is not None
    entries[best.id] = best.replace(version=best.version + 1)
    assert value.rebuild(query="q", normalised="q", entries=entries, thresholds={}, truncated=False) is None


def test_json_round_trip_is_exact(cached_kb):
    value = CachedResult.of(cached_kb.search("社保缴费记录在哪查"))
    assert value.hits
    assert CachedResult.from_json(value.to_json()) == value
    assert CachedResult.from_json(value.to_json().encode()) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"v": 1}',
        '{"v": 1, "d": "maybe", "r": "", "h": [], "o": 0}',
        '{"v": 1, "d": "answer", "r": "", "h": []}',  # the shape before the offered count was kept
    ],
)
def test_unreadable_json_is_refused(text):
    with pytest.raises(ValueError, match="not a cached search result"):
        CachedResult.from_json(text)


BASE = {
    "scope": "s",
    "kb_version": 3,
    "today": TODAY,
    "embed_text": "怎么查社保",
    "lexical_text": "查社保",
    "region": "",
    "department": "",
    "top_k": 5,
    "truncated": False,
}


@pytest.mark.parametrize(
    "change",
    [
        {"scope": "t"},
        {"kb_version": 4},
        {"today": TODAY + timedelta(days=1)},
        {"embed_text": "怎么查社保？"},
        {"lexical_text": "查社保卡"},
        {"region": "Region(province='广东省', city='深圳市', district='')"},
        {"department": "人社"},
        {"top_k": 3},
        {"truncated": True},
    ],
)
def test_every_part_of_the_key_matters(change):
    assert result_key(**{**BASE, **change}) != result_key(**BASE)
    assert result_key(**BASE) == result_key(**dict(BASE))


def test_lru_keeps_the_most_recently_used():
    cache = LRUResultCache(max_entries=2)
    a, b, c = (CachedResult(n, Decision.ANSWER, "", (), 1) for n in range(3))
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)
    assert cache.get("b") is None
    assert cache.get("a") is a and cache.get("c") is c
    assert len(cache) == 2


@pytest.mark.parametrize("bad", [0, -1])
def test_lru_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="max_entries"):
        LRUResultCache(max_entries=bad)


def test_redis_cache_without_redis_is_a_miss_and_pauses(caplog):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Nothing listens on port 1: every call fails fast; the search goes on without the cache.
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    cache = RedisResultCache(client, pause_s=60)
    value = CachedResult(1, Decision.ANSWER, "", (), 1)
    assert cache.get("k") is None
    cache.put("k", value)  # paused: not even tried
    assert cache.get("k") is None
    assert cache.misses == 2
    assert sum("search cache in Redis unavailable" in r.getMessage() for r in caplog.records) == 1


def test_new_dictionary_tables_are_a_new_key(cached_kb, tmp_path):
    import shutil

    from knowledge_base.search.textnorm import DEFAULT_DATA_DIR, TextNormaliser

    first = cached_kb.search("社保缴费记录在哪查")
    tables = shutil.copytree(DEFAULT_DATA_DIR, tmp_path / "tables")
    with (tables / "synonyms.tsv").open("a", encoding="utf-8") as f:
        f.write("缴费记录\t缴费明细\n")
    cached_kb.use_normaliser(TextNormaliser.from_dir(tables))  # same KB version, other tables
    again = cached_kb.search("社保缴费记录在哪查")
    assert cached_kb.cache.hits == 0
    assert again.kb_version == first.kb_version
