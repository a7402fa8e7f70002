"""Leave-one-wording-out calibration with the real model on a small synthetic knowledge base."""

from __future__ import annotations

import pytest

from knowledge_base.records import Entry
from knowledge_base.search.fitting import fit_held_out, rank
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.storage.store import SQLStore
from tests.conftest import TODAY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Written for this test: five intents, each with a standard question and three wordings.
INTENTS = {
    "社保卡丢了怎么补办": ("社会保障卡遗失了如何补办", "社保卡不见了去哪里补", "补办社保卡需要什么材料"),
    "住房公积金怎么提取": ("公积金提取要怎么办理", "怎样把公积金取出来", "提取住房公积金的流程"),
    "新生儿怎么办理户口登记": ("刚出生的宝宝怎么上户口", "小孩出生后落户怎么办", "新生儿入户需要哪些材料"),
    "失业保险金怎么申领": ("失业了怎么领失业金", "申请失业保险待遇的条件", "失业金在哪里申请"),
    "驾驶证到期了怎么换证": ("驾照过期怎么换新的", "机动车驾驶证期满换证流程", "驾驶证有效期满去哪换"),
}


@pytest.fixture(scope="module")
def small_kb(real_embedder, normaliser, tmp_path_factory) -> KnowledgeBase:
    folder = tmp_path_factory.mktemp("calibration-kb")
    kb = KnowledgeBase(
        SQLStore(folder / "kb.sqlite3"),
        real_embedder,
        normaliser,
        settings=Settings(data_dir=str(folder)),
        today=lambda: TODAY,
    )
    entries = [
        Entry(key=f"C-{i}", question=question, similar_questions=similar, answer=f"答案{i}")
        for i, (question, similar) in enumerate(INTENTS.items())
    ]
    entries.append(Entry(key="C-ALONE", question="残疾人证怎么办理", answer="到街道办理。"))
    kb.import_entries(entries, author="tester")
    return kb


def test_every_similar_question_is_held_out_once_and_found_without_itself(small_kb):
    fit = fit_held_out(small_kb, weights=(0.0, 0.03, 0.12))
    assert fit.n_questions == 15 and fit.skipped_entries == 1
    assert not fit.reliable  # 15 < 30: the report says keep the defaults
    assert fit.chosen.hit_at_1 >= 0.8  # five well-separated intents: the model finds the entry without the wording
    wordings, _ = small_kb.held_out_wordings()
    for (wording, evidence), outcome in zip(small_kb.held_out_evidence(wordings), fit.results, strict=True):
        assert all(phrase != wording.text for _, phrase in evidence.dense.values())
        assert outcome == rank(evidence, fit.chosen.weight, wording.key)


def test_held_out_vectors_are_the_ones_a_search_would_embed(small_kb):
    # The stored vector of a wording stands in for embedding it again as a question.
    wordings, _ = small_kb.held_out_wordings()
    wording = wordings[0]
    (_, held), fresh = next(small_kb.held_out_evidence([wording])), small_kb.evidence(wording.text)
    own = wording.entry_id
    assert fresh.dense[own][1] == wording.text and fresh.dense[own][0] == pytest.approx(1.0, abs=1e-4)
    others = {k: v for k, v in fresh.dense.items() if k != own}
    assert {k: v[0] for k, v in others.items()} == pytest.approx({k: held.dense[k][0] for k in others}, abs=1e-4)
    assert held.dense[own][1] != wording.text and held.dense[own][0] < 0.9999
