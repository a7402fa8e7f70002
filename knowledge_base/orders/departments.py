"""The responsibility list (职责清单): which department handles what, and which one a work order should go to.

:class:`DepartmentList` keeps the list in table ``departments`` (staff add, edit and deactivate rows in the
admin, or import a whole list from Excel or CSV with the Chinese headers 部门, 职责, 关键词, 区域).
:class:`DepartmentMatcher` suggests the department for a new order with the knowledge base's own embedder:
each duty clause is embedded once (again whenever the list changes; it is small), the order's text is
compared by cosine, and keyword hits and a matching region add to the score. The reason it gives is for the
dispatcher, who confirms or changes the suggestion.

Example:
    >>> from knowledge_base.search.embedder import FakeEmbedder
    >>> departments = DepartmentList(":memory:")
    >>> _ = departments.add("生态环境局", "噪音污染投诉；工业废气排放", "噪音 废气", actor="admin")
    >>> DepartmentMatcher(departments, FakeEmbedder(), floor=0.1).suggest("楼下工地夜间噪音", "")[0]
    '生态环境局'
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from knowledge_base.errors import EntryNotFound, ImportRejected, InvalidEntry
from knowledge_base.orders.book import clean_text
from knowledge_base.search.embedder import Embedder
from knowledge_base.storage.database import Database, adopt
from knowledge_base.storage.migrate import ensure_current

# The entry importer's checks of a file (size, encoding, a real workbook) and its problem list, reused so that
# both imports refuse a bad file in the same words; only the columns differ.
from knowledge_base.transfer import MAX_FILE_BYTES, Problems, check_workbook_file, csv_cells, decode_text, unquote

log = logging.getLogger(__name__)

MAX_NAME = 60
MAX_DUTIES = 2000
MAX_KEYWORDS = 40
MAX_REGION = 40
MAX_DEPARTMENTS = 2000
COLUMNS = {"name": "部门", "duties": "职责", "keywords": "关键词", "region": "区域"}
"""The import file's columns by their Chinese headers (the first two are required)."""
_HEADERS = {
    "部门": "name", "部门名称": "name", "单位": "name", "承办单位": "name", "name": "name",
    "职责": "duties", "职责范围": "duties", "主要职责": "duties", "duties": "duties",
    "关键词": "keywords", "关键字": "keywords", "keywords": "keywords",
    "区域": "region", "地区": "region", "辖区": "region", "region": "region",
}  # fmt: skip
_SPLIT_KEYWORDS = re.compile(r"[\s,，、;；/|]+")
_SPLIT_DUTIES = re.compile(r"[；;。\n]+")


def _clean(value: object, *, column: str, limit: int, required: bool = False) -> str:
    text = "" if value is None else str(value)
    return clean_text(text, limit=limit, field=column, label=COLUMNS[column], required=required)


def split_keywords(value: object) -> tuple[str, ...]:
    """``"噪音，施工、夜间 噪音"`` → ``("噪音", "施工", "夜间")``: split on spaces and Chinese or Latin separators."""
    seen = dict.fromkeys(k for k in _SPLIT_KEYWORDS.split("" if value is None else str(value)) if k)
    return tuple(seen)


@dataclass(frozen=True)
class Department:
    """One row of the responsibility list; checks itself, so a bad row never reaches the table."""

    name: str
    duties: str
    keywords: tuple[str, ...] = ()
    region: str = ""
    """Empty: the whole city; else the district or town the department serves (区、镇、街道)."""
    active: bool = True
    id: int | None = None
    updated_at: str = ""
    updated_by: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _clean(self.name, column="name", limit=MAX_NAME, required=True))
        object.__setattr__(self, "duties", _clean(self.duties, column="duties", limit=MAX_DUTIES, required=True))
        object.__setattr__(self, "region", _clean(self.region, column="region", limit=MAX_REGION))
        keywords = split_keywords(" ".join(self.keywords))
        if len(keywords) > MAX_KEYWORDS:
            raise InvalidEntry("keywords", f"「关键词」最多 {MAX_KEYWORDS} 个，现在有 {len(keywords)} 个")
        if any(len(k) > 20 for k in keywords):
            raise InvalidEntry("keywords", "「关键词」每个最多 20 个字")
        object.__setattr__(self, "keywords", keywords)

    @property
    def clauses(self) -> tuple[str, ...]:
        """The duties one by one (split at ；。 and line breaks), as the matcher compares and quotes them."""
        return tuple(c.strip(" ，,、") for c in _SPLIT_DUTIES.split(self.duties) if c.strip(" ，,、")) or (self.duties,)

    @property
    def region_name(self) -> str:
        return self.region or "全市"


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int


class DepartmentList:
    """The responsibility list in the database: read, add, edit, deactivate, import (one transaction each).

    Args:
        database: an open database (shared; the caller closes it), or a URL or path (owned and closed here).
    """

    def __init__(self, database: Database | str | Path) -> None:
        self.db, self._owns_db = adopt(database)
        ensure_current(self.db)

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def all(self, *, active_only: bool = False) -> list[Department]:
        """Every department by name (active ones only when asked)."""
        sql = "SELECT * FROM departments" + (" WHERE active=1" if active_only else "")
        return [_department(r) for r in self.db.query(sql + " ORDER BY name")]

    def names(self) -> list[str]:
        """The active departments' names, for the dispatcher's select box."""
        return [d.name for d in self.all(active_only=True)]

    def get(self, department_id: int) -> Department:
        """Raises: EntryNotFound: no such row."""
        row = self.db.query_one("SELECT * FROM departments WHERE id=?", (department_id,))
        if row is None:
            raise EntryNotFound(f"职责清单里没有编号 {department_id}")
        return _department(row)

    def fingerprint(self) -> str:
        """Changes whenever any row does: the matcher embeds the list again when it sees a new one."""
        rows = self.db.query("SELECT name, duties, keywords, region, active FROM departments ORDER BY id")
        digest = hashlib.sha256(repr([tuple(r.values()) for r in rows]).encode())
        return digest.hexdigest()

    def add(
        self, name: str, duties: str, keywords: str | Iterable[str] = "", region: str = "", *, actor: str
    ) -> Department:
        """A new active department.

        Raises:
            InvalidEntry: a bad field, or the name is already on the list.
        """
        department = Department(name, duties, _keywords(keywords), region)
        with self.db.transaction():
            if self.db.query_one("SELECT 1 AS ok FROM departments WHERE name=?", (department.name,)):
                raise InvalidEntry("name", f"职责清单里已经有“{department.name}”")
            new_id = self._insert(department, actor)
        return self.get(new_id)

    def edit(
        self,
        department_id: int,
        *,
        name: str,
        duties: str,
        keywords: str | Iterable[str] = "",
        region: str = "",
        active: bool = True,
        actor: str,
    ) -> Department:
        """Change a row (a new name too; orders already assigned keep the name they were given).

        Raises:
            EntryNotFound: no such row.
            InvalidEntry: a bad field, or another row has the new name.
        """
        department = Department(name, duties, _keywords(keywords), region, active)
        with self.db.transaction():
            self.get(department_id)
            other = self.db.query_one("SELECT id FROM departments WHERE name=?", (department.name,))
            if other is not None and other["id"] != department_id:
                raise InvalidEntry("name", f"职责清单里已经有“{department.name}”")
            self._update(department_id, department, actor)
        return self.get(department_id)

    def set_active(self, department_id: int, active: bool, *, actor: str) -> Department:
        """Deactivate (no new orders go to it; its history stays) or activate again."""
        with self.db.transaction():
            self.get(department_id)
            self.db.execute(
                "UPDATE departments SET active=?, updated_at=?, updated_by=? WHERE id=?",
                (int(active), _now(), actor[:60], department_id),
            )
        return self.get(department_id)

    def import_departments(self, departments: Iterable[Department], *, actor: str) -> ImportSummary:
        """Add the new names and update the known ones (made active again), all in one transaction."""
        added = updated = 0
        with self.db.transaction():
            for department in departments:
                row = self.db.query_one("SELECT id FROM departments WHERE name=?", (department.name,))
                if row is None:
                    self._insert(department, actor)
                    added += 1
                else:
                    self._update(row["id"], department, actor)
                    updated += 1
        return ImportSummary(added, updated)

    def _insert(self, department: Department, actor: str) -> int:
        return self.db.insert(
            "INSERT INTO departments (name, duties, keywords, region, active, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                department.name,
                department.duties,
                " ".join(department.keywords),
                department.region,
                int(department.active),
                _now(),
                actor[:60],
            ),
        )

    def _update(self, department_id: int, department: Department, actor: str) -> None:
        self.db.execute(
            "UPDATE departments SET name=?, duties=?, keywords=?, region=?, active=?, updated_at=?, updated_by=? "
            "WHERE id=?",
            (
                department.name,
                department.duties,
                " ".join(department.keywords),
                department.region,
                int(department.active),
                _now(),
                actor[:60],
                department_id,
            ),
        )


# -- import files -------------------------------------------------------------------


