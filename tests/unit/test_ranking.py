"""Pure ranking: per-entry aggregation, fusion and decisions."""

from __future__ import annotations

import pytest

from knowledge_base.records import Decision
from knowledge_base.search.ranking import Thresholds, best_per_entry, decide, fuse

pytestmark = pytest.mark.unit

T = Thresholds(answer_threshold=0.90, answer_margin=0.02, clarify_threshold=0.85, clarify_window=0.04, clarify_max=3)


def test_an_entry_scores_its_best_phrasing():
    best = best_per_entry([(1, "a", 0.5), (1, "b", 0.9), (2, "c", 0.7)])
    assert best == {1: (0.9, "b"), 2: (0.7, "c")}


def test_fusion_with_zero_weight_is_the_dense_ranking():
    ranked = fuse({1: (0.8, "a"), 2: (0.9, "b")}, {1: (10.0, "a")}, 0.0)
    assert [r.entry_id for r in ranked] == [2, 1]


def test_fusion_adds_weighted_lexical_and_can_reorder():
    ranked = fuse({1: (0.80, "a"), 2: (0.82, "b")}, {1: (1.0, "a"), 2: (0.2, "b")}, 0.1)
    assert [r.entry_id for r in ranked] == [1, 2]
    assert ranked[0].score == pytest.approx(0.90) and ranked[1].score == pytest.approx(0.84)


def test_lexical_evidence_never_adds_candidates():
    assert [r.entry_id for r in fuse({1: (0.5, "a")}, {2: (1.0, "b")}, 0.5)] == [1]


@pytest.mark.parametrize(
    ("scores", "decision", "offered"),
    [
        ([], Decision.NO_ANSWER, 0),
        ([0.80, 0.79], Decision.NO_ANSWER, 0),
        ([0.95], Decision.ANSWER, 1),
        ([0.95, 0.90], Decision.ANSWER, 1),
        ([0.95, 0.94, 0.93, 0.92], Decision.CLARIFY, 3),
        ([0.88, 0.70], Decision.CLARIFY, 1),
        ([0.88, 0.86, 0.80], Decision.CLARIFY, 2),
        ([0.92, 0.915, 0.70], Decision.CLARIFY, 2),
        # only the entries within clarify_window of the best are offered, however many clear clarify_threshold
        ([0.93, 0.915, 0.87, 0.86], Decision.CLARIFY, 2),
        ([0.89, 0.86, 0.855], Decision.CLARIFY, 3),
        ([0.89, 0.86, 0.84], Decision.CLARIFY, 2),  # 0.84 is within the window but below clarify_threshold
        ([0.95, 0.94, 0.93, 0.92, 0.91], Decision.CLARIFY, 3),  # never more than clarify_max
        ([0.96, 0.95, 0.80], Decision.CLARIFY, 2),  # high, but the runner-up is too close
    ],
)
def test_decide(scores, decision, offered):
    verdict = decide(scores, T)
    assert (verdict.decision, verdict.offered) == (decision, offered)
    assert verdict.reason
    keys = [f"K{i}" for i in range(len(scores))]
    assert verdict.offer(keys) == keys[:offered]


@pytest.mark.parametrize("clarify_max", [1, 2, 3, 4, 5])
def test_clarify_max_caps_the_choice(clarify_max):
    t = Thresholds(0.90, 0.02, 0.85, 0.04, clarify_max)
    assert decide([0.89, 0.88, 0.87, 0.86, 0.86, 0.86], t).offered == min(clarify_max, 5)
