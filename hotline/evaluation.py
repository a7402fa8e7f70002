"""Accuracy and decision metrics over labelled queries: pure functions shared by bench and calibrate.

A query is ``{"query": ..., "gold_id": key or None}``; None marks a question the
knowledge base cannot answer, where any direct answer is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge_base.records import Decision
from knowledge_base.search.ranking import Thresholds, decide


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    gold: str | None


@dataclass(frozen=True)
class Ranked:
    """One query's outcome: entry keys best first, with their scores."""

    gold: str | None
    keys: tuple[str, ...]
    scores: tuple[float, ...]


def read_queries(path: Path, limit: int | None = None) -> list[LabelledQuery]:
    """Read a queries JSON Lines file (``query``, ``gold_id``); a bad line raises ValueError with its number."""
    out = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["query"]
                gold = row.get("gold_id")
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ValueError(f'{path}, line {number}: expected {{"query": ..., "gold_id": ...}}') from None
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}, line {number}: empty query")
            out.append(LabelledQuery(text, None if gold in (None, "") else str(gold)))
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise ValueError(f"{path}: no queries")
    return out


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
