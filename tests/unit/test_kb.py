"""KnowledgeBase logic with a real SQLite store and the FAKE n-gram embedder."""

from __future__ import annotations

import dataclasses

import pytest

from knowledge_base.errors import StaleVersion
from knowledge_base.records import Decision, Entry, Status
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.storage.store import SQLStore
from tests.conftest import TODAY

pytestmark = pytest.mark.unit


def keys(result) -> list[str]:
    return [h.entry.key for h in result.hits]


def test_finds_the_entry_and_ties_the_answer_to_its_source(fake_kb):
    result = fake_kb.search("社保缴费记录查询")
    assert keys(result)[0] == "T-SB-1"
    assert result.best.entry.department == "广东省人力资源和社会保障厅"
    assert result.kb_version == fake_kb.store.kb_version()


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_question_is_a_value_error(fake_kb, query):
    with pytest.raises(ValueError, match="empty"):
        fake_kb.search(query)


@pytest.mark.parametrize("query", ["？？？！！", "😀😀😀", "\x00\x01"])
def test_question_without_words_gets_no_answer_not_a_crash(fake_kb, query):
    result = fake_kb.search(query)
    assert result.decision is Decision.NO_ANSWER and result.hits == ()


def test_huge_question_is_truncated_with_a_notice(fake_kb):
    result = fake_kb.search("社保" * 5000)
    assert result.truncated and len(result.query) == fake_kb.settings.max_query_chars
    assert "cut" in result.reason


def test_drafts_expired_and_future_entries_are_never_served(fake_kb):
    served = set()
    for q in ["2024年临时生活补贴怎么申请", "新生儿落户怎么办理", "2027年新政策补贴怎么领"]:
        served |= set(keys(fake_kb.search(q, top_k=10)))
    assert not served & {"T-OLD", "T-DRAFT", "T-FUTURE"}


def test_region_filter_keeps_other_cities_out(fake_kb):
    sz = keys(fake_kb.search("公积金怎么提取", region="深圳", top_k=10))
    gz = keys(fake_kb.search("公积金怎么提取", region="广东省/广州市", top_k=10))
    assert "T-GJJ-SZ" in sz and "T-GJJ-GZ" not in sz
    assert "T-GJJ-GZ" in gz and "T-GJJ-SZ" not in gz
    assert "T-SB-1" in keys(fake_kb.search("社保缴费记录", region="深圳"))  # province-wide entry applies


def test_unknown_region_is_a_clear_error(fake_kb):
    with pytest.raises(ValueError, match="region"):
        fake_kb.search("公积金怎么提取", region="甲/乙/丙/丁")


def test_department_filter(fake_kb):
    result = fake_kb.search("公积金怎么提取", department="深圳市住房公积金管理中心", top_k=10)
    assert keys(result) == ["T-GJJ-SZ"]


def test_one_change_is_searchable_at_once_without_a_rebuild(fake_kb):
    built = fake_kb._index
    entry = fake_kb.store.get_by_key("T-SB-1")
    fake_kb.update(entry.replace(similar_questions=(*entry.similar_questions, "养老保险个人账户余额")), author="ed")
    assert fake_kb._index is built  # updated in place
    assert keys(fake_kb.search("养老保险个人账户余额"))[0] == "T-SB-1"


def test_publishing_and_archiving_add_and_remove_from_search(fake_kb):
    draft = fake_kb.store.get_by_key("T-DRAFT")
    fake_kb.set_status(draft.id, Status.PUBLISHED, expected_version=draft.version, author="reviewer")
    assert keys(fake_kb.search("新生儿落户怎么办理"))[0] == "T-DRAFT"
    published = fake_kb.store.get_by_key("T-DRAFT")
    fake_kb.set_status(published.id, "archived", expected_version=published.version, author="reviewer")
    assert "T-DRAFT" not in keys(fake_kb.search("新生儿落户怎么办理", top_k=10))


def test_stale_save_is_refused_and_search_still_serves_the_winner(fake_kb):
    entry = fake_kb.store.get_by_key("T-SB-1")
    fake_kb.update(entry.replace(answer="第一位编辑的答案"), author="a")
    with pytest.raises(StaleVersion):
        fake_kb.update(entry.replace(answer="第二位编辑的答案"), author="b")
    assert fake_kb.search("社保缴费记录查询").best.entry.answer == "第一位编辑的答案"


def test_a_second_worker_catches_up_with_changes_made_by_the_first(fake_kb, normaliser, settings):
    other = KnowledgeBase(fake_kb.store, FakeEmbedder(), normaliser, settings=settings, today=lambda: TODAY)
    other.warm_up()
    fake_kb.add(Entry(key="T-NEW", question="电动自行车怎么上牌", answer="到车管所登记。"), author="ed")
    assert keys(other.search("电动自行车上牌"))[0] == "T-NEW"
    assert other.kb_version == fake_kb.kb_version


def test_persisted_index_is_reused_caught_up_and_rebuilt_when_it_does_not_match(tmp_path, normaliser, settings):
    store = SQLStore(tmp_path / "kb.sqlite3")
    store.import_entries([Entry(key="A", question="护照怎么办理", answer="出入境窗口办理。")], author="x")
    first = KnowledgeBase(store, FakeEmbedder(), normaliser, settings=settings, index_dir=tmp_path / "index")
    assert first.warm_up().rebuilt
    store.add(Entry(key="B", question="港澳通行证怎么续签", answer="自助签注机办理。"), author="x")
    second = KnowledgeBase(store, FakeEmbedder(), normaliser, settings=settings, index_dir=tmp_path / "index")
    report = second.warm_up()
    assert not report.rebuilt and report.entries_changed == 1
    assert keys(second.search("港澳通行证续签"))[0] == "B"
    other_model = KnowledgeBase(
        store, FakeEmbedder(dim=32), normaliser, settings=settings, index_dir=tmp_path / "index"
    )
    assert other_model.warm_up().rebuilt


def test_explain_reports_tokens_and_lexical_scores(fake_kb):
    result = fake_kb.search("請問社保繳費記錄點樣查？", explain=True)
    assert "社会保险" in result.normalised and "怎么" in result.normalised
    assert result.tokens and result.hits[0].lexical > 0
    assert result.reason


def test_top_k_out_of_range(fake_kb):
    with pytest.raises(ValueError, match="top_k"):
        fake_kb.search("社保", top_k=0)


def test_rollback_goes_through_the_index(fake_kb):
    entry = fake_kb.store.get_by_key("T-SB-1")
    changed = fake_kb.update(entry.replace(question="完全不同的问题：护照办理"), author="ed")
    first_revision = fake_kb.revisions(entry.id)[0]
    fake_kb.rollback(entry.id, first_revision.id, expected_version=changed.version, author="ed")
    assert keys(fake_kb.search("怎么查询社保缴费记录"))[0] == "T-SB-1"


def test_searches_during_edits_never_fail(fake_kb):
    import threading

    errors: list[BaseException] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                fake_kb.search("公积金怎么提取", explain=True)
                fake_kb.search("社保缴费记录查询")
            except BaseException as exc:  # any error here would reach a citizen
                errors.append(exc)
                return

    searchers = [threading.Thread(target=search_loop) for _ in range(3)]
    for t in searchers:
        t.start()
    try:
        for i in range(30):
            entry = fake_kb.store.get_by_key("T-GJJ-SZ")
            status = "archived" if i % 2 == 0 else "published"
            fake_kb.update(entry.replace(status=status, similar_questions=(f"深圳公积金提取第{i}问",)), author="ed")
    finally:
        stop.set()
        for t in searchers:
            t.join()
    assert errors == []


# -- what a clarification offers: decided once, by the rule evaluation and calibration measure ----------

CLARIFY = {"answer_threshold": 0.95, "answer_margin": 0.02, "clarify_threshold": 0.85, "clarify_window": 0.04}
ASKED = "出国要带什么证件"  # holds no keyword: every entry scores its cosine


def test_a_clarification_offers_only_the_entries_within_the_window(scored_kb):
    # 护照 and 签证 lie within 0.04 of the best; 户口 clears clarify_threshold but not the window
    kb = scored_kb({"护照": 0.93, "签证": 0.91, "户口": 0.87, "驾照": 0.70}, clarify_max=3, **CLARIFY)
    result = kb.search(ASKED)
    assert result.decision is Decision.CLARIFY
    assert [h.entry.key for h in result.hits[:3]] == ["K-1", "K-2", "K-3"]
    assert [h.entry.key for h in result.candidates()] == ["K-1", "K-2"]
    assert result.offered == 2 and "offering 2 candidate(s)" in result.reason


@pytest.mark.parametrize(
    ("cosines", "clarify_max", "decision", "offered"),
    [
        ({"护照": 0.93, "签证": 0.91, "户口": 0.87}, 3, Decision.CLARIFY, 2),
        ({"护照": 0.93, "签证": 0.92, "户口": 0.915, "驾照": 0.91}, 3, Decision.CLARIFY, 3),
        ({"护照": 0.93, "签证": 0.92, "户口": 0.915}, 2, Decision.CLARIFY, 2),
        ({"护照": 0.90, "签证": 0.70}, 3, Decision.CLARIFY, 1),
        ({"护照": 0.97, "签证": 0.90}, 3, Decision.ANSWER, 1),
        ({"护照": 0.97, "签证": 0.96}, 3, Decision.CLARIFY, 2),
        ({"护照": 0.80, "签证": 0.79}, 3, Decision.NO_ANSWER, 0),
    ],
)
def test_evaluation_decides_as_the_service_does(scored_kb, cosines, clarify_max, decision, offered):
    from hotline.bench import rank_queries
    from hotline.evaluation import LabelledQuery, decision_metrics
    from knowledge_base.search.ranking import Thresholds, decide

    kb = scored_kb(cosines, clarify_max=clarify_max, **CLARIFY)
    served = kb.search(ASKED, top_k=10)
    assert (served.decision, served.offered) == (decision, offered)
    # what ``hotline bench`` and ``hotline calibrate`` record of the same question, and decide on
    (ranked,), _ = rank_queries(kb, [LabelledQuery(ASKED, "K-1")])
    thresholds = Thresholds.from_mapping(kb.settings.thresholds())
    verdict = decide(ranked.scores, thresholds)
    assert (verdict.decision, verdict.offered) == (served.decision, served.offered)
    assert verdict.offer(ranked.keys) == tuple(h.entry.key for h in served.candidates())
    # a clarification counts as useful exactly when the service offers the right entry
    offered_keys = [h.entry.key for h in served.candidates()]
    for key in ranked.keys:
        useful = decision_metrics([dataclasses.replace(ranked, gold=key)], thresholds)["clarify_useful"]
        assert useful == (decision is Decision.CLARIFY and key in offered_keys), key


def test_a_cached_clarification_offers_the_same_candidates(scored_kb):
    from knowledge_base.search.cache import CachedResult, LRUResultCache

    kb = scored_kb({"护照": 0.93, "签证": 0.91, "户口": 0.87}, clarify_max=3, **CLARIFY)
    kb.cache = LRUResultCache()
    first, again = kb.search(ASKED), kb.search(ASKED)
    assert kb.cache.hits == 1 and again == first
    assert [h.entry.key for h in again.candidates()] == ["K-1", "K-2"]
    assert CachedResult.from_json(CachedResult.of(first).to_json()).offered == 2
