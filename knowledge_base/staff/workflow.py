"""Editorial workflow: draft → review → publish, so citizens only ever see reviewed answers.

An edit never touches the live entry: it is a *draft* (a proposed full entry)
beside it, which an editor saves and submits and a reviewer publishes or sends
back. Publishing applies the draft to the entry with the entry's version as the
draft saw it, so a draft started before someone else's publish is refused
(:class:`~knowledge_base.errors.StaleVersion`) instead of silently undoing it.
Drafts carry their own version too: two people saving the same draft, the second
is refused and nothing is lost. Four eyes: whoever saved a draft last cannot
publish it (:class:`OwnDraft`) unless the office allows it (``allow_self_publish``).

Example:
    >>> from knowledge_base.storage.database import open_database
    >>> from knowledge_base.records import Entry
    >>> flow = Workflow(kb=None, db=open_database(":memory:"))
    >>> d = flow.save(Entry(question="怎么办居住证", answer="…"), author="wang")
    >>> (d.state, d.version)
    ('draft', 1)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from knowledge_base.errors import EntryNotFound, InvalidEntry, KnowledgeBaseError, StaleVersion
from knowledge_base.records import Entry, Status
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

STATES = ("draft", "in_review", "published", "rejected", "discarded")
STATE_NAMES = {
    "draft": "草稿",
    "in_review": "待审核",
    "published": "已发布",
    "rejected": "已退回",
    "discarded": "已放弃",
}
OPEN_STATES = ("draft", "in_review", "rejected")


Audit = Callable[[str, str, str, dict[str, Any]], None]


class OwnDraft(KnowledgeBaseError):
    """A reviewer tried to publish a draft they saved themselves, and the office wants a second person."""


class EntryWriter(Protocol):
    """What publishing writes through: the write side of :class:`~knowledge_base.search.kb.KnowledgeBase`."""

    def get(self, entry_id: int) -> Entry: ...
    def add(self, entry: Entry, *, author: str) -> Entry: ...
    def update(self, entry: Entry, *, author: str) -> Entry: ...
    def set_status(self, entry_id: int, status: Status | str, *, expected_version: int, author: str) -> Entry: ...
    def rollback(self, entry_id: int, revision_id: int, *, expected_version: int, author: str) -> Entry: ...


@dataclass(frozen=True)
class Draft:
    """A proposed version of an entry (``entry_id`` None: a new entry)."""

    id: int
    entry_id: int | None
    base_version: int
    entry: Entry
    state: str
    version: int
    author: str
    reviewer: str
    note: str
    created_at: datetime
    updated_at: datetime

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class Workflow:
    """Drafts, review and publishing over a knowledge base.

    Args:
        kb: the :class:`~knowledge_base.search.kb.KnowledgeBase` that publishing writes to.
        db: the database holding the drafts (the knowledge base's own).
        audit: called as ``audit(actor, action, target, detail)`` after every change.
    """

    def __init__(self, kb: EntryWriter, db: Database, audit: Audit | None = None) -> None:
        self.kb = kb
        self.db = db
        self._audit = audit or (lambda *args: None)
        ensure_current(db)

    def drafts(self, *, states: tuple[str, ...] = OPEN_STATES, entry_id: int | None = None) -> list[Draft]:
        marks = ",".join("?" for _ in states)
        sql, args = f"SELECT * FROM drafts WHERE state IN ({marks})", list[Any](states)
        if entry_id is not None:
            sql, args = sql + " AND entry_id=?", [*args, entry_id]
        return [_draft(r) for r in self.db.query(sql + " ORDER BY updated_at DESC, id DESC", args)]

    def draft(self, draft_id: int) -> Draft:
        row = self.db.query_one("SELECT * FROM drafts WHERE id=?", (draft_id,))
        if row is None:
            raise EntryNotFound(f"no draft {draft_id}")
        return _draft(row)

    def save(
        self,
        entry: Entry,
        *,
        author: str,
        draft_id: int | None = None,
        expected_version: int = 0,
    ) -> Draft:
        """Save a new draft, or a new version of draft ``draft_id``.

        For a draft of an existing entry, ``entry.id`` names it and ``entry.version``
        is the entry's version the editor started from.

        Raises:
            StaleVersion: the draft was saved by someone else since ``expected_version``; or, for a new
                draft of an entry, the entry changed since the editor opened it or someone else already
                has an open draft of it (two people never edit one entry apart).
            InvalidEntry: the draft is closed (published, discarded).
        """
        content = json.dumps(entry.to_dict(), ensure_ascii=False)
        now = _now()
        with self.db.transaction():
            if draft_id is None:
                if entry.id is not None:
                    self._check_entry_free(entry)
                new_id = self.db.insert(
                    "INSERT INTO drafts (entry_id, base_version, content, state, version, author, reviewer, note, "
                    "created_at, updated_at) VALUES (?, ?, ?, 'draft', 1, ?, '', '', ?, ?)",
                    (entry.id, entry.version if entry.id else 0, content, author, now, now),
                )
            else:
                current = self._open(draft_id, expected_version)
                new_id = current.id
                self.db.execute(
                    "UPDATE drafts SET content=?, state='draft', version=version+1, author=?, updated_at=? WHERE id=?",
                    (content, author, now, draft_id),
                )
        saved = self.draft(new_id)
        self._audit(author, "draft.save", _target(saved), {"draft": saved.id, "version": saved.version})
        return saved

    def open_draft_for(self, entry_id: int) -> Draft | None:
        """The open draft of an entry, if someone is editing it."""
        found = self.drafts(entry_id=entry_id)
        return found[0] if found else None

    def _check_entry_free(self, entry: Entry) -> None:
        assert entry.id is not None
        current = self.kb.get(entry.id)
        name = current.key or current.id
        if current.version != entry.version:
            raise StaleVersion(
                entry.id,
                entry.version,
                current.version,
                f"条目 {name} 在您打开后已被 {current.updated_by} 修改（您打开的是第 {entry.version} 版，"
                f"现为第 {current.version} 版）；您的修改没有保存，仍保留在表单中，请对照最新版本重新修改",
            )
        other = self.open_draft_for(entry.id)
        if other is not None:
            raise StaleVersion(
                entry.id,
                entry.version,
                current.version,
                f"条目 {name} 已有 {other.author} 的进行中草稿 {other.id}（{other.state_name}）；"
                "为免互相覆盖，请在该草稿上继续修改。您的内容没有保存，仍保留在表单中",
            )

    def submit(self, draft_id: int, *, expected_version: int, author: str) -> Draft:
        """Send a draft to the reviewers."""
        return self._move(draft_id, expected_version, "in_review", author, "", "draft.submit")

    def reject(self, draft_id: int, *, expected_version: int, reviewer: str, note: str) -> Draft:
        """Send a draft back to its editor with the reason."""
        if not note.strip():
            raise InvalidEntry("note", "退回时请写明原因，便于编辑修改")
        return self._move(draft_id, expected_version, "rejected", reviewer, note.strip()[:1000], "draft.reject")

    def discard(self, draft_id: int, *, expected_version: int, author: str) -> Draft:
        return self._move(draft_id, expected_version, "discarded", author, "", "draft.discard")

    def publish(self, draft_id: int, *, expected_version: int, reviewer: str, allow_own: bool = False) -> Entry:
        """Apply the draft to the knowledge base as a published entry.

        Args:
            allow_own: let ``reviewer`` publish a draft they saved last themselves (one-person offices).

        Raises:
            OwnDraft: ``reviewer`` saved the draft last and ``allow_own`` is False.
            StaleVersion: the draft changed since ``expected_version``, or the entry changed
                since the draft was started (open the entry again and redo the change).
            InvalidEntry: the draft has no answer, or its id is taken by another entry.
        """
        draft = self._open(draft_id, expected_version)
        if draft.author == reviewer and not allow_own:
            self._audit(reviewer, "draft.publish_own_refused", _target(draft), {"draft": draft_id})
            raise OwnDraft(
                f"不能发布自己撰写的草稿：草稿 {draft_id} 最后由您（{reviewer}）保存，需由另一位审核员审核后发布"
                "（双人审核）。如本单位只有一位审核员，可由管理员在配置中开启 allow_self_publish"
            )
        entry = draft.entry.replace(status=Status.PUBLISHED)
        if not entry.answer.strip():
            raise InvalidEntry("answer", "答案为空的条目不能发布")
        if draft.entry_id is None:
            stored = self.kb.add(entry.replace(id=None, version=0), author=reviewer)
        else:
            current = self.kb.get(draft.entry_id)
            if current.version != draft.base_version:
                raise StaleVersion(
                    current.id or 0,
                    draft.base_version,
                    current.version,
                    f"条目 {current.key or current.id} 在此草稿创建后已被 {current.updated_by} 修改"
                    f"（草稿基于第 {draft.base_version} 版，现为第 {current.version} 版）；"
                    "请打开最新版本重新修改，此草稿仍保留可供参考",
                )
            stored = self.kb.update(entry.replace(id=draft.entry_id, version=draft.base_version), author=reviewer)
        with self.db.transaction():
            self._open(draft_id, expected_version)
            self.db.execute(
                "UPDATE drafts SET state='published', entry_id=?, version=version+1, reviewer=?, updated_at=? "
                "WHERE id=?",
                (stored.id, reviewer, _now(), draft_id),
            )
        self._audit(
            reviewer, "entry.publish", stored.key or str(stored.id), {"draft": draft_id, "version": stored.version}
        )
        return stored

    def set_status(self, entry_id: int, status: Status | str, *, expected_version: int, author: str) -> Entry:
        """Archive a published entry or bring an archived one back."""
        status = Status.parse(status)
        if status not in (Status.PUBLISHED, Status.ARCHIVED):
            raise InvalidEntry("status", "这里只能归档或重新发布；内容修改请通过草稿")
        stored = self.kb.set_status(entry_id, status, expected_version=expected_version, author=author)
        self._audit(author, f"entry.{status.value}", stored.key or str(stored.id), {"version": stored.version})
        return stored

    def publications(self, entry_id: int) -> dict[int, Draft]:
        """The published drafts of an entry by the entry version each publish made: who wrote, who published.

        A publish is refused unless the entry is still at the draft's ``base_version``, and every write
        adds one to the version, so the draft's publish made version ``base_version + 1``.
        """
        rows = self.db.query("SELECT * FROM drafts WHERE entry_id=? AND state='published'", (entry_id,))
        return {int(r["base_version"]) + 1: _draft(r) for r in rows}

    def rollback(self, entry_id: int, revision_id: int, *, expected_version: int, author: str) -> Entry:
        """Restore a revision's content as a new revision (published immediately: a reviewer's act)."""
        stored = self.kb.rollback(entry_id, revision_id, expected_version=expected_version, author=author)
        self._audit(author, "entry.rollback", stored.key or str(stored.id), {"revision": revision_id})
        return stored

    def _open(self, draft_id: int, expected_version: int) -> Draft:
        draft = self.draft(draft_id)
        if not draft.is_open:
            raise InvalidEntry("draft", f"草稿 {draft_id} {draft.state_name}，不能再修改")
        if draft.version != expected_version:
            raise StaleVersion(
                draft_id,
                expected_version,
                draft.version,
                f"草稿 {draft_id} 在您打开后已被 {draft.author} 保存（您打开的是第 {expected_version} 版，"
                f"现为第 {draft.version} 版）；您的修改没有覆盖对方的内容，仍保留在表单中",
            )
        return draft

    def _move(self, draft_id: int, expected_version: int, state: str, actor: str, note: str, action: str) -> Draft:
        with self.db.transaction():
            self._open(draft_id, expected_version)
            reviewer = actor if state == "rejected" else ""
            self.db.execute(
                "UPDATE drafts SET state=?, version=version+1, note=?, reviewer=?, updated_at=? WHERE id=?",
                (state, note, reviewer, _now(), draft_id),
            )
        moved = self.draft(draft_id)
        self._audit(actor, action, _target(moved), {"draft": draft_id, "note": note})
        return moved


def _now() -> str:
    return datetime.now().isoformat(timespec="microseconds")


def _target(draft: Draft) -> str:
    return draft.entry.key or (str(draft.entry_id) if draft.entry_id else f"draft:{draft.id}")


def _draft(row: dict[str, Any]) -> Draft:
    return Draft(
        id=int(row["id"]),
        entry_id=row["entry_id"],
        base_version=int(row["base_version"]),
        entry=Entry.from_dict(json.loads(row["content"])),
        state=row["state"],
        version=int(row["version"]),
        author=row["author"],
        reviewer=row["reviewer"],
        note=row["note"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )
