"""Where entries live: the :class:`Store` interface and its SQL implementation (SQLite or PostgreSQL).

The store is the source of truth. Every write is one transaction that bumps the
KB-wide version counter and records a full revision (before and after), so any
entry can be diffed and rolled back, and every worker can tell which entries
changed since the version its index was built at.

Example:
    >>> store = SQLStore(":memory:")
    >>> e = store.add(Entry(question="社保怎么查？", answer="登录粤省事查询。"), author="editor1")
    >>> (e.key, e.version, store.kb_version())
    ('KB-000001', 1, 1)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from knowledge_base.errors import EntryNotFound, InvalidEntry, StaleVersion
from knowledge_base.records import Entry, Revision, Status
from knowledge_base.storage.database import Database, adopt
from knowledge_base.storage.migrate import ensure_current


@dataclass(frozen=True)
class ImportSummary:
    """What an import changed: counts, and the KB version it produced."""

    added: int
    updated: int
    unchanged: int
    kb_version: int


class Store(Protocol):
    """What the knowledge base needs from a database."""

    def kb_version(self) -> int: ...
    def get(self, entry_id: int) -> Entry: ...
    def get_by_key(self, key: str) -> Entry: ...
    def get_many(self, entry_ids: Iterable[int]) -> dict[int, Entry]: ...
    def entries(self, *, statuses: Iterable[Status] | None = None) -> list[Entry]: ...
    def count(self) -> int: ...
    def add(self, entry: Entry, *, author: str) -> Entry: ...
    def update(self, entry: Entry, *, author: str) -> Entry: ...
    def delete(self, entry_id: int, *, expected_version: int, author: str) -> None: ...
    def import_entries(self, entries: Sequence[Entry], *, author: str) -> ImportSummary: ...
    def revisions(self, entry_id: int) -> list[Revision]: ...
    def rollback(self, entry_id: int, revision_id: int, *, expected_version: int, author: str) -> Entry: ...
    def changed_since(self, kb_version: int) -> tuple[int, list[int]]: ...
    def close(self) -> None: ...


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _dump(entry: Entry | None) -> str | None:
    return None if entry is None else json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True)


class SQLStore:
    """The store on a :class:`~knowledge_base.storage.database.Database`: SQLite by default, or PostgreSQL.

    Every write runs in the database's exclusive write transaction, so the KB-wide version
    counter goes up by exactly one per write and concurrent saves of one entry have one winner.

    Args:
        database: an open database (shared with other stores; the caller closes it), or a URL or path
            for :func:`~knowledge_base.storage.database.open_database` (the store owns and closes it):
            a SQLite file (created with its folder), ``":memory:"`` or ``postgresql://...``.
    """

    def __init__(self, database: Database | str | Path) -> None:
        self.db, self._owns_db = adopt(database)
        self.path = self.db.url
        ensure_current(self.db)

    def close(self) -> None:
        """Close the database if the store opened it; a shared one stays open for its other users."""
        if self._owns_db:
            self.db.close()

    @contextmanager
    def _write(self) -> Iterator[int]:
        """One write transaction; yields the new KB version it commits."""
        with self.db.transaction():
            version = self.kb_version() + 1
            self.db.execute("UPDATE meta SET value=? WHERE name='kb_version'", (str(version),))
            yield version

    # -- reads ---------------------------------------------------------------

    def kb_version(self) -> int:
        row = self.db.query_one("SELECT value FROM meta WHERE name='kb_version'")
        assert row is not None, "the schema seeds kb_version"
        return int(row["value"])

    @staticmethod
    def _row_entry(row: dict[str, Any]) -> Entry:
        data = json.loads(row["content"])
        data.update(id=row["key"], version=row["version"], updated_by=row["updated_by"], updated_at=row["updated_at"])
        return Entry.from_dict(data).replace(id=row["id"])

    def get(self, entry_id: int) -> Entry:
        row = self.db.query_one("SELECT * FROM entries WHERE id=?", (entry_id,))
        if row is None:
            raise EntryNotFound(f"no entry with id {entry_id}")
        return self._row_entry(row)

    def get_by_key(self, key: str) -> Entry:
        row = self.db.query_one("SELECT * FROM entries WHERE key=?", (key,))
        if row is None:
            raise EntryNotFound(f"no entry with key {key!r}")
        return self._row_entry(row)

    def get_many(self, entry_ids: Iterable[int]) -> dict[int, Entry]:
        ids = list(entry_ids)
        found: dict[int, Entry] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT * FROM entries WHERE id IN ({marks})", chunk):
                found[row["id"]] = self._row_entry(row)
        return found

    def entries(self, *, statuses: Iterable[Status] | None = None) -> list[Entry]:
        if statuses is None:
            rows = self.db.query("SELECT * FROM entries ORDER BY id")
        else:
            wanted = [Status.parse(s).value for s in statuses]
            marks = ",".join("?" * len(wanted)) or "NULL"
            rows = self.db.query(f"SELECT * FROM entries WHERE status IN ({marks}) ORDER BY id", wanted)
        return [self._row_entry(r) for r in rows]

    def count(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM entries")
        return int(row["n"]) if row else 0

    def changed_since(self, kb_version: int) -> tuple[int, list[int]]:
        """The current KB version and the ids of entries changed (or deleted) after ``kb_version``.

        Read in one snapshot so the list and the version agree.
        """
        with self.db.snapshot():
            current = self.kb_version()
            rows = self.db.query(
                "SELECT DISTINCT entry_id FROM revisions WHERE kb_version > ? ORDER BY entry_id", (kb_version,)
            )
        return current, [r["entry_id"] for r in rows]

    def revisions(self, entry_id: int) -> list[Revision]:
        rows = self.db.query("SELECT * FROM revisions WHERE entry_id=? ORDER BY id", (entry_id,))
        if not rows:
            raise EntryNotFound(f"no entry with id {entry_id}")
        return [self._row_revision(r) for r in rows]

    def revision(self, revision_id: int) -> Revision:
        row = self.db.query_one("SELECT * FROM revisions WHERE id=?", (revision_id,))
        if row is None:
            raise EntryNotFound(f"no revision with id {revision_id}")
        return self._row_revision(row)

    @staticmethod
    def _row_revision(row: dict[str, Any]) -> Revision:
        def load(text: str | None) -> Entry | None:
            return None if text is None else Entry.from_dict(json.loads(text)).replace(id=row["entry_id"])

        return Revision(
            id=row["id"],
            entry_id=row["entry_id"],
            kb_version=row["kb_version"],
            author=row["author"],
            created_at=datetime.fromisoformat(row["created_at"]),
            action=row["action"],
            before=load(row["before"]),
            after=load(row["after"]),
        )

    # -- writes --------------------------------------------------------------

    def _insert(self, version: int, entry: Entry, author: str, action: str) -> Entry:
        now = _now()
        new_id = self.db.insert(
            "INSERT INTO entries (key, status, content, version, updated_by, updated_at, kb_version) "
            "VALUES (?, ?, ?, 1, ?, ?, ?)",
            (
                entry.key or f"pending-{version}-{id(entry)}",
                entry.status.value,
                json.dumps(entry.content(), ensure_ascii=False),
                author,
                now.isoformat(),
                version,
            ),
        )
        key = entry.key or f"KB-{new_id:06d}"
        if not entry.key:
            self.db.execute("UPDATE entries SET key=? WHERE id=?", (key, new_id))
        stored = entry.replace(id=new_id, key=key, version=1, updated_by=author, updated_at=now)
        self._record(version, new_id, author, now, action, None, stored)
        return stored

    def _replace(self, version: int, current: Entry, new: Entry, author: str, action: str) -> Entry:
        assert current.id is not None
        now = _now()
        stored = new.replace(id=current.id, version=current.version + 1, updated_by=author, updated_at=now)
        changed = self.db.execute(
            "UPDATE entries SET key=?, status=?, content=?, version=?, updated_by=?, updated_at=?, kb_version=? "
            "WHERE id=? AND version=?",
            (
                stored.key,
                stored.status.value,
                json.dumps(stored.content(), ensure_ascii=False),
                stored.version,
                author,
                now.isoformat(),
                version,
                current.id,
                current.version,
            ),
        )
        if changed != 1:  # someone else wrote between our read and this write
            raise StaleVersion(current.id, current.version, self.get(current.id).version)
        self._record(version, current.id, author, now, action, current, stored)
        return stored

    def _record(
        self,
        version: int,
        entry_id: int,
        author: str,
        when: datetime,
        action: str,
        before: Entry | None,
        after: Entry | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO revisions (entry_id, kb_version, author, created_at, action, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry_id, version, author, when.isoformat(), action, _dump(before), _dump(after)),
        )

    def mark_restored(self, *, replaced_ids: Iterable[int], replaced_version: int) -> int:
        """After a restore over a database that workers were serving: a KB version past both histories.

        Call it inside the restore's transaction. Every entry now present, and every one the restore
        removed, gets a ``restore`` revision at that version, so a running worker (whose index is at
        most ``replaced_version``) re-reads all of them instead of trusting an index of other data.

        Returns:
            The new KB version.
        """
        version = max(self.kb_version(), replaced_version) + 1
        now = _now()
        current = {e.id: e for e in self.entries() if e.id is not None}
        for entry_id in sorted(set(current) | set(replaced_ids)):
            self._record(version, entry_id, "restore", now, "restore", None, current.get(entry_id))
        self.db.execute("UPDATE entries SET kb_version=?", (version,))
        self.db.execute("UPDATE meta SET value=? WHERE name='kb_version'", (str(version),))
        return version

    @staticmethod
    def _check_author(author: str) -> str:
        author = (author or "").strip()
        if not author or len(author) > 100:
            raise InvalidEntry("author", "every change needs its author (1-100 characters)")
        return author

    def _check_key_free(self, key: str, own_id: int | None) -> None:
        row = self.db.query_one("SELECT id FROM entries WHERE key=?", (key,))
        if row is not None and row["id"] != own_id:
            raise InvalidEntry("id", f"the id {key!r} is already used by entry {row['id']}")

    def add(self, entry: Entry, *, author: str) -> Entry:
        """Store a new entry; the store assigns its id (and a key if it has none)."""
        author = self._check_author(author)
        with self._write() as version:
            if entry.key:
                self._check_key_free(entry.key, None)
            return self._insert(version, entry, author, "create")

    def update(self, entry: Entry, *, author: str) -> Entry:
        """Save a changed entry. ``entry.version`` must be the version it was loaded at.

        Raises:
            StaleVersion: someone saved the entry since; nothing was written.
        """
        author = self._check_author(author)
        if entry.id is None:
            raise InvalidEntry("id", "update needs a stored entry (id is None); use add")
        with self._write() as version:
            current = self.get(entry.id)
            if current.version != entry.version:
                raise StaleVersion(entry.id, entry.version, current.version)
            new = entry if entry.key else entry.replace(key=current.key)
            self._check_key_free(new.key, entry.id)
            return self._replace(version, current, new, author, "update")

    def delete(self, entry_id: int, *, expected_version: int, author: str) -> None:
        """Delete an entry for good (archive it instead to keep it out of answers but on record)."""
        author = self._check_author(author)
        with self._write() as version:
            current = self.get(entry_id)
            if current.version != expected_version:
                raise StaleVersion(entry_id, expected_version, current.version)
            self.db.execute("DELETE FROM entries WHERE id=?", (entry_id,))
            self._record(version, entry_id, author, _now(), "delete", current, None)

    def rollback(self, entry_id: int, revision_id: int, *, expected_version: int, author: str) -> Entry:
        """Bring an entry back to what revision ``revision_id`` saved; the rollback is itself a new revision."""
        author = self._check_author(author)
        target = self.revision(revision_id)
        if target.entry_id != entry_id:
            raise InvalidEntry("revision", f"revision {revision_id} belongs to entry {target.entry_id}, not {entry_id}")
        if target.after is None:
            raise InvalidEntry("revision", f"revision {revision_id} is a deletion; pick a revision that saved content")
        with self._write() as version:
            current = self.get(entry_id)
            if current.version != expected_version:
                raise StaleVersion(entry_id, expected_version, current.version)
            self._check_key_free(target.after.key, entry_id)
            return self._replace(version, current, target.after, author, f"rollback to revision {revision_id}")

    def import_entries(self, entries: Sequence[Entry], *, author: str) -> ImportSummary:
        """Add or update (matched by key) many entries in ONE transaction: all are written or none."""
        author = self._check_author(author)
        keys = [e.key for e in entries if e.key]
        if len(keys) != len(set(keys)):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            raise InvalidEntry("id", f"duplicate ids in the import: {dupes[:10]}")
        added = updated = unchanged = 0
        with self._write() as version:
            for entry in entries:
                row = self.db.query_one("SELECT * FROM entries WHERE key=?", (entry.key,)) if entry.key else None
                if row is None:
                    self._insert(version, entry, author, "import")
                    added += 1
                    continue
                current = self._row_entry(row)
                if current.content() == entry.content():
                    unchanged += 1
                    continue
                self._replace(version, current, entry.replace(id=current.id, version=current.version), author, "import")
                updated += 1
        return ImportSummary(added=added, updated=updated, unchanged=unchanged, kb_version=version)
