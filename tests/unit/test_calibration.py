"""Calibration per knowledge base: precedence, storage, propagation, leave-one-out masking, weight choice."""

from __future__ import annotations

import pytest

from knowledge_base.search.calibration import Calibration, CalibrationStore, effective_settings
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.fitting import WeightScore, best_weight, fit_held_out
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.lexical import BM25Index
from knowledge_base.settings import Settings, load_settings
from knowledge_base.storage.store import SQLStore
from tests.conftest import TODAY

pytestmark = pytest.mark.unit

FITTED = Calibration(
    values={"lexical_weight": 0.12, "answer_threshold": 0.9, "answer_margin": 0.01, "clarify_threshold": 0.85},
    measured={"hit_at_1": 0.8},
    method="test",
    fitted_by="tester",
)


# -- precedence: environment > applied calibration > config.yml --------------------------------


def test_applied_calibration_beats_config(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("lexical_weight: 0.03\nanswer_threshold: 0.95\nclarify_threshold: 0.94\n")
    settings = load_settings(config, environ={})
    effective, sources = effective_settings(settings, FITTED)
    assert (effective.lexical_weight, effective.answer_threshold, effective.clarify_threshold) == (0.12, 0.9, 0.85)
    assert set(sources.values()) == {"calibration"}


def test_environment_beats_applied_calibration(tmp_path):
    settings = load_settings(None, environ={"HOTLINE_LEXICAL_WEIGHT": "0.05"})
    assert settings.explicit == frozenset({"lexical_weight"})
    effective, sources = effective_settings(settings, FITTED)
    assert effective.lexical_weight == 0.05 and sources["lexical_weight"] == "environment"
    assert effective.answer_threshold == 0.9 and sources["answer_threshold"] == "calibration"


def test_no_calibration_means_config_and_explicit_names_are_not_settings():
    settings = load_settings(None, environ={})
    effective, sources = effective_settings(settings, None)
    assert effective == settings and set(sources.values()) == {"config"}
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings_from_text("explicit: [lexical_weight]\n")


def load_settings_from_text(text: str) -> Settings:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yml"
        path.write_text(text)
        return load_settings(path, environ={})


def test_a_pinned_answer_threshold_never_leaves_clarify_above_it():
    settings = load_settings(None, environ={"HOTLINE_ANSWER_THRESHOLD": "0.96"})
    strict = Calibration(values={"answer_threshold": 0.98, "clarify_threshold": 0.97})
    effective, sources = effective_settings(settings, strict)
    assert effective.answer_threshold == 0.96 and effective.clarify_threshold == settings.clarify_threshold
    assert sources["clarify_threshold"] == "config" and sources["answer_threshold"] == "environment"


@pytest.mark.parametrize(
    "values",
    [
        {"lexical_weight": 1.5},
        {"lexical_weight": float("nan")},
        {"answer_threshold": 0.8, "clarify_threshold": 0.9},
        {"embed_text": 1.0},
    ],
)
def test_a_calibration_validates_itself(values):
    with pytest.raises(ValueError):
        Calibration(values=values)


# -- storage and propagation ---------------------------------------------------------------------


def test_pending_is_applied_with_who_and_when_and_moves_the_kb_version(store):
    calibrations = CalibrationStore(store.db)
    assert calibrations.pending() is None and calibrations.applied() is None
    calibrations.save_pending(FITTED)
    assert calibrations.applied() is None  # saving a fit changes no answer
    version = store.kb_version()
    applied, new_version = calibrations.apply_pending(author="reviewer1")
    assert new_version == version + 1 == store.kb_version()
    assert applied.applied_by == "reviewer1" and applied.applied_at
    assert calibrations.applied() == applied and calibrations.pending() is None
    assert calibrations.reset(author="reviewer1") == version + 2
    assert calibrations.applied() is None


def test_a_second_knowledge_base_over_the_same_database_picks_up_an_applied_calibration(tmp_path, normaliser):
    from tests.conftest import sample_entries

    path = tmp_path / "kb.sqlite3"
    settings = Settings(data_dir=str(tmp_path), lexical_weight=0.03)
    first = KnowledgeBase(SQLStore(path), FakeEmbedder(), normaliser, settings=settings, today=lambda: TODAY)
    first.import_entries(sample_entries(), author="tester")
    second = KnowledgeBase(SQLStore(path), FakeEmbedder(), normaliser, settings=settings, today=lambda: TODAY)
    assert second.search("社保缴费记录").thresholds["lexical_weight"] == 0.03
    calibrations = CalibrationStore(first.store.db)  # type: ignore[attr-defined]
    calibrations.save_pending(FITTED)
    calibrations.apply_pending(author="reviewer1")
    first.announce_change()
    assert first.settings.lexical_weight == 0.12
    # The other worker got no announcement (no Redis): its next search sees the new KB version.
    found = second.search("社保缴费记录")
    assert found.thresholds["lexical_weight"] == 0.12 and found.thresholds["answer_threshold"] == 0.9
    assert second.sources["lexical_weight"] == "calibration"
    assert second.configured_settings.lexical_weight == 0.03
    calibrations.reset(author="reviewer1")
    assert second.search("社保缴费记录").thresholds["lexical_weight"] == 0.03
    assert second.sources["lexical_weight"] == "config"


def test_a_knowledge_base_opened_after_the_calibration_starts_with_it(tmp_path, normaliser):
    path = tmp_path / "kb.sqlite3"
    calibrations = CalibrationStore(SQLStore(path).db)
    calibrations.save_pending(FITTED)
    calibrations.apply_pending(author="reviewer1")
    kb = KnowledgeBase(SQLStore(path), FakeEmbedder(), normaliser, settings=Settings(data_dir=str(tmp_path)))
    kb.warm_up()
    assert kb.settings.lexical_weight == 0.12 and kb.applied_calibration is not None


def test_a_damaged_calibration_row_leaves_config_in_effect(store):
    store.db.execute("INSERT INTO meta (name, value) VALUES ('calibration.applied', 'not json')")
    assert CalibrationStore(store.db).applied() is None


# -- leave-one-out: the held-out wording is not in the index it is searched in ------------------


def test_bm25_held_out_document_is_scored_as_if_absent():
    full, without = BM25Index(), BM25Index()
    docs = {1: ["社", "保", "社保"], 2: ["公", "积", "金"], 3: ["社", "保", "卡"]}
    for doc, tokens in docs.items():
        full.add(doc, tokens)
        if doc != 3:
            without.add(doc, tokens)
    query = ["社", "保"]
    assert full.score_docs(query, [1, 2, 3], held_out=3) == pytest.approx(without.score_docs(query, [1, 2]))


def test_held_out_search_never_finds_the_wording_itself(fake_kb):
    from knowledge_base.records import Entry

    fake_kb.add(Entry(question="社保卡丢了怎么补办", answer="到银行网点补办。"), author="tester")
    wordings, skipped = fake_kb.held_out_wordings()
    assert {w.text for w in wordings} == {
        "社保交了几个月在哪查",
        "社保缴费明细查询",
        "深圳公积金提取流程",
        "广州公积金提取流程",
    }
    assert skipped == 1  # the entry without similar questions is counted, not used
    for wording, evidence in fake_kb.held_out_evidence(wordings):
        for _, phrase in evidence.dense.values():
            assert phrase != wording.text
        for _, phrase in evidence.lexical.values():
            assert phrase != wording.text


def test_fit_reports_every_weight_and_warns_when_there_are_too_few_wordings(fake_kb):
    fit = fit_held_out(fake_kb, weights=(0.0, 0.05, 0.5))
    assert [w.weight for w in fit.weights] == [0.0, 0.05, 0.5]
    assert fit.n_questions == len(fake_kb.held_out_wordings()[0])
    assert not fit.reliable  # a handful of wordings: keep the defaults
    calibration = fit.calibration(by="tester", current=fake_kb.settings)
    assert calibration.values["lexical_weight"] == fit.chosen.weight
    assert calibration.measured["current"]["values"]["lexical_weight"] == fake_kb.settings.lexical_weight


def test_fit_refuses_a_knowledge_base_without_similar_questions(store, normaliser):
    from knowledge_base.records import Entry

    kb = KnowledgeBase(store, FakeEmbedder(), normaliser, today=lambda: TODAY)
    kb.add(Entry(question="社保怎么查", answer="登录粤省事。"), author="tester")
    with pytest.raises(ValueError, match="没有相似问法"):
        fit_held_out(kb)


@pytest.mark.parametrize(
    ("scores", "chosen"),
    [
        ([WeightScore(0.0, 0.8, 0.85), WeightScore(0.05, 0.82, 0.84)], 0.05),  # best hit@1 wins
        ([WeightScore(0.0, 0.8, 0.85), WeightScore(0.05, 0.8, 0.86)], 0.05),  # tie: better MRR
        ([WeightScore(0.03, 0.8, 0.85), WeightScore(0.0, 0.8, 0.85)], 0.0),  # tie again: the smaller weight
    ],
)
def test_best_weight(scores, chosen):
    assert best_weight(scores).weight == chosen


def test_hotline_config_shows_the_applied_values_and_where_they_come_from(tmp_path):
    from hotline.calibration import settings_in_effect

    settings = load_settings(None, environ={"HOTLINE_ANSWER_MARGIN": "0.03"}, data_dir=str(tmp_path))
    assert settings_in_effect(settings)[1]["lexical_weight"] == "config.yml"  # no database yet: none created
    assert not settings.sqlite_path.exists()
    calibrations = CalibrationStore(SQLStore(settings.sqlite_path).db)
    calibrations.save_pending(FITTED)
    calibrations.apply_pending(author="reviewer1")
    effective, sources = settings_in_effect(settings)
    assert effective.lexical_weight == 0.12 and sources["lexical_weight"] == "已应用的校准"
    assert effective.answer_margin == 0.03 and sources["answer_margin"] == "环境变量"
