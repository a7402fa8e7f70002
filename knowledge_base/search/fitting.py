"""Fitting one knowledge base's lexical weight and decision thresholds, and the metrics that judge them.

Two sources of labelled questions, one procedure:

- **Leave one wording out** (:func:`fit_held_out`): each similar question of an entry is a
  question whose right answer is its entry, searched with that wording itself left out of
  the index. Every phrasing is embedded once, when the index is built; nothing is rebuilt.
- **Labelled queries** (:func:`fit_labelled`): citizens' wordings with the entry that answers
  them (or none, for a question the knowledge base cannot answer).

Each question is searched once (:class:`~knowledge_base.search.kb.Evidence`), then ranked at
every lexical weight of the grid: the weight with the best hit@1 wins (ties: MRR@10, then
the smaller weight). The thresholds are then swept at that weight by :func:`calibrate`.

The metrics are pure functions over :class:`Ranked` outcomes, shared with ``hotline bench``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from knowledge_base.records import Decision
from knowledge_base.search.calibration import Calibration
from knowledge_base.search.ranking import Thresholds, decide
from knowledge_base.settings import Settings

if TYPE_CHECKING:
    from knowledge_base.search.kb import Evidence, KnowledgeBase

LEXICAL_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.18, 0.25, 0.35, 0.5)
"""The grid of lexical weights tried; dense cosines of paraphrases differ by hundredths, so it is dense near 0."""

MIN_RELIABLE = 30
"""Fewer held-out questions than this: the fit is noise, keep the defaults."""

T = TypeVar("T")
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]
"""Wraps an iterable to show progress: (items, total, label) -> the same items (e.g. tqdm)."""


def _no_progress(items: Iterable[T], total: int, label: str) -> Iterable[T]:
    return items


# -- outcomes and their metrics -------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """One query's outcome: entry keys best first, with their scores."""

    gold: str | None
    keys: tuple[str, ...]
    scores: tuple[float, ...]


def retrieval_metrics(results: Sequence[Ranked]) -> dict[str, float]:
    """hit@1, MRR@10 and recall@5 over the answerable queries."""
    answerable = [r for r in results if r.gold is not None]
    if not answerable:
        return {"hit_at_1": 0.0, "mrr_at_10": 0.0, "recall_at_5": 0.0, "n_queries": 0}
    hit1 = mrr = rec5 = 0.0
    for r in answerable:
        keys = list(r.keys[:10])
        if keys[:1] == [r.gold]:
            hit1 += 1
        if r.gold in keys:
            rank = keys.index(r.gold) + 1
            mrr += 1 / rank
            rec5 += rank <= 5
    n = len(answerable)
    return {"hit_at_1": hit1 / n, "mrr_at_10": mrr / n, "recall_at_5": rec5 / n, "n_queries": n}


def decision_metrics(results: Sequence[Ranked], t: Thresholds) -> dict[str, float]:
    """The answer / clarify / no-answer split, and how often a direct answer is wrong.

    ``clarify_useful`` counts clarifications whose offered candidates include the right entry.
    Decisions and candidates come from :func:`~knowledge_base.search.ranking.decide`, the rule
    the knowledge base itself runs at search time, so the measured split is the served one.
    """
    counts = {"answer": 0, "clarify": 0, "no_answer": 0}
    wrong = clarify_useful = unanswerable_answered = 0
    for r in results:
        verdict = decide(r.scores, t)
        counts[verdict.decision.value] += 1
        if verdict.decision is Decision.ANSWER and (r.gold is None or r.keys[0] != r.gold):
            wrong += 1
            unanswerable_answered += r.gold is None
        if verdict.decision is Decision.CLARIFY and r.gold in verdict.offer(r.keys):
            clarify_useful += 1
    n = len(results) or 1
    answered = counts["answer"] or 1
    return {
        "answer_rate": counts["answer"] / n,
        "clarify_rate": counts["clarify"] / n,
        "no_answer_rate": counts["no_answer"] / n,
        "wrong_answers": wrong,
        "wrong_answer_rate": wrong / answered,
        "wrong_of_all_queries": wrong / n,
        "unanswerable_answered": unanswerable_answered,
        "clarify_useful": clarify_useful,
    }


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class CalibrationRow:
    answer_threshold: float
    answer_margin: float
    answer_rate: float
    wrong_answer_rate: float
    wrong_answers: int
    clarify_rate: float
    no_answer_rate: float


MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05)


def calibrate(
    results: Sequence[Ranked],
    *,
    max_wrong_rate: float,
    clarify_threshold: float,
    clarify_window: float,
    clarify_max: int = 3,
    steps: int = 40,
) -> tuple[list[CalibrationRow], CalibrationRow | None]:
    """Sweep answer_threshold (over the observed range of best scores) x answer_margin.

    Returns the table and the row that answers most while keeping wrong answers at or
    below ``max_wrong_rate`` of all answers (None if no row does).
    """
    tops = [r.scores[0] for r in results if r.scores]
    low = max(clarify_threshold, min(tops, default=clarify_threshold))
    high = max(tops, default=low) + 0.001
    rows = []
    for step in range(steps + 1):
        threshold = round(low + (high - low) * step / steps, 3)
        for margin in MARGINS:
            t = Thresholds(threshold, margin, min(clarify_threshold, threshold), clarify_window, clarify_max)
            m = decision_metrics(results, t)
            rows.append(
                CalibrationRow(
                    threshold,
                    margin,
                    m["answer_rate"],
                    m["wrong_answer_rate"],
                    int(m["wrong_answers"]),
                    m["clarify_rate"],
                    m["no_answer_rate"],
                )
            )
    good = [r for r in rows if r.wrong_answer_rate <= max_wrong_rate and r.answer_rate > 0]
    best = max(good, key=lambda r: (r.answer_rate, -r.wrong_answer_rate, -r.answer_threshold), default=None)
    return rows, best


# -- the lexical weight -------------------------------------------------------------------


def rank(evidence: Evidence, weight: float, gold: str | None, depth: int = 10) -> Ranked:
    """A question's outcome when searched with ``lexical_weight`` = ``weight``."""
    top = evidence.ranked(weight)[:depth]
    return Ranked(gold, tuple(evidence.keys[s.entry_id] for s in top), tuple(s.score for s in top))


@dataclass(frozen=True)
class WeightScore:
    weight: float
    hit_at_1: float
    mrr_at_10: float


def sweep_weights(
    questions: Sequence[tuple[Evidence, str | None]], weights: Sequence[float] = LEXICAL_WEIGHTS
) -> list[WeightScore]:
    """hit@1 and MRR@10 of the answerable questions at each lexical weight."""
    out = []
    for weight in weights:
        m = retrieval_metrics([rank(evidence, weight, gold) for evidence, gold in questions])
        out.append(WeightScore(weight, m["hit_at_1"], m["mrr_at_10"]))
    return out


def best_weight(scores: Sequence[WeightScore]) -> WeightScore:
    """The best hit@1; ties go to the better MRR@10, then to the smaller weight (less lexical, less risk).

    Raises:
        ValueError: no scores.
    """
    if not scores:
        raise ValueError("no lexical weights were measured")
    # Rounded so that float noise in a mean is not a "better" score.
    return max(scores, key=lambda s: (round(s.hit_at_1, 9), round(s.mrr_at_10, 9), -s.weight))


# -- the thresholds -----------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdFit:
    """The thresholds swept at one lexical weight."""

    clarify_threshold: float
    rows: list[CalibrationRow]
    best: CalibrationRow | None
    expected: dict[str, float]
    """:func:`decision_metrics` at the recommended thresholds (or at config's when none qualifies)."""

    def values(self) -> dict[str, float]:
        if self.best is None:
            return {}
        return {
            "answer_threshold": self.best.answer_threshold,
            "answer_margin": self.best.answer_margin,
            "clarify_threshold": min(self.clarify_threshold, self.best.answer_threshold),
        }


