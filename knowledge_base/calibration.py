"""``hotline calibrate``: the precision/coverage trade-off of the answer thresholds on labelled queries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from knowledge_base.bench import open_file_kb, rank_queries
from knowledge_base.embedder import Embedder
from knowledge_base.evaluation import calibrate, decision_metrics, percentile, read_queries, retrieval_metrics
from knowledge_base.ranking import Thresholds
from knowledge_base.settings import Settings


def run_calibration(
    kb_file: Path,
    queries_file: Path,
    *,
    settings: Settings,
    embedder_for: Callable[[Settings], Embedder],
    max_wrong_rate: float = 0.02,
) -> str:
    """Rank the queries once, sweep the thresholds, and describe the trade-off in words and a table."""
    queries = read_queries(queries_file)
    kb = open_file_kb(kb_file, settings, embedder_for(settings), progress=True)
    results, _ = rank_queries(kb, queries, progress=True, label="calibrate")
    metrics = retrieval_metrics(results)
    right = [r.scores[0] for r in results if r.gold is not None and r.keys[:1] == (r.gold,)]
    wrong = [r.scores[0] for r in results if r.scores and (r.gold is None or r.keys[:1] != (r.gold,))]
    unanswerable = [r.scores[0] for r in results if r.gold is None and r.scores]
    # No-answer floor: below the best score of nearly every unanswerable question would hand over too
    # much; above the weakest right answers would lose them. Take the 10th percentile of right answers.
    clarify_floor = round(percentile(right, 10), 3) if right else settings.clarify_threshold
    rows, best = calibrate(
        results,
        max_wrong_rate=max_wrong_rate,
        clarify_threshold=clarify_floor,
        clarify_window=settings.clarify_window,
        clarify_max=settings.clarify_max,
    )
    lines = [
        f"{len(results)} queries ({metrics['n_queries']} answerable), hit@1 {metrics['hit_at_1']:.3f}",
        f"best-score distribution: right top-1 p10/p50 {percentile(right, 10):.3f}/{percentile(right, 50):.3f}; "
        f"wrong top-1 p50/p90 {percentile(wrong, 50):.3f}/{percentile(wrong, 90):.3f}"
        + (
            f"; unanswerable p50/p90 {percentile(unanswerable, 50):.3f}/{percentile(unanswerable, 90):.3f}"
            if unanswerable
            else ""
        ),
        "",
        "answer_threshold  margin  answers  wrong(of answers)  clarify  no_answer",
    ]
    shown = [r for r in rows if r.answer_margin in (0.0, 0.02, 0.05)][::3]
    for r in shown:
        lines.append(
            f"{r.answer_threshold:16.3f}  {r.answer_margin:6.3f}  {r.answer_rate:7.1%}  "
            f"{r.wrong_answer_rate:7.1%} ({r.wrong_answers:3d})  {r.clarify_rate:7.1%}  {r.no_answer_rate:8.1%}"
        )
    current = decision_metrics(results, Thresholds.from_mapping(settings.thresholds()))
    lines += [
        "",
        f"current settings: answer {current['answer_rate']:.1%}, wrong {current['wrong_answer_rate']:.1%} of answers "
        f"({current['wrong_answers']} wrong), clarify {current['clarify_rate']:.1%}, "
        f"no answer {current['no_answer_rate']:.1%}",
    ]
    if best is None:
        lines.append(
            f"no threshold keeps wrong answers at or below {max_wrong_rate:.1%}: keep answering off "
            "(raise answer_threshold) and rely on clarification"
        )
    else:
        lines += [
            f"recommended (most answers with at most {max_wrong_rate:.1%} wrong), put in config.yml:",
            f"  answer_threshold: {best.answer_threshold}",
            f"  answer_margin: {best.answer_margin}",
            f"  clarify_threshold: {min(clarify_floor, best.answer_threshold)}",
            f"  -> answers {best.answer_rate:.1%} of questions, {best.wrong_answers} wrong "
            f"({best.wrong_answer_rate:.1%} of answers), clarify {best.clarify_rate:.1%}, "
            f"no answer {best.no_answer_rate:.1%}",
        ]
    return "\n".join(lines)
