"""The real thing: multilingual-e5-small, FAISS and SQLite on the sample knowledge base and its test questions."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from hotline.evaluation import Ranked, decision_metrics, read_queries, retrieval_metrics
from knowledge_base.records import Decision
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.ranking import Thresholds
from knowledge_base.settings import load_settings
from knowledge_base.storage.store import SQLStore
from knowledge_base.transfer import read_entries
from tests.conftest import REPO, TODAY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = REPO / "knowledge_base" / "sample"


@pytest.fixture(scope="module")
def real_kb(real_embedder, normaliser, tmp_path_factory) -> KnowledgeBase:
    folder = tmp_path_factory.mktemp("real-kb")
    settings = load_settings(REPO / "config.yml", environ={}, data_dir=str(folder))
    store = SQLStore(folder / "kb.sqlite3")
    store.import_entries(read_entries(SAMPLE / "guangdong_kb.yaml"), author="test")
    kb = KnowledgeBase(
        store, real_embedder, normaliser, settings=settings, index_dir=folder / "index", today=lambda: TODAY
    )
    kb.warm_up()
    return kb


@pytest.fixture(scope="module")
def ranked(real_kb) -> list[tuple[str, Ranked]]:
    out = []
    for q in read_queries(SAMPLE / "test_questions.jsonl"):
        found = real_kb.search(q.query, top_k=10)
        out.append(
            (q.query, Ranked(q.gold, tuple(h.entry.key for h in found.hits), tuple(h.score for h in found.hits)))
        )
    return out


def test_sample_test_set_is_big_enough():
    queries = read_queries(SAMPLE / "test_questions.jsonl")
    assert sum(q.gold is not None for q in queries) >= 100
    assert sum(q.gold is None for q in queries) >= 20


def test_accuracy_on_the_projects_own_test_questions(ranked):
    m = retrieval_metrics([r for _, r in ranked])
    # Measured 0.957 / 1.000 with the shipped configuration (README); the floor leaves room for
    # harmless numeric drift across CPUs, not for regressions.
    assert m["hit_at_1"] >= 0.92, m
    assert m["recall_at_5"] >= 0.97, m


def test_every_kind_of_citizen_wording_is_understood(ranked):
    import json

    kinds = {
        json.loads(line)["query"]: json.loads(line)["kind"]
        for line in (SAMPLE / "test_questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    by_kind: dict[str, list[Ranked]] = defaultdict(list)
    for query, r in ranked:
        by_kind[kinds[query]].append(r)
    for kind in ("colloquial", "typo", "traditional", "cantonese", "wrong_term", "short"):
        hit3 = sum(r.gold in r.keys[:3] for r in by_kind[kind]) / len(by_kind[kind])
        assert hit3 >= 0.9, (kind, hit3)


def test_shipped_thresholds_rarely_answer_wrongly(real_kb, ranked):
    m = decision_metrics([r for _, r in ranked], Thresholds.from_mapping(real_kb.settings.thresholds()))
    assert m["wrong_answer_rate"] <= 0.05, m
    assert m["answer_rate"] >= 0.3, m


def test_answer_carries_its_source(real_kb):
    result = real_kb.search("怎么查询社保缴费记录")
    assert result.decision is Decision.ANSWER
    entry = result.best.entry
    assert entry.key == "GD-SB-001" and entry.department and entry.policy.title and entry.effective_date


def test_traditional_and_cantonese_meet_the_simplified_entry(real_kb):
    simplified = real_kb.search("社保卡丢了怎么补办").best.entry.key
    assert real_kb.search("社保卡唔見咗點樣補辦").best.entry.key == simplified


def test_region_decides_between_city_entries(real_kb):
    sz = real_kb.search("公积金提取", region="深圳", top_k=10)
    gz = real_kb.search("公积金提取", region="广州", top_k=10)
    assert all("广州" not in "".join(map(str, h.entry.regions)) for h in sz.hits)
    assert all("深圳" not in "".join(map(str, h.entry.regions)) for h in gz.hits)


def test_expired_draft_and_future_entries_are_never_served(real_kb, ranked):
    hidden = {e.key for e in real_kb.store.entries() if not e.in_effect(TODAY)}
    assert hidden, "the sample should hold entries that must not be served"
    served = {k for _, r in ranked for k in r.keys}
    assert not served & hidden


def test_an_edit_is_searchable_at_once(real_kb):
    entry = real_kb.store.get_by_key("GD-SB-001")
    new_phrase = "单位有没有给我买五险在手机上怎么看"
    updated = real_kb.update(entry.replace(similar_questions=(*entry.similar_questions, new_phrase)), author="ed")
    try:
        result = real_kb.search(new_phrase, explain=True)
        assert result.best.entry.key == "GD-SB-001"
        assert result.best.matched_phrasing == new_phrase
    finally:
        real_kb.update(updated.replace(similar_questions=entry.similar_questions), author="ed")


def test_corrupt_index_on_disk_is_detected_and_rebuilt(real_kb, real_embedder, normaliser):
    real_kb.save_index()
    index_file = Path(real_kb.index_dir) / "index.faiss"
    index_file.write_bytes(index_file.read_bytes()[:-100])
    fresh = KnowledgeBase(
        real_kb.store,
        real_embedder,
        normaliser,
        settings=real_kb.settings,
        index_dir=real_kb.index_dir,
        today=lambda: TODAY,
    )
    assert fresh.warm_up().rebuilt
    assert fresh.search("怎么查询社保缴费记录").best.entry.key == "GD-SB-001"


@pytest.mark.parametrize(
    "query",
    [
        "<script>alert(1)</script>社保怎么查",
        "' OR 1=1; DROP TABLE entries; --",
        "🙂🙂🙂",
        "社保\x00\x1b[31m怎么查",
        "我的ID card丢了怎么补办身份证",
    ],
)
def test_hostile_and_odd_input_is_handled(real_kb, query):
    before = real_kb.store.count()
    result = real_kb.search(query)
    assert result.decision in Decision
    assert real_kb.store.count() == before
