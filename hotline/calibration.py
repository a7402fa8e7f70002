"""``hotline calibrate``: fit the lexical weight and the thresholds of one knowledge base, and report the fit.

The fit itself is :mod:`knowledge_base.search.fitting` (the admin runs it too); this
module reads the inputs, shows progress and puts the fit into words and a table.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from hotline.evaluation import LabelledQuery, decision_metrics, percentile
from knowledge_base.search.calibration import SOURCE_NAMES, effective_settings
from knowledge_base.search.fitting import (
    MARGINS,
    MIN_RELIABLE,
    Fit,
    fit_held_out,
    fit_labelled,
)
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.ranking import Thresholds
from knowledge_base.settings import Settings

SHOWN_MARGINS = tuple(m for m in MARGINS if m in (0.0, 0.01, 0.02, 0.03))


def tqdm_progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    """A progress bar on stderr (stdout keeps the report)."""
    from tqdm import tqdm

    bar: Iterable[Any] = tqdm(items, total=total, desc=label, unit="q", file=sys.stderr)
    return bar


def run_calibration(
    kb: KnowledgeBase,
    queries: list[LabelledQuery] | None = None,
    *,
    queries_name: str = "",
    max_wrong_rate: float = 0.02,
    progress: bool = False,
) -> Fit:
    """Fit ``kb`` on labelled ``queries``, or leave-one-wording-out on its own similar questions when None.

    Raises:
        ValueError: nothing to fit on (no similar questions, no queries).
    """
    wrap = tqdm_progress if progress else (lambda items, total, label: items)
    if queries is None:
        return fit_held_out(kb, max_wrong_rate=max_wrong_rate, progress=wrap)
    return fit_labelled(
        kb,
        [(q.query, q.gold) for q in queries],
        method=f"标注问题：{queries_name}" if queries_name else "标注问题",
        max_wrong_rate=max_wrong_rate,
        progress=wrap,
    )


def describe(fit: Fit, kb: KnowledgeBase, *, max_wrong_rate: float = 0.02) -> str:
    """The fit in words and tables: per-weight accuracy, the threshold trade-off, chosen values, expected rates."""
    configured = kb.configured_settings
    held_out = fit.held_out
    lines = [
        f"method: {fit.method}",
        (
            f"{fit.n_questions} held-out wordings of {fit.n_questions and len({r.gold for r in fit.results})} "
            f"entries; {fit.skipped_entries} entries without similar questions skipped"
            if held_out
            else f"{fit.n_questions} queries ({fit.n_answerable} answerable)"
        ),
    ]
    if not fit.reliable:
        lines.append(
            f"WARNING: only {fit.n_answerable} answerable questions (fewer than {MIN_RELIABLE}): the fit is "
            "unreliable; keep the defaults of config.yml"
        )
    lines += ["", "lexical_weight   hit@1   MRR@10"]
    for w in fit.weights:
        mark = "  <- chosen" if w.weight == fit.chosen.weight else ""
        mark += "  (config)" if w.weight == configured.lexical_weight else ""
        lines.append(f"{w.weight:14.3f}   {w.hit_at_1:.3f}   {w.mrr_at_10:.3f}{mark}")
    results = fit.results
    right = [r.scores[0] for r in results if r.gold is not None and r.keys[:1] == (r.gold,)]
    wrong = [r.scores[0] for r in results if r.scores and (r.gold is None or r.keys[:1] != (r.gold,))]
    unanswerable = [r.scores[0] for r in results if r.gold is None and r.scores]
    lines += [
        "",
        f"at lexical_weight {fit.chosen.weight}: best-score distribution: right top-1 p10/p50 "
        f"{percentile(right, 10):.3f}/{percentile(right, 50):.3f}; "
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
    rows = fit.thresholds.rows
    by_key = {(r.answer_threshold, r.answer_margin): r for r in rows}
    thresholds = sorted({r.answer_threshold for r in rows})
    for threshold in thresholds[:: max(1, len(thresholds) // 20)]:
        cells = [by_key[(threshold, m)] for m in SHOWN_MARGINS]
        lines.append(
            f"{threshold:16.3f}   " + "   ".join(f"{c.answer_rate:5.1%} / {c.wrong_answer_rate:4.1%}" for c in cells)
        )
    floor = fit.thresholds.clarify_threshold
    at_config = fit.results_at(configured.lexical_weight)
    current = decision_metrics(at_config, Thresholds.from_mapping(configured.thresholds()))
    floor_m = decision_metrics(results, Thresholds(9.0, 0.0, floor, configured.clarify_window, configured.clarify_max))
    lines += [
        "",
        f"clarify_threshold {floor}: {floor_m['no_answer_rate']:.1%} of all questions get no answer "
        "(98% of right top-1 entries are at least offered in a choice)",
        f"config.yml / environment now: lexical_weight {configured.lexical_weight}, answer "
        f"{current['answer_rate']:.1%}, wrong {current['wrong_answer_rate']:.1%} of answers "
        f"({current['wrong_answers']} wrong), clarify {current['clarify_rate']:.1%}, "
        f"no answer {current['no_answer_rate']:.1%}",
    ]
    best = fit.thresholds.best
    e = fit.thresholds.expected
    if best is None:
        lines += [
            f"no threshold keeps wrong answers at or below {max_wrong_rate:.1%}: the fit sets only lexical_weight; "
            "keep answering off (raise answer_threshold) and rely on clarification",
            f"fitted: lexical_weight {fit.chosen.weight}",
        ]
    else:
        lines += [
            f"fitted (best hit@1, then most answers with at most {max_wrong_rate:.1%} wrong):",
            *(f"  {name}: {value}" for name, value in fit.values().items()),
            f"  -> hit@1 {fit.chosen.hit_at_1:.3f}, MRR@10 {fit.chosen.mrr_at_10:.3f}; answers "
            f"{e['answer_rate']:.1%} of questions, {int(e['wrong_answers'])} wrong ({e['wrong_answer_rate']:.1%} of "
            f"answers), clarify {e['clarify_rate']:.1%}, no answer {e['no_answer_rate']:.1%}",
        ]
        if held_out:
            lines.append(
                "  note: held-out wordings are all answerable, so answer_threshold only guards against confusing "
                "entries; check it with questions the knowledge base cannot answer before applying"
            )
    return "\n".join(lines)


def settings_in_effect(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """The settings searches use, with the source of each tuned one (for ``hotline config``).

    Reads the applied calibration of the configured database when there is one to read; a
    SQLite file that does not exist yet is not created, and an unusable database leaves config's values.
    """
    applied = None
    if settings.database_url.startswith(("postgresql://", "postgres://")) or settings.sqlite_path.is_file():
        from knowledge_base.errors import KnowledgeBaseError
        from knowledge_base.factory import open_database
        from knowledge_base.search.calibration import CalibrationStore

        try:
            applied = CalibrationStore(open_database(settings)).applied()
        except KnowledgeBaseError:
            applied = None
    effective, sources = effective_settings(settings, applied)
    return effective, {name: SOURCE_NAMES[source] for name, source in sources.items()}