def read_departments(path: Path, *, name: str | None = None) -> list[Department]:
    """Every row of a responsibility-list file (``.xlsx`` or ``.csv``, UTF-8 or GBK-free), checked as a whole.

    Args:
        name: the file name the problems report when ``path`` is an upload's temporary copy.

    Raises:
        ImportRejected: any bad row (each problem names the file, row and column), a duplicated name, an
            unreadable or empty file; nothing is returned then.
    """
    path = Path(path)
    problems = Problems(name or path.name)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        problems.add(None, None, "职责清单只能从 Excel（.xlsx）或 CSV（.csv）文件导入")
        raise problems.rejected()
    if path.stat().st_size > MAX_FILE_BYTES:
        problems.add(None, None, "文件太大")
        raise problems.rejected()
    rows: Iterator[tuple[int, list[object]]]
    if suffix == ".xlsx":
        if not check_workbook_file(path, problems):
            raise problems.rejected()
        rows = _xlsx_cells(path, problems)
    else:
        text = decode_text(path.read_bytes(), "utf-8", problems)
        if text is None:
            raise problems.rejected()
        rows = _csv_cells(text, problems)
    departments: list[Department] = []
    header: dict[int, str] | None = None
    seen: dict[str, int] = {}
    for row_no, cells in rows:
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        if header is None:
            header = _header(cells, row_no, problems)
            if header is None:
                break
            continue
        values = {column: cells[i] if i < len(cells) else None for i, column in header.items()}
        try:
            department = Department(
                values.get("name"),  # type: ignore[arg-type]  # Department checks and converts every cell
                values.get("duties"),  # type: ignore[arg-type]
                split_keywords(values.get("keywords")),
                values.get("region"),  # type: ignore[arg-type]
            )
        except InvalidEntry as exc:
            problems.add(row_no, COLUMNS.get(exc.field, exc.field), exc.message)
            continue
        if department.name in seen:
            problems.add(row_no, "部门", f"“{department.name}”与第 {seen[department.name]} 行重复")
            continue
        seen[department.name] = row_no
        departments.append(department)
        if len(departments) > MAX_DEPARTMENTS:
            problems.add(row_no, None, f"职责清单最多 {MAX_DEPARTMENTS} 个部门")
            break
    if not departments and not problems:
        problems.add(None, None, "文件是空的：没有找到任何部门")
    if problems:
        raise problems.rejected()
    return departments


def describe(problem: object) -> str:
    """One import problem as staff read it: ``清单.csv 第 3 行「职责」：「职责」不能为空``."""
    file, row, column, message = (getattr(problem, a) for a in ("file", "row", "column", "message"))
    return f"{file}{f' 第 {row} 行' if row is not None else ''}{f'「{column}」' if column else ''}：{message}"


def _header(cells: list[object], row_no: int, problems: Problems) -> dict[int, str] | None:
    header: dict[int, str] = {}
    for index, cell in enumerate(cells):
        column = _HEADERS.get(str(cell or "").strip().lower())
        if column is None:
            continue
        if column in header.values():
            problems.add(row_no, COLUMNS[column], "列出现了两次")
            return None
        header[index] = column
    missing = [COLUMNS[c] for c in ("name", "duties") if c not in header.values()]
    if missing:
        problems.add(row_no, None, f"缺少必填列「{'」「'.join(missing)}」（表头应为：部门、职责、关键词、区域）")
        return None
    return header


def _csv_cells(text: str, problems: Problems) -> Iterator[tuple[int, list[object]]]:
    for row_no, cells in csv_cells(text, problems):
        yield row_no, [unquote(c) for c in cells]


def _xlsx_cells(path: Path, problems: Problems) -> Iterator[tuple[int, list[object]]]:
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as err:  # openpyxl raises many kinds for broken files
        problems.add(None, None, f"无法读取这个 Excel .xlsx 文件，文件可能已损坏（{type(err).__name__}）")
        return
    try:
        sheet = workbook.worksheets[0]
        for row_no, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            formulas = [v for v in cells if isinstance(v, str) and v.startswith("=")]
            for formula in formulas:
                problems.add(row_no, None, f"单元格是公式（{formula[:40]}）；公式不会导入，请直接填写内容")
            if not formulas:  # a row with a formula is reported once, not again as an empty cell
                yield row_no, [unquote(v) if isinstance(v, str) else v for v in cells]
    except Exception as err:  # broken sheet XML
        problems.add(None, None, f"无法读取这个工作簿，文件可能已损坏（{type(err).__name__}）")
    finally:
        workbook.close()


# -- matching ------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """How well one department fits an order's text, and why."""

    department: str
    score: float
    cosine: float
    clause: str
    keywords: tuple[str, ...]
    region: str

    @property
    def reason(self) -> str:
        text = f"职责“{self.clause[:40]}”与诉求最接近（相似度 {round(self.cosine * 100)}%）"
        if self.keywords:
            text += f"，命中关键词：{'、'.join(self.keywords)}"
        if self.region:
            text += f"，辖区：{self.region}"
        return text