def fit_thresholds(results: Sequence[Ranked], *, settings: Settings, max_wrong_rate: float) -> ThresholdFit:
    """The answer threshold and margin that answer most with at most ``max_wrong_rate`` of answers wrong.

    The no-answer floor keeps 98% of right top-1 answers at least in a "您是想问" choice: a choice
    the citizen can decline costs little, a no-answer for an answerable question costs a handoff.
    """
    right = [r.scores[0] for r in results if r.gold is not None and r.keys[:1] == (r.gold,)]
    floor = round(percentile(right, 2) - 0.0005, 3) if right else settings.clarify_threshold
    rows, best = calibrate(
        results,
        max_wrong_rate=max_wrong_rate,
        clarify_threshold=floor,
        clarify_window=settings.clarify_window,
        clarify_max=settings.clarify_max,
    )
    if best is None:
        t = Thresholds.from_mapping(settings.thresholds())
    else:
        t = Thresholds(
            best.answer_threshold,
            best.answer_margin,
            min(floor, best.answer_threshold),
            settings.clarify_window,
            settings.clarify_max,
        )
    return ThresholdFit(floor, rows, best, decision_metrics(results, t))


# -- the whole fit ------------------------------------------------------------------------


HELD_OUT_METHOD = "留一法：知识库自身的相似问法，每条依次从索引中留出、作为问题检索"


@dataclass(frozen=True)
class Fit:
    """A fitted lexical weight and thresholds, with what they were measured on."""

    method: str
    n_questions: int
    n_answerable: int
    skipped_entries: int
    weights: tuple[WeightScore, ...]
    chosen: WeightScore
    thresholds: ThresholdFit
    results: list[Ranked]
    """Every question's outcome at the chosen weight."""
    evidence: tuple[Evidence, ...] = field(default=(), repr=False, compare=False)
    """Every question's scores before fusion (aligned with ``results``), to rank at other weights."""

    @property
    def held_out(self) -> bool:
        """Fitted on the knowledge base's own wordings (all answerable) rather than on labelled queries."""
        return self.method == HELD_OUT_METHOD

    def results_at(self, weight: float) -> list[Ranked]:
        """Every question's outcome had the lexical weight been ``weight``."""
        if weight == self.chosen.weight or not self.evidence:
            return self.results
        return [rank(e, weight, r.gold) for e, r in zip(self.evidence, self.results, strict=True)]

    @property
    def reliable(self) -> bool:
        return self.n_answerable >= MIN_RELIABLE

    def values(self) -> dict[str, float]:
        """The settings this fit sets: the weight, and the thresholds when some keep wrong answers low enough."""
        return {"lexical_weight": self.chosen.weight, **self.thresholds.values()}

    def calibration(self, *, by: str, current: Settings | None = None) -> Calibration:
        """The fit as a pending calibration, with its measurements, for a reviewer to apply.

        With ``current`` (the settings in effect), the same questions are also measured at those
        values, so the reviewer sees the change the fit makes.
        """
        e = self.thresholds.expected
        before: dict[str, Any] = {}
        if current is not None:
            at = self.results_at(current.lexical_weight)
            r = retrieval_metrics(at)
            d = decision_metrics(at, Thresholds.from_mapping(current.thresholds()))
            before = {
                "values": {name: getattr(current, name) for name in self.values()},
                "hit_at_1": round(r["hit_at_1"], 4),
                "mrr_at_10": round(r["mrr_at_10"], 4),
                **{k: round(d[k], 4) for k in ("answer_rate", "clarify_rate", "no_answer_rate", "wrong_answer_rate")},
            }
        return Calibration(
            values=self.values(),
            measured={
                "n_questions": self.n_questions,
                "n_answerable": self.n_answerable,
                "skipped_entries": self.skipped_entries,
                "hit_at_1": round(self.chosen.hit_at_1, 4),
                "mrr_at_10": round(self.chosen.mrr_at_10, 4),
                "weights": [[w.weight, round(w.hit_at_1, 4), round(w.mrr_at_10, 4)] for w in self.weights],
                "answer_rate": round(e["answer_rate"], 4),
                "clarify_rate": round(e["clarify_rate"], 4),
                "no_answer_rate": round(e["no_answer_rate"], 4),
                "wrong_answer_rate": round(e["wrong_answer_rate"], 4),
                "reliable": self.reliable,
                "current": before,
            },
            method=self.method,
            fitted_by=by,
            fitted_at=datetime.now().isoformat(timespec="seconds"),
        )


