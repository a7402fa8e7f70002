"""Staff-edited dictionaries: synonyms, Cantonese forms and the jieba user dictionary, applied without restart.

The package's tables in ``knowledge_base/data`` are the defaults; an edited table
is stored in the database (so every worker on every host sees the same one).
Each worker compares the stored tables' signature with the one its normaliser
was built from (at most every few seconds) and, when they differ, builds a new
normaliser and re-embeds the knowledge base with it. The old one serves until
the new index is ready.

Example:
    >>> from knowledge_base.storage.database import open_database
    >>> store = DictionaryStore(open_database(":memory:"))
    >>> store.table("synonyms.tsv").edited
    False
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from knowledge_base.errors import InvalidEntry, StaleVersion
from knowledge_base.search.textnorm import DEFAULT_DATA_DIR, TABLE_FILES, TextNormaliser
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

log = logging.getLogger(__name__)

EDITABLE = {
    "synonyms.tsv": "同义词",
    "cantonese.tsv": "粤语口语对照",
    "userdict.txt": "分词用户词典",
}
MAX_TABLE_BYTES = 2 * 1024 * 1024
CHECK_EVERY = 2.0  # seconds between signature checks per worker


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    content: str
    version: int
    edited: bool
    updated_by: str = ""
    updated_at: str = ""


class DictionaryStore:
    """The editable tables in the database, with validation and versioning."""

    def __init__(self, db: Database) -> None:
        self.db = db
        ensure_current(db)

    def table(self, name: str) -> Table:
        if name not in EDITABLE:
            raise InvalidEntry("name", f"{name!r} is not an editable dictionary; editable: {', '.join(EDITABLE)}")
        row = self.db.query_one("SELECT * FROM dictionaries WHERE name=?", (name,))
        if row is None:
            return Table(name, EDITABLE[name], (DEFAULT_DATA_DIR / name).read_text(encoding="utf-8"), 0, False)
        return Table(
            name, EDITABLE[name], row["content"], int(row["version"]), True, row["updated_by"], row["updated_at"]
        )

    def signature(self) -> str:
        """Changes whenever any table is saved (cheap: one small query)."""
        rows = self.db.query("SELECT name, version FROM dictionaries ORDER BY name")
        return ";".join(f"{r['name']}={r['version']}" for r in rows)

    def save(self, name: str, content: str, *, expected_version: int, author: str) -> Table:
        """Validate ``content`` by building a normaliser with it, then store it.

        Raises:
            InvalidEntry: the table is too big or has a malformed line (the message names the line).
            StaleVersion: someone saved this table since ``expected_version``.
        """
        current = self.table(name)
        content = content.replace("\r\n", "\n")
        if len(content.encode("utf-8")) > MAX_TABLE_BYTES:
            raise InvalidEntry(name, f"larger than {MAX_TABLE_BYTES // 1024} KB")
        with tempfile.TemporaryDirectory(prefix="hotline-dict-") as folder:
            self.materialise(Path(folder), override={name: content})
            try:
                TextNormaliser.from_dir(Path(folder))
            except ValueError as exc:
                raise InvalidEntry(name, str(exc).replace(folder + "/", "")) from None
        now = datetime.now().isoformat(timespec="seconds")
        with self.db.transaction():
            row = self.db.query_one("SELECT version FROM dictionaries WHERE name=?", (name,))
            stored = int(row["version"]) if row else 0
            if stored != expected_version:
                raise StaleVersion(
                    0, expected_version, stored, f"词典 {name} 已被他人修改（第 {stored} 版），请刷新后重新编辑"
                )
            if row:
                self.db.execute(
                    "UPDATE dictionaries SET content=?, version=?, updated_by=?, updated_at=? WHERE name=?",
                    (content, stored + 1, author, now, name),
                )
            else:
                self.db.execute(
                    "INSERT INTO dictionaries (name, content, version, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (name, content, stored + 1, author, now),
                )
        log.info("dictionary %s saved by %s (version %d)", name, author, current.version + 1)
        return self.table(name)

    def materialise(self, folder: Path, *, override: dict[str, str] | None = None) -> Path:
        """Write every table a normaliser needs into ``folder``: edited ones from the database, others default."""
        folder.mkdir(parents=True, exist_ok=True)
        stored = {r["name"]: r["content"] for r in self.db.query("SELECT name, content FROM dictionaries")}
        stored.update(override or {})
        for name in TABLE_FILES:
            if name in stored:
                (folder / name).write_text(stored[name], encoding="utf-8")
            else:
                shutil.copyfile(DEFAULT_DATA_DIR / name, folder / name)
        return folder

    def normaliser(self) -> TextNormaliser:
        """A normaliser built from the current tables (the defaults when none was edited)."""
        if not self.signature():
            return TextNormaliser.from_dir()
        with tempfile.TemporaryDirectory(prefix="hotline-dict-") as folder:
            return TextNormaliser.from_dir(self.materialise(Path(folder)))


class Renormalisable(Protocol):
    """What the watcher needs of a knowledge base: its normaliser, and a way to swap in another."""

    @property
    def normaliser(self) -> TextNormaliser: ...
    def use_normaliser(self, normaliser: TextNormaliser) -> object: ...


class DictionaryWatcher:
    """Keeps one knowledge base's normaliser in step with the stored tables.

    Call :meth:`refresh` before searching; it checks at most every
    :data:`CHECK_EVERY` seconds and re-embeds only when a table changed.
    """

    def __init__(self, kb: Renormalisable, store: DictionaryStore) -> None:
        self.kb = kb
        self.store = store
        self._seen: str | None = None  # the stored tables' signature last compared with the normaliser
        self._checked = 0.0
        self._lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> bool:
        """Apply changed tables; True when the normaliser was replaced."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is applying them
        try:
            self._checked = now
            signature = self.store.signature()
            if signature == self._seen:
                return False
            normaliser = self.store.normaliser()
            self._seen = signature
            # The tables' content hash decides: a restarted worker already built with them re-embeds nothing.
            if normaliser.version() == self.kb.normaliser.version():
                return False
            started = time.perf_counter()
            self.kb.use_normaliser(normaliser)
            log.info("dictionaries changed (%s): index rebuilt in %.1fs", signature, time.perf_counter() - started)
            return True
        finally:
            self._lock.release()