class DepartmentMatcher:
    """Suggests the department for a work order, with the reason, from the responsibility list.

    Score = the best cosine between the order's text and one of the department's duty clauses (or its whole
    text with keywords), + ``keyword_weight`` per keyword found in the text (at most three), +
    ``region_weight`` when the department serves the order's region. A department of another district than
    the order's is left out. Below ``floor`` nothing is suggested: a wrong suggestion costs the dispatcher more
    than none.

    Args:
        departments: the list (read again, and embedded again, whenever it changed).
        embedder: the knowledge base's embedder, or a function giving it (so the model loads on first use).
        floor: e5-small puts a question no department handles ("我想问一下天气怎么样") at about 0.87 against
            the sample list's nearest duty, and everyday complaints at 0.88-0.96 to the right one (keyword
            hits on top), so 0.89 suggests those and stays silent on the rest.
    """

    def __init__(
        self,
        departments: DepartmentList,
        embedder: Embedder | Callable[[], Embedder],
        *,
        floor: float = 0.89,
        keyword_weight: float = 0.03,
        region_weight: float = 0.02,
    ) -> None:
        self.departments = departments
        self._embedder = embedder
        self.floor = floor
        self.keyword_weight = keyword_weight
        self.region_weight = region_weight
        self._lock = threading.Lock()
        self._seen = ""
        self._rows: list[tuple[Department, str]] = []  # (department, the text embedded) per vector row
        self._vectors: np.ndarray | None = None

    @property
    def embedder(self) -> Embedder:
        found = self._embedder
        return found if hasattr(found, "encode") else found()  # type: ignore[return-value]

    def _current(self) -> tuple[list[tuple[Department, str]], np.ndarray | None]:
        fingerprint = self.departments.fingerprint()
        with self._lock:
            if fingerprint != self._seen:
                rows = [
                    (d, text)
                    for d in self.departments.all(active_only=True)
                    for text in (*d.clauses, f"{d.name}：{d.duties} {' '.join(d.keywords)}")
                ]
                self._vectors = self.embedder.encode([t for _, t in rows]) if rows else None
                self._rows, self._seen = rows, fingerprint
            return self._rows, self._vectors

    def rank(self, text: str, region: str = "") -> list[Match]:
        """Every department that may take the order, best first."""
        rows, vectors = self._current()
        text = (text or "").strip()
        if vectors is None or not text:
            return []
        cosines = vectors @ self.embedder.encode([text[:500]])[0]
        folded = _fold(text)
        best: dict[str, Match] = {}
        for (department, clause), cosine in zip(rows, cosines.tolist(), strict=True):
            region_hit = _region_fits(department.region, region)
            if region_hit is None:
                continue
            known = best.get(department.name)
            if known is not None and known.cosine >= cosine:
                continue
            hits = tuple(k for k in department.keywords if _fold(k) in folded)
            score = cosine + self.keyword_weight * min(len(hits), 3) + (self.region_weight if region_hit else 0.0)
            quoted = clause if clause in department.clauses else department.clauses[0]
            best[department.name] = Match(
                department.name, score, cosine, quoted, hits, department.region if region_hit else ""
            )
        return sorted(best.values(), key=lambda m: -m.score)

    def suggest(self, text: str, region: str = "") -> tuple[str, str] | None:
        """``(department, reason)`` for the order's text (description and address), or None below the floor."""
        ranked = self.rank(text, region)
        if not ranked or ranked[0].score < self.floor:
            return None
        return ranked[0].department, ranked[0].reason


def _region_fits(served: str, region: str) -> bool | None:
    """True: the department serves exactly the order's region; False: the whole city; None: another district."""
    if not served:
        return False
    if not region:
        return None  # a district's department only for orders known to be in that district
    served_f, region_f = _fold(served), _fold(region)
    return True if served_f in region_f or region_f in served_f else None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _keywords(value: str | Iterable[str]) -> tuple[str, ...]:
    return split_keywords(value if isinstance(value, str) else " ".join(value))


def _department(row: dict[str, object]) -> Department:
    return Department(
        name=str(row["name"]),
        duties=str(row["duties"]),
        keywords=split_keywords(row["keywords"]),
        region=str(row["region"] or ""),
        active=bool(row["active"]),
        id=int(row["id"]),  # type: ignore[call-overload]
        updated_at=str(row["updated_at"] or ""),
        updated_by=str(row["updated_by"] or ""),
    )


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


__all__ = [
    "COLUMNS",
    "Department",
    "DepartmentList",
    "DepartmentMatcher",
    "ImportRejected",
    "ImportSummary",
    "Match",
    "describe",
    "read_departments",
    "split_keywords",
]
