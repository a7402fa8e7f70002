"""Side-by-side differences of two versions of an entry, field by field, characters marked.

Chinese has no spaces between words, so text fields are compared character by
character; lists (similar questions, regions, tags) item by item.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from markupsafe import Markup, escape

from knowledge_base.fields import FIELDS
from knowledge_base.records import Entry

# The curated fields with the labels of the edit form and the export (not the key or the store's own fields).
FIELD_LABELS = {f.name: f.label for f in FIELDS if f.imported and f.name != "id"}


@dataclass(frozen=True)
class FieldDiff:
    label: str
    before: Markup
    after: Markup
    changed: bool


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _marked(before: str, after: str) -> tuple[Markup, Markup]:
    """Both texts, escaped, with deleted characters marked on the left and inserted ones on the right."""
    left, right = [], []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        old, new = escape(before[a0:a1]), escape(after[b0:b1])
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if a1 > a0:
            left.append(Markup('<del class="diff-del">%s</del>') % old)
        if b1 > b0:
            right.append(Markup('<ins class="diff-add">%s</ins>') % new)
    return Markup("").join(left), Markup("").join(right)


def entry_diff(before: Entry | None, after: Entry | None) -> list[FieldDiff]:
    """One row per curated field; ``None`` on a side means the entry did not exist (created / deleted)."""
    old = before.content() if before else {}
    new = after.content() if after else {}
    rows = []
    for name, label in FIELD_LABELS.items():
        a, b = _text(old.get(name)), _text(new.get(name))
        left, right = _marked(a, b) if a != b else (escape(a), escape(b))
        rows.append(FieldDiff(label, left, right, a != b))
    return rows