def fit_questions(
    questions: Sequence[tuple[Evidence, str | None]],
    *,
    settings: Settings,
    method: str,
    skipped_entries: int = 0,
    max_wrong_rate: float = 0.02,
    weights: Sequence[float] = LEXICAL_WEIGHTS,
) -> Fit:
    """Pick the lexical weight on searched questions, then the thresholds at that weight."""
    if not 0 <= max_wrong_rate <= 1:
        raise ValueError(f"max_wrong_rate must be between 0 and 1, got {max_wrong_rate}")
    scores = sweep_weights(questions, weights)
    chosen = best_weight(scores)
    results = [rank(evidence, chosen.weight, gold) for evidence, gold in questions]
    return Fit(
        method=method,
        n_questions=len(questions),
        n_answerable=sum(gold is not None for _, gold in questions),
        skipped_entries=skipped_entries,
        weights=tuple(scores),
        chosen=chosen,
        thresholds=fit_thresholds(results, settings=settings, max_wrong_rate=max_wrong_rate),
        results=results,
        evidence=tuple(evidence for evidence, _ in questions),
    )


def fit_held_out(
    kb: KnowledgeBase,
    *,
    max_wrong_rate: float = 0.02,
    weights: Sequence[float] = LEXICAL_WEIGHTS,
    progress: Progress = _no_progress,
) -> Fit:
    """Leave-one-wording-out fit of ``kb`` on its own similar questions.

    Entries without similar questions are skipped (counted in ``skipped_entries``).
    The thresholds are fitted against the configured ones (``kb.configured_settings``).

    Raises:
        ValueError: no entry has a similar question (the message says what to do instead).
    """
    wordings, skipped = kb.held_out_wordings()
    if not wordings:
        raise ValueError(
            f"知识库没有相似问法（{skipped} 个条目均只有标准问），无法用留一法拟合：请保留默认值，"
            "或用标注问题拟合（hotline calibrate --queries FILE）"
        )
    searched = progress(kb.held_out_evidence(wordings), len(wordings), "leave-one-out")
    questions = [(evidence, wording.key) for wording, evidence in searched]
    return fit_questions(
        questions,
        settings=kb.configured_settings,
        method=HELD_OUT_METHOD,
        skipped_entries=skipped,
        max_wrong_rate=max_wrong_rate,
        weights=weights,
    )


def fit_labelled(
    kb: KnowledgeBase,
    queries: Sequence[tuple[str, str | None]],
    *,
    method: str,
    max_wrong_rate: float = 0.02,
    weights: Sequence[float] = LEXICAL_WEIGHTS,
    progress: Progress = _no_progress,
) -> Fit:
    """Fit on labelled queries: (question, key of the entry that answers it, or None)."""
    texts = progress((text for text, _ in queries), len(queries), "queries")
    questions = [(kb.evidence(text), gold) for text, (_, gold) in zip(texts, queries, strict=True)]
    return fit_questions(
        questions, settings=kb.configured_settings, method=method, max_wrong_rate=max_wrong_rate, weights=weights
    )
