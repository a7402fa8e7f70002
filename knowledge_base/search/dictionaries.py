"""Staff-edited dictionaries: synonyms, Cantonese forms and the jieba user dictionary, applied without restart.

The package's tables in ``knowledge_base/data`` are the defaults; an edited table
is stored in the database (so every worker on every host sees the same one), and
every saved version is kept (``dictionary_versions``) so staff can see what changed
and go back to any version, the default one included (:meth:`DictionaryStore.restore`).

Staff edit a table as rows, one field per column (:data:`COLUMNS`): a synonym and
its canonical term, a Cantonese form and its Mandarin, a word with its frequency
and part of speech. :func:`table_rows` reads a table's text as rows and
:meth:`DictionaryStore.save_rows` checks the rows (every problem by row number, in
Chinese), writes them back as the table's text and saves it.
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
import re
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
COLUMNS: dict[str, tuple[str, ...]] = {
    "synonyms.tsv": ("其他叫法", "标准说法"),
    "cantonese.tsv": ("粤语写法", "普通话写法"),
    "userdict.txt": ("词语", "词频（可空）", "词性（可空）"),
}
"""The columns of each editable table as the admin shows them: a row of a synonym table is one other
name and its canonical term (a row with the canonical term alone keeps that word whole); a row of the
user dictionary is a word, its jieba frequency and part of speech (both may stay empty)."""
Row = tuple[str, ...]
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

    @property
    def rows(self) -> list[Row]:
        """The table as rows of :data:`COLUMNS`."""
        return table_rows(self.name, self.content)


@dataclass(frozen=True)
class TableVersion:
    """One saved version of a table; version 0 is the package's default."""

    name: str
    version: int
    content: str
    author: str
    created_at: str


_TAG = re.compile(r"^[a-z]+$")
_LINE = re.compile(r"line (\d+)")


def table_rows(name: str, content: str) -> list[Row]:
    """The rows of a table's text (comments and blank lines left out), each as wide as :data:`COLUMNS`."""
    width = len(COLUMNS[name])
    rows: list[Row] = []
    for line in content.replace("\r\n", "\n").split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if name == "synonyms.tsv":
            canonical, *others = [c.strip() for c in line.split("\t")]
            rows.extend([(other, canonical) for other in others if other] or [("", canonical)])
        elif name == "cantonese.tsv":
            cells = [c.strip() for c in line.split("\t")]
            rows.append(tuple((cells + [""] * width)[:width]))
        else:
            cells = line.split()
            rows.append(tuple((cells + [""] * width)[:width]))
    return rows


def _clean(rows: list[Row], width: int) -> list[tuple[int, Row]]:
    """Rows with their numbers as staff see them (1-based), cells trimmed, blank rows left out."""
    kept = []
    for number, row in enumerate(rows, start=1):
        cells = tuple(str(c).strip() for c in (*row, *[""] * width)[:width])
        if any(cells):
            kept.append((number, cells))
    return kept


def rows_text(name: str, rows: list[Row], *, header: str = "") -> tuple[str, dict[int, int]]:
    """A table's text from rows, after checking them; with which row each line of the text came from.

    Raises:
        InvalidEntry: a row is incomplete or repeats another; the message names the row, in Chinese.
    """
    columns = COLUMNS[name]
    lines: list[str] = []
    origin: dict[int, int] = {}  # line of the text (1-based, after the header) -> row number
    problems: list[str] = []
    seen: dict[str, int] = {}
    cleaned = _clean(rows, len(columns))
    for number, cells in cleaned:
        if any("\t" in c or "\n" in c for c in cells):
            problems.append(f"第 {number} 行：单元格里不能有 Tab 或换行")
    if name == "synonyms.tsv":
        groups: dict[str, list[str]] = {}
        first_row: dict[str, int] = {}
        for number, (other, canonical) in cleaned:
            if not canonical:
                problems.append(f"第 {number} 行：请填写「{other}」的标准说法")
                continue
            groups.setdefault(canonical, [])
            first_row.setdefault(canonical, number)
            if other and other != canonical:
                if other in seen:
                    problems.append(f"第 {number} 行：「{other}」已在第 {seen[other]} 行出现，同一个叫法只能属于一组")
                    continue
                seen[other] = number
                groups[canonical].append(other)
        for canonical, others in groups.items():
            origin[len(lines) + 1] = first_row[canonical]
            lines.append("\t".join([canonical, *others]))
    elif name == "cantonese.tsv":
        for number, (cantonese, mandarin) in cleaned:
            if not cantonese or not mandarin:
                problems.append(f"第 {number} 行：粤语写法和普通话写法都要填写（两列相同表示保护词）")
                continue
            if cantonese in seen:
                problems.append(f"第 {number} 行：「{cantonese}」已在第 {seen[cantonese]} 行出现")
                continue
            seen[cantonese] = number
            origin[len(lines) + 1] = number
            lines.append(f"{cantonese}\t{mandarin}")
    else:
        for number, (word, frequency, tag) in cleaned:
            if not word or " " in word:
                problems.append(f"第 {number} 行：请填写词语（词语中间不能有空格）")
                continue
            if frequency and not (frequency.isdigit() and int(frequency) > 0):
                problems.append(f"第 {number} 行：词频必须是正整数，或者留空")
                continue
            if tag and not _TAG.match(tag):
                problems.append(f"第 {number} 行：词性只能是小写英文字母（如 n、nz），或者留空")
                continue
            origin[len(lines) + 1] = number
            lines.append(" ".join(c for c in (word, frequency, tag) if c))
    if problems:
        more = f"；另有 {len(problems) - 10} 处" if len(problems) > 10 else ""
        raise InvalidEntry(name, "；".join(problems[:10]) + more)
    head = header if not header or header.endswith("\n") else header + "\n"
    return head + "\n".join(lines) + "\n", origin


