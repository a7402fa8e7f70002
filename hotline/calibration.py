"""``hotline calibrate``: the precision/coverage trade-off of the answer thresholds on labelled queries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hotline.bench import open_file_kb, rank_queries
from hotline.evaluation import calibrate, decision_metrics, percentile, read_queries, retrieval_metrics
from knowledge_base.search.embedder import Embedder
from knowledge_base.search.ranking import Thresholds
from knowledge_base.settings import Settings

SHOWN_MARGINS = (0.0, 0.01, 0.02, 0.03)


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
    # The no-answer floor keeps 98% of right top-1 answers at least in a "您是想问" choice: a choice
    # the citizen can decline costs little, a no-answer for an answerable question costs a handoff.
    clarify_floor = round(percentile(right, 2) - 0.0005, 3) if right else settings.clarify_threshold
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
        "answer_threshold   answers / wrong (of answers) at answer_margin "
        + "   ".join(f"{m:<13}" for m in SHOWN_MARGINS),
    ]
    by_key = {(r.answer_threshold, r.answer_margin): r for r in rows}
    thresholds = sorted({r.answer_threshold for r in rows})
    for threshold in thresholds[:: max(1, len(thresholds) // 20)]:
        cells = [by_key[(threshold, m)] for m in SHOWN_MARGINS]
        lines.append(
            f"{threshold:16.3f}   " + "   ".join(f"{c.answer_rate:5.1%} / {c.wrong_answer_rate:4.1%}" for c in cells)
        )
    current = decision_metrics(results, Thresholds.from_mapping(settings.thresholds()))
    floor_m = decision_metrics(
        results, Thresholds(9.0, 0.0, clarify_floor, settings.clarify_window, settings.clarify_max)
    )
    unanswered = sum(1 for r in results if r.gold is None and (not r.scores or r.scores[0] < clarify_floor))
    n_unanswerable = sum(1 for r in results if r.gold is None)
    lines += [
        "",
        f"clarify_threshold {clarify_floor}: {floor_m['no_answer_rate']:.1%} of all questions get no answer; "
        f"{unanswered} of {n_unanswerable} unanswerable questions do (the rest are offered a choice to decline)",
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
