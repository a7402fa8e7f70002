"""Pure ranking: phrasing hits -> entry scores -> a decision. Plain data in, plain data out.

An entry's dense score is its best phrasing's cosine. The lexical score (BM25,
scaled to 0-1 by the query's best) is added with ``lexical_weight``; with the
shipped weight of 0 the ranking is the dense one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


def decide(scores: list[float], t: Thresholds) -> tuple[Decision, int, str]:
    """Decide from entry scores (best first): answer, offer a choice, or hand over.

    Returns:
        (decision, how many of the top entries it offers, the reason in words).
    """
    if not scores or scores[0] < t.clarify_threshold:
        best = f"{scores[0]:.3f}" if scores else "none"
        return Decision.NO_ANSWER, 0, f"best score {best} is below clarify_threshold {t.clarify_threshold:.3f}"
    top = scores[0]
    second = scores[1] if len(scores) > 1 else float("-inf")
    if top >= t.answer_threshold and top - second >= t.answer_margin:
        lead = "no other candidate" if second == float("-inf") else f"leads the next by {top - second:.3f}"
        return Decision.ANSWER, 1, f"best score {top:.3f} >= answer_threshold {t.answer_threshold:.3f} and {lead}"
    close = [s for s in scores[: t.clarify_max] if s >= t.clarify_threshold and top - s <= t.clarify_window]
    if top >= t.answer_threshold:
        why = f"best score {top:.3f} is high but leads the next by only {top - second:.3f} < {t.answer_margin:.3f}"
    else:
        why = f"best score {top:.3f} is between clarify_threshold {t.clarify_threshold:.3f} and answer_threshold"
    return Decision.CLARIFY, len(close), why + f"; offering {len(close)} candidate(s)"