def _header(content: str) -> str:
    """The comment block a table starts with (its format notes), kept when staff save rows."""
    kept = []
    for line in content.replace("\r\n", "\n").split("\n"):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        kept.append(line)
    return "\n".join(kept).rstrip("\n") + ("\n" if kept else "")


class DictionaryStore:
    """The editable tables in the database, with validation and versioning."""

    def __init__(self, db: Database) -> None:
        self.db = db
        ensure_current(db)

    def table(self, name: str) -> Table:
        if name not in EDITABLE:
            raise InvalidEntry("name", f"没有可编辑的词典“{name}”；可编辑：{'、'.join(EDITABLE.values())}")
        row = self.db.query_one("SELECT * FROM dictionaries WHERE name=?", (name,))
        if row is None:
            return Table(name, EDITABLE[name], _default(name), 0, False)
        return Table(
            name, EDITABLE[name], row["content"], int(row["version"]), True, row["updated_by"], row["updated_at"]
        )

    def versions(self, name: str) -> list[TableVersion]:
        """Every saved version of a table, newest first, ending with the package's default (version 0)."""
        self.table(name)  # refuses a name that is not editable
        rows = self.db.query(
            "SELECT version, content, author, created_at FROM dictionary_versions WHERE name=? ORDER BY version DESC",
            (name,),
        )
        saved = [TableVersion(name, int(r["version"]), r["content"], r["author"], r["created_at"]) for r in rows]
        return [*saved, TableVersion(name, 0, _default(name), "", "")]

    def save_rows(self, name: str, rows: list[Row], *, expected_version: int, author: str) -> Table:
        """Save a table edited as rows (:data:`COLUMNS`): checked row by row, then as :meth:`save` does.

        Raises:
            InvalidEntry: a row is incomplete, repeats another or is refused by the normaliser; in Chinese, by row.
            StaleVersion: someone saved this table since ``expected_version``.
        """
        content, origin = rows_text(name, rows, header=_header(self.table(name).content))
        header_lines = _header(self.table(name).content).count("\n")
        try:
            return self.save(name, content, expected_version=expected_version, author=author)
        except InvalidEntry as exc:
            found = _LINE.search(exc.message)
            if found is None:
                raise
            row = origin.get(int(found.group(1)) - header_lines)
            where = f"第 {row} 行" if row else "有一行"
            raise InvalidEntry(name, f"{where}未通过检查：与其他行冲突，或整理后为空（繁体、全角会先统一）") from None

    def restore(self, name: str, version: int, *, expected_version: int, author: str) -> Table:
        """Bring back a saved version (0: the package's default) as a new version.

        Raises:
            InvalidEntry: no such version.
            StaleVersion: someone saved this table since ``expected_version``.
        """
        found = next((v for v in self.versions(name) if v.version == version), None)
        if found is None:
            raise InvalidEntry(name, f"{EDITABLE[name]}没有第 {version} 版")
        return self.save(name, found.content, expected_version=expected_version, author=author)

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
            raise InvalidEntry(name, f"词典太大：最多 {MAX_TABLE_BYTES // 1024} KB")
        with tempfile.TemporaryDirectory(prefix="hotline-dict-") as folder:
            self.materialise(Path(folder), override={name: content})
            try:
                TextNormaliser.from_dir(Path(folder))
            except ValueError as exc:
                detail = str(exc).replace(folder + "/", "")
                raise InvalidEntry(name, f"{EDITABLE[name]}未通过检查，没有保存（{detail}）") from None
        now = datetime.now().isoformat(timespec="seconds")
        with self.db.transaction():
            row = self.db.query_one("SELECT version FROM dictionaries WHERE name=?", (name,))
            stored = int(row["version"]) if row else 0
            if stored != expected_version:
                raise StaleVersion(
                    0, expected_version, stored, f"{EDITABLE[name]}已被他人修改（现为第 {stored} 版），请刷新后重新编辑"
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
            self.db.execute(
                "INSERT INTO dictionary_versions (name, version, content, author, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, stored + 1, content, author, now),
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


def _default(name: str) -> str:
    return (DEFAULT_DATA_DIR / name).read_text(encoding="utf-8")


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
