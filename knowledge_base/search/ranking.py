"""Pure ranking: phrasing hits -> entry scores -> a decision. Plain data in, plain data out.

An entry's dense score is its best phrasing's cosine. The lexical score (BM25,
scaled to 0-1 by the query's best) is added with ``lexical_weight``; with the
shipped weight of 0 the ranking is the dense one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from knowledge_base.records import Decision


@dataclass(frozen=True)
class EntryScore:
    """One entry's fused score and the phrasing that earned it."""

    entry_id: int
    score: float
    dense: float
    lexical: float
    phrasing: str


def best_per_entry(hits: Iterable[tuple[int, str, float]]) -> dict[int, tuple[float, str]]:
    """(entry_id, phrasing, score) -> entry_id: (best score, its phrasing)."""
    best: dict[int, tuple[float, str]] = {}
    for entry_id, phrasing, score in hits:
        if entry_id not in best or score > best[entry_id][0]:
            best[entry_id] = (score, phrasing)
    return best


def fuse(
    dense: Mapping[int, tuple[float, str]],
    lexical: Mapping[int, tuple[float, str]],
    weight: float,
) -> list[EntryScore]:
    """Dense cosine plus ``weight`` x lexical score (already scaled to 0-1), best first; ties by entry id.

    Only entries with a dense score are ranked: lexical evidence re-scores, it never adds candidates.
    """
    scored = []
    for entry_id, (d, phrase) in dense.items():
        lex = lexical.get(entry_id, (0.0, ""))[0]
        scored.append(EntryScore(entry_id, d + weight * lex, d, lex, phrase))
    scored.sort(key=lambda s: (-s.score, s.entry_id))
    return scored


@dataclass(frozen=True)
class Thresholds:
    """The decision's knobs (see the settings of the same names)."""

    answer_threshold: float
    answer_margin: float
    clarify_threshold: float
    clarify_window: float
    clarify_max: int = 3

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Thresholds:
        return cls(
            answer_threshold=values["answer_threshold"],
            answer_margin=values["answer_margin"],
            clarify_threshold=values["clarify_threshold"],
            clarify_window=values["clarify_window"],
            clarify_max=int(values.get("clarify_max", 3)),
        )


_T = TypeVar("_T")


class Verdict(NamedTuple):
    """What :func:`decide` concluded: the decision, how many of the top entries it offers, and why."""

    decision: Decision
    offered: int
    """1 for ``answer``; for ``clarify`` the entries within ``clarify_window`` of the best and above
    ``clarify_threshold``, at most ``clarify_max``; 0 for ``no_answer``."""
    reason: str

    def offer(self, ranked: Sequence[_T]) -> Sequence[_T]:
        """The offered ones of ``ranked`` (entries, hits or keys, best first, as scored for :func:`decide`)."""
        return ranked[: self.offered]


def decide(scores: Sequence[float], t: Thresholds) -> Verdict:
    """Decide from entry scores (best first): answer, offer a choice, or hand over.

    The one rule: :meth:`KnowledgeBase.search <knowledge_base.search.kb.KnowledgeBase.search>` runs it
    on every question, and the evaluation and calibration (``hotline bench``, ``hotline calibrate``)
    run it on the same scores to measure and tune the thresholds, so both count the same candidates.

    Returns:
        The decision, how many of the top entries it offers, and the reason in words.
    """
    if not scores or scores[0] < t.clarify_threshold:
        best = f"{scores[0]:.3f}" if scores else "none"
        return Verdict(Decision.NO_ANSWER, 0, f"best score {best} is below clarify_threshold {t.clarify_threshold:.3f}")
    top = scores[0]
    second = scores[1] if len(scores) > 1 else float("-inf")
    if top >= t.answer_threshold and top - second >= t.answer_margin:
        lead = "no other candidate" if second == float("-inf") else f"leads the next by {top - second:.3f}"
        return Verdict(
            Decision.ANSWER, 1, f"best score {top:.3f} >= answer_threshold {t.answer_threshold:.3f} and {lead}"
        )
    # Scores come best first, so the ones that qualify are a prefix: the top ``len(close)`` entries.
    close = [s for s in scores[: t.clarify_max] if s >= t.clarify_threshold and top - s <= t.clarify_window]
    if top >= t.answer_threshold:
        why = f"best score {top:.3f} is high but leads the next by only {top - second:.3f} < {t.answer_margin:.3f}"
    else:
        why = f"best score {top:.3f} is between clarify_threshold {t.clarify_threshold:.3f} and answer_threshold"
    return Verdict(Decision.CLARIFY, len(close), why + f"; offering {len(close)} candidate(s)")


def reason_in_chinese(scores: Sequence[float], t: Thresholds) -> str:
    """:func:`decide`'s reason as staff read it (the admin's test pane): the same rule, in Chinese, with percentages.

    The English :attr:`Verdict.reason` stays what logs and benchmarks record; this says the same numbers.
    A score is shown as a percentage capped at 100 % (the lexical bonus can take a score past 1.0).

    Example:
        >>> t = Thresholds(answer_threshold=0.9, answer_margin=0.02, clarify_threshold=0.8, clarify_window=0.04)
        >>> reason_in_chinese([0.95, 0.90], t)
        '最高匹配度 95%，达到直接答复线 90%，且领先第二名 5 个百分点（要求至少 2 个）：直接答复'
    """

    def pct(value: float) -> str:  # floored, as the pages show scores: 94.9 % is never shown as the 95 % it missed
        return f"{math.floor(min(max(value, 0.0), 1.0) * 100 + 1e-9)}%"

    def points(value: float) -> str:
        return f"{value * 100:.1f}".removesuffix(".0")

    def line(value: float) -> str:  # a threshold to one decimal: 0.944 is 94.4 %, not 94 %
        return f"{points(value)}%"

    verdict = decide(scores, t)
    if verdict.decision is Decision.NO_ANSWER:
        if not scores:
            return "没有找到任何候选条目：无法回答，转人工或登记工单"
        return f"最高匹配度 {pct(scores[0])}，低于澄清线 {line(t.clarify_threshold)}：无法回答，转人工或登记工单"
    top = scores[0]
    second = scores[1] if len(scores) > 1 else None
    if verdict.decision is Decision.ANSWER:
        lead = (
            "且没有其他候选"
            if second is None
            else f"且领先第二名 {points(top - second)} 个百分点（要求至少 {points(t.answer_margin)} 个）"
        )
        return f"最高匹配度 {pct(top)}，达到直接答复线 {line(t.answer_threshold)}，{lead}：直接答复"
    if top >= t.answer_threshold and second is not None:
        why = (
            f"最高匹配度 {pct(top)} 达到直接答复线 {line(t.answer_threshold)}，但只领先第二名 "
            f"{points(top - second)} 个百分点（要求至少 {points(t.answer_margin)} 个）"
        )
    else:
        lines = f"澄清线 {line(t.clarify_threshold)} 和直接答复线 {line(t.answer_threshold)}"
        why = f"最高匹配度 {pct(top)}，在{lines} 之间"
    return f"{why}：请市民从 {verdict.offered} 个相近的条目中选择（您是想问……）"
