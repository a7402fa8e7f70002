"""Quality checks run when an entry is saved: what an editor should look at before it goes live.

Nothing here refuses a save; it warns, with the other entry and the score, so
the editor can decide. Checks: a question (or similar question) that is a near
duplicate of another entry's; a similar question that matches another entry
better than its own; past its expiry date; no policy basis; no answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from knowledge_base.records import Entry

if TYPE_CHECKING:
    from knowledge_base.search.kb import KnowledgeBase

NEAR_DUPLICATE = 0.97  # e5 cosine: above this two questions ask the same thing in other words
MAX_CHECKED = 30  # phrasings searched per save; an entry with 200 similar questions is sampled, not stalled


@dataclass(frozen=True)
class Finding:
    """One warning: what, which phrasing, and the other entry involved (if any)."""

    kind: str
    message: str
    phrasing: str = ""
    other_key: str = ""
    other_id: int | None = None
    other_question: str = ""
    score: float | None = None


def check_entry(kb: KnowledgeBase, entry: Entry, *, today: date) -> list[Finding]:
    """Warnings for ``entry`` against the published knowledge base ``kb``."""
    findings: list[Finding] = []
    if not entry.answer.strip():
        findings.append(Finding("no_answer", "还没有答案：发布前必须填写"))
    if not entry.policy:
        findings.append(Finding("no_policy", "没有政策依据（文件名、文号或链接），市民和话务员无法核对出处"))
    if entry.expiry_date and entry.expiry_date < today:
        findings.append(Finding("expired", f"已于 {entry.expiry_date} 失效：发布后也不会答复市民，请更新日期或归档"))
    elif entry.effective_date and entry.effective_date > today:
        findings.append(Finding("not_yet", f"{entry.effective_date} 才生效，在此之前不会答复市民"))

    phrasings = list(entry.phrasings())[:MAX_CHECKED]
    own = kb.embed(phrasings)
    for i, phrasing in enumerate(phrasings):
        result = kb.search(phrasing, top_k=5)
        others = [h for h in result.hits if not _same(h.entry, entry)]
        if not others:
            continue
        best = others[0]
        if best.dense >= NEAR_DUPLICATE:
            findings.append(
                Finding(
                    "near_duplicate",
                    f"“{phrasing}”与条目 {best.entry.key or best.entry_id} 的“{best.matched_phrasing}”几乎相同"
                    f"（相似度 {best.dense:.3f}），可能重复",
                    phrasing,
                    best.entry.key,
                    best.entry_id,
                    best.entry.question,
                    best.dense,
                )
            )
        elif i > 0 and len(phrasings) > 1:
            sims = own @ own[i]
            own_best = float(np.max(np.delete(sims, i)))
            if best.dense > own_best:
                findings.append(
                    Finding(
                        "belongs_elsewhere",
                        f"相似问法“{phrasing}”更接近条目 {best.entry.key or best.entry_id}（{best.entry.question}，"
                        f"{best.dense:.3f}）而不是本条（{own_best:.3f}），可能会把市民引到别的答案",
                        phrasing,
                        best.entry.key,
                        best.entry_id,
                        best.entry.question,
                        best.dense,
                    )
                )
    return findings


def _same(found: Entry, entry: Entry) -> bool:
    return (entry.id is not None and found.id == entry.id) or (bool(entry.key) and found.key == entry.key)
