"""Labelled queries from a file, and the accuracy and decision metrics shared by bench and calibrate.

A query is ``{"query": ..., "gold_id": key or None}``; None marks a question the
knowledge base cannot answer, where any direct answer is wrong. The metrics are pure
functions of :mod:`knowledge_base.search.fitting` (the admin's calibration page needs
them too, and it may not import this package); they are re-exported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from knowledge_base.search.fitting import (
    MARGINS,
    CalibrationRow,
    Ranked,
    calibrate,
    decision_metrics,
    percentile,
    retrieval_metrics,
)

__all__ = [
    "MARGINS",
    "CalibrationRow",
    "LabelledQuery",
    "Ranked",
    "calibrate",
    "decision_metrics",
    "percentile",
    "read_queries",
    "retrieval_metrics",
]


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    gold: str | None


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
