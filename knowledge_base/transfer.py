"""Import and export of knowledge-base entries: JSON Lines, CSV, Excel and YAML.

Every format carries the keys of :meth:`Entry.to_dict` (``id`` is the entry's
``key``, the knowledge team's own 编号). Exports also carry ``version``,
``updated_by`` and ``updated_at`` for the reader's information; imports ignore
them (the store owns them). Export followed by import gives equal entries,
apart from those three store-only fields.

Formats:

* **JSON Lines** (``.jsonl``): one JSON object per line, UTF-8. Unknown keys are
  ignored, so benchmark files with extra keys (``kind``, ``dept``) read as is.
* **CSV** (``.csv``): a header row, then one entry per row. Written as UTF-8
  with a BOM (so Excel shows the Chinese text) and Chinese column names.
* **Excel** (``.xlsx``): the first worksheet, laid out like the CSV. Export
  writes every cell as an explicit string and puts ``notice`` on a second
  sheet named ``说明``.
* **YAML** (``.yaml``/``.yml``): a mapping with an optional ``notice`` and an
  ``entries`` list, or a bare list of entries. Read with ``yaml.safe_load`` only.

Fields, their Chinese names and how a list is split come from
:mod:`knowledge_base.fields`, which the admin's edit form reads too. In CSV and
Excel the list fields (``similar_questions``, ``regions``, ``tags``) are one
cell each, written **one item per line**; read back, tags and regions are also
split on ``,`` ``，`` ``、`` ``;`` ``；``, similar questions on line breaks only
(they may contain ``，``). The eight service-guide columns (办事指南: ``conditions``
办理条件 ... ``online`` 网上办理, :data:`~knowledge_base.fields.GUIDE_FIELDS`) are
plain text that may span lines, empty where the entry says nothing. CSV and Excel write
the status in staff's words (``已发布``, ``草稿`` ...); every import reads those and the
English values (``published``). JSON Lines and YAML use lists; a plain string there,
and each item of a list, is split by the same rule. Headers (and JSON/YAML
keys) may be the English keys, the Chinese names staff use
(:data:`CHINESE_NAMES`, e.g. ``标准问`` for ``question``) or their aliases
(``标准问题``).

Spreadsheet safety: on export, any CSV/Excel cell whose text starts with
``= + - @``, a tab or a CR (after any leading apostrophes) gets one leading
apostrophe so spreadsheet programs never run it as a formula; import strips
exactly that one apostrophe again, so the round trip is lossless. Excel cells
that hold formulas (or text starting with ``=``) are refused on import.

Import validates the whole file before returning anything: every bad cell is
reported, in Chinese, as an :class:`~knowledge_base.errors.ImportProblem` (file name, row as
a person sees it, column = the English key) inside one
:class:`~knowledge_base.errors.ImportRejected`. Row numbers: the spreadsheet row
for CSV and Excel (the header is row 1; a CSV record with line breaks inside a
cell is still one row), the line number for JSON Lines, the entry's position
(1-based) for YAML. This module never writes to the store.

Known limit: Excel (XML) keeps line breaks as LF only, so a CR LF inside a text
comes back from ``.xlsx`` as LF; the other formats keep it.

Example:
    >>> from pathlib import Path
    >>> write_entries([Entry(question="社保怎么转移？")], Path("kb.xlsx"))  # doctest: +SKIP
    1
    >>> read_entries(Path("kb.xlsx"))[0].question  # doctest: +SKIP
    '社保怎么转移？'
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from knowledge_base.errors import ImportProblem, ImportRejected, InvalidEntry
from knowledge_base.fields import COLUMNS as COLUMNS
from knowledge_base.fields import FIELDS, FIELDS_BY_NAME, GUIDE_FIELDS, Field, Kind, field_for_header, parse_date
from knowledge_base.records import STATUS_NAMES, Entry, PolicyBasis, Region, ServiceGuide, Status

FORMATS = ("jsonl", "csv", "xlsx", "yaml")
"""The file formats :func:`read_entries` and :func:`write_entries` handle."""

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Import refuses files larger than this."""
MAX_ROWS = 100_000
"""Import refuses files with more entries than this."""
MAX_PROBLEMS = 1_000
"""An :class:`ImportRejected` lists at most this many problems (the last one says it was cut)."""
MAX_XLSX_UNPACKED_BYTES = 500 * 1024 * 1024
"""Import refuses workbooks whose zip members unpack to more than this (zip bombs)."""
EXCEL_CELL_CHARS = 32_767
"""Excel's limit on the text of one cell; export refuses longer cells."""

CHINESE_NAMES = {f.name: f.label for f in FIELDS}
"""The Chinese column names (:attr:`Field.label <knowledge_base.fields.Field.label>`): CSV and Excel exports
write them; every import accepts them, and the aliases of :data:`~knowledge_base.fields.FIELDS` too."""

REQUIRED_COLUMNS = ("question",)

_LIST_FIELDS = tuple(f.name for f in FIELDS if f.kind is Kind.LIST)
_DATE_FIELDS = tuple(f.name for f in FIELDS if f.kind is Kind.DATE)
_TEXT_FIELDS = tuple(f.name for f in FIELDS if f.kind in (Kind.TEXT, Kind.MULTILINE, Kind.ENUM))
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_EXTENSIONS = {".jsonl": "jsonl", ".csv": "csv", ".xlsx": "xlsx", ".yaml": "yaml", ".yml": "yaml"}
_GBK_MESSAGE = (
    "文件不是 UTF-8 编码（看起来是 GBK/GB18030）：请另存为 UTF-8，或选择按 GBK 编码导入（命令行加 --encoding gbk）"
)
_EMPTY_MESSAGE = "文件是空的：没有找到任何条目"

_RawRow = tuple[int, dict[str, object]]
_RowSource = Generator[_RawRow, None, None]


# --------------------------------------------------------------------------- public API


def detect_format(path: Path, format: str | None = None) -> str:
    """The format of ``path``: ``format`` when given, otherwise from the file extension.

    Args:
        path: The file to read or write.
        format: An explicit format (``jsonl``, ``csv``, ``xlsx``, ``yaml`` or ``yml``,
            case-insensitive, a leading dot allowed); overrides the extension.

    Returns:
        One of :data:`FORMATS`.

    Raises:
        ValueError: The format is unknown or cannot be told from the extension;
            the message lists the allowed formats.
    """
    allowed = ", ".join(FORMATS)
    if format is not None:
        name = format.strip().lower().lstrip(".")
        name = "yaml" if name == "yml" else name
        if name not in FORMATS:
            raise ValueError(f"未知格式“{format}”；可用：{allowed}")
        return name
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ValueError(
            f"无法从扩展名看出“{Path(path).name}”的格式；可用：{allowed}（.jsonl、.csv、.xlsx、.yaml 或 .yml）"
        )
    return _EXTENSIONS[suffix]


def read_entries(
    path: Path, *, format: str | None = None, encoding: str = "utf-8", name: str | None = None
) -> list[Entry]:
    """Read and validate every entry of an import file.

    The whole file is checked before anything is returned: either every row is
    good and all entries come back (in file order), or :class:`ImportRejected`
    lists every problem found (at most :data:`MAX_PROBLEMS`). ``version``,
    ``updated_by`` and ``updated_at`` in the file are ignored; an entry without
    an ``id`` gets one from the store.

    Args:
        path: The file to read.
        format: Overrides the format told by the extension (see :func:`detect_format`).
        encoding: Text encoding of CSV, JSON Lines and YAML files. The default
            accepts UTF-8 with or without a BOM; pass ``"gbk"`` or ``"gb18030"``
            for files saved by Chinese Excel. Ignored for ``.xlsx``.
        name: The file name the problems report, when ``path`` is a temporary copy (an upload
            saved under another name): staff recognise the name of the file they chose.

    Returns:
        The entries, with ``id`` None and ``version`` 0.

    Raises:
        ImportRejected: The file has problems (bad cells, not UTF-8, empty, too
            big, not a real workbook ...); each names the file, row and column.
        ValueError: Unknown format or encoding.
        OSError: The file cannot be opened (missing, no permission).
    """
    path = Path(path)
    fmt = detect_format(path, format)
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"未知编码“{encoding}”") from None
    problems = Problems(name or path.name)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        problems.add(None, None, f"文件太大（{_mb(size)}），最多 {_mb(MAX_FILE_BYTES)}")
        raise problems.rejected()
    rows: _RowSource
    if fmt == "xlsx":
        rows = _xlsx_rows(path, problems)
    else:
        text = decode_text(path.read_bytes(), codec, problems)
        if text is None:
            raise problems.rejected()
        rows = {"jsonl": _jsonl_rows, "csv": _csv_rows, "yaml": _yaml_rows}[fmt](text, problems)
    return _collect(rows, problems)


def describe_problem(problem: ImportProblem) -> str:
    """One import problem as staff read it: the file's name, the row, the column by its Chinese name.

    Example:
        >>> describe_problem(ImportProblem("社保.csv", 2, "effective_date", "“明年”不是日期"))
        '社保.csv 第 2 行「生效日期」：“明年”不是日期'
    """
    where = problem.file
    if problem.row is not None:
        where += f" 第 {problem.row} 行"
    if problem.column:
        field = FIELDS_BY_NAME.get(problem.column)
        where += f"「{field.label}」" if field else f"「{problem.column}」"
    return f"{where}：{problem.message}"


def write_entries(entries: Iterable[Entry], path: Path, *, format: str | None = None, notice: str = "") -> int:
    """Write entries to ``path`` atomically (a temporary file, then a rename).

    An existing file is replaced only once the new one is complete; on any
    error it is left as it was and the temporary file is removed.

    Args:
        entries: The entries to write, in order.
        path: The destination; its extension tells the format unless ``format`` is given.
        format: Overrides the format told by the extension (see :func:`detect_format`).
        notice: A note for the reader (licence, source, "sample data"). Written as
            ``notice`` in YAML and on a ``说明`` sheet in Excel; CSV and JSON Lines
            have no place for it and leave it out.

    Returns:
        The number of entries written.

    Raises:
        ValueError: Unknown format, or (Excel) a cell longer than Excel allows.
        OSError: The file cannot be written.
    """
    path = Path(path)
    fmt = detect_format(path, format)
    rows = [entry.to_dict() for entry in entries]
    writer: Callable[[list[dict[str, object]], Path, str], None] = {
        "jsonl": _write_jsonl,
        "csv": _write_csv,
        "xlsx": _write_xlsx,
        "yaml": _write_yaml,
    }[fmt]
    if fmt == "xlsx":
        _check_excel_cells(rows)
    _atomic_write(path, lambda tmp: writer(rows, tmp, notice))
    return len(rows)


# --------------------------------------------------------------------------- problems


class Problems:
    """Collects import problems, keeping at most :data:`MAX_PROBLEMS`."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ImportProblem] = []
        self.truncated = False

    def add(self, row: int | None, column: str | None, message: str) -> None:
        if len(self.items) >= MAX_PROBLEMS - 1:
            self.truncated = True
            return
        self.items.append(ImportProblem(self.file, row, column, message))

    @property
    def full(self) -> bool:
        return self.truncated

    def __bool__(self) -> bool:
        return bool(self.items) or self.truncated

    def rejected(self) -> ImportRejected:
        items = list(self.items)
        if self.truncated:
            items.append(
                ImportProblem(
                    self.file,
                    None,
                    None,
                    f"问题太多，只列出了前 {MAX_PROBLEMS - 1} 个；请改正后重新导入",
                )
            )
        return ImportRejected(items)


class _CellError(Exception):
    """A cell that cannot be converted; ``message`` None means it was already reported."""

    def __init__(self, message: str | None) -> None:
        super().__init__(message or "")
        self.message = message


class _Reported:
    """Stands in for a cell value whose problem the reader has already reported."""


_REPORTED = _Reported()


# --------------------------------------------------------------------------- validation


def _collect(rows: _RowSource, problems: Problems) -> list[Entry]:
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    count = 0
    try:
        for row_no, raw in rows:
            if problems.full:
                break
            count += 1
            if count > MAX_ROWS:
                problems.add(row_no, None, f"超过 {MAX_ROWS:,} 条，请把文件拆开分批导入")
                break
            entry = _build(row_no, raw, problems)
            key = _key_of(raw)
            if key:
                if key in seen:
                    problems.add(row_no, "id", f"编号“{key}”与第 {seen[key]} 行重复")
                else:
                    seen[key] = row_no
            if entry is not None:
                entries.append(entry)
    finally:
        rows.close()
    if count == 0 and not problems:
        problems.add(None, None, _EMPTY_MESSAGE)
    if problems:
        raise problems.rejected()
    return entries


def _key_of(raw: Mapping[str, object]) -> str:
    try:
        return _as_text(raw.get("id")).strip()
    except _CellError:
        return ""


def _build(row: int, raw: Mapping[str, object], problems: Problems) -> Entry | None:
    """One entry from one row's values, or None after reporting every bad cell."""
    bad = False

    def report(column: str, message: str | None) -> None:
        nonlocal bad
        bad = True
        if message is not None:
            problems.add(row, column, message)

    text: dict[str, str] = {}
    for name in _TEXT_FIELDS:
        try:
            text[name] = _as_text(raw.get(name))
        except _CellError as err:
            report(name, err.message)
    lists: dict[str, tuple[str, ...]] = {}
    for name in _LIST_FIELDS:
        try:
            lists[name] = _as_list(raw.get(name), FIELDS_BY_NAME[name])
        except _CellError as err:
            report(name, err.message)
    dates: dict[str, date | None] = {}
    for name in _DATE_FIELDS:
        try:
            dates[name] = _as_date(raw.get(name))
        except _CellError as err:
            report(name, err.message)

    regions: list[Region] = []
    for item in lists.get("regions", ()):
        try:
            regions.append(Region.parse(item))
        except InvalidEntry as err:
            report("regions", err.message)
    status = Status.PUBLISHED
    if text.get("status", "").strip():
        try:
            status = Status.parse(text["status"])
        except InvalidEntry as err:
            report("status", err.message)
    parts = {"policy_title": "title", "policy_number": "number", "policy_url": "url"}
    for column, part in parts.items():
        if column in text:
            try:
                PolicyBasis(**{part: text[column]})
            except InvalidEntry as err:
                report(column, err.message)
    whole: InvalidEntry | None = None
    if not bad:
        try:
            return Entry(
                key=text["id"],
                question=text["question"],
                answer=text["answer"],
                similar_questions=lists["similar_questions"],
                department=text["department"],
                category=text["category"],
                regions=tuple(regions),
                policy=PolicyBasis(text["policy_title"], text["policy_number"], text["policy_url"]),
                guide=ServiceGuide.from_mapping(text),
                effective_date=dates["effective_date"],
                expiry_date=dates["expiry_date"],
                status=status,
                tags=lists["tags"],
            )
        except InvalidEntry as err:
            whole = err

    # Something is wrong: check each remaining field on its own so every bad cell is named.
    found = bad
    probes: dict[str, dict[str, object]] = {
        "id": {"key": text.get("id")},
        "question": {"question": text.get("question")},
        "answer": {"answer": text.get("answer")},
        "department": {"department": text.get("department")},
        "category": {"category": text.get("category")},
        "similar_questions": {"similar_questions": lists.get("similar_questions")},
        "tags": {"tags": lists.get("tags")},
    }
    for column, change in probes.items():
        if next(iter(change.values())) is None:
            continue  # not converted: already reported
        try:
            Entry(**{"question": "?", **change})  # type: ignore[arg-type]
        except InvalidEntry as err:
            problems.add(row, column, err.message)
            found = True
    for aspect in GUIDE_FIELDS:
        if aspect.name not in text:
            continue  # not converted: already reported
        try:
            ServiceGuide.from_mapping({aspect.name: text[aspect.name]})
        except InvalidEntry as err:
            problems.add(row, aspect.name, err.message)
            found = True
    if not found and whole is not None:
        column = whole.field if whole.field in FIELDS_BY_NAME else "policy_title"
        problems.add(row, column, whole.message)
    return None


def _as_text(value: object) -> str:
    """A cell or JSON/YAML value as text: numbers and dates become their usual text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, _Reported):
        raise _CellError(None)
    if isinstance(value, bool):
        raise _CellError(f"“{value}”是真/假值，不是文字：请写成文字（YAML 中加引号）")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    raise _CellError(f"必须是文字，而不是{_kind(value)}")


def _as_list(value: object, field: Field) -> tuple[str, ...]:
    """A list field: a list, or text split by the field's rule (:meth:`Field.split`); blank items are dropped."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        items: list[str] = []
        for item in value:
            if isinstance(item, (list, tuple, dict)):
                raise _CellError(f"每一项都必须是文字，而不是{_kind(item)}")
            items.append(_as_text(item))
        return field.items(items)
    if isinstance(value, dict):
        raise _CellError(f"必须是列表或每行一项的文字，而不是{_kind(value)}")
    return field.split(_as_text(value))


def _as_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, _Reported):
        raise _CellError(None)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return parse_date(value)
        except ValueError:
            pass
    raise _CellError(f"“{value}”不是日期（请写成 YYYY-MM-DD，如 2024-01-31）")


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.3g} MB"


def _kind(value: object) -> str:
    names = {
        "dict": "映射（字段: 值）",
        "list": "列表",
        "tuple": "列表",
        "int": "数字",
        "float": "数字",
        "bool": "真/假值",
        "str": "文字",
    }
    return names.get(type(value).__name__, type(value).__name__)


def _mapping_row(data: Mapping[object, object], row: int, problems: Problems) -> dict[str, object] | None:
    """A JSON/YAML object keyed by English field names; None if a field is given twice."""
    values: dict[str, object] = {}
    given: dict[str, object] = {}
    ok = True
    for key, value in data.items():
        name = field_for_header(key)
        if name is None:
            continue
        if name in values:
            problems.add(row, name, f"出现了两次：“{given[name]}”和“{key}”")
            ok = False
            continue
        values[name] = value
        given[name] = key
    return values if ok else None


# --------------------------------------------------------------------------- text formats


def decode_text(data: bytes, codec: str, problems: Problems) -> str | None:
    """An uploaded text file's bytes as text, or None after a Chinese explanation (GBK, a workbook, bad bytes)."""
    if codec in ("utf-8", "utf-8-sig"):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            if data[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0"):
                problems.add(None, None, "不是 UTF-8 文字：这看起来是 Excel 工作簿，请以 .xlsx 扩展名导入")
                return None
            try:
                data.decode("gb18030")
            except UnicodeDecodeError:
                line = data[: err.start].count(b"\n") + 1
                problems.add(
                    None, None, f"不是 UTF-8 编码（第 {line} 行有无效字节 0x{data[err.start]:02x}）：请另存为 UTF-8"
                )
            else:
                problems.add(None, None, _GBK_MESSAGE)
            return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.add(None, None, f"不是有效的 {codec} 编码（第 {line} 行的字节 0x{data[err.start]:02x}）")
        return None
    return text.removeprefix("\ufeff")


def _jsonl_rows(text: str, problems: Problems) -> _RowSource:
    # split on "\n" only: str.splitlines would also break at U+2028 inside JSON strings
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            problems.add(line_no, None, f"不是有效的 JSON（第 {err.colno} 个字符处有误）")
            continue
        if not isinstance(data, dict):
            problems.add(line_no, None, f"每行必须是一个 JSON 对象 {{…}}，而不是{_kind(data)}")
            continue
        values = _mapping_row(data, line_no, problems)
        if values is not None:
            yield line_no, values


def _yaml_rows(text: str, problems: Problems) -> _RowSource:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"（第 {mark.line + 1} 行附近有误）" if mark is not None else ""
        problems.add(None, None, f"不是有效的 YAML 文件{where}")
        return
    if isinstance(data, dict):
        if "entries" not in data:
            problems.add(None, "entries", "YAML 文件需要一个 entries 条目列表（或整个文件就是条目列表）")
            return
        data = data["entries"]
    if data is None:
        return
    if not isinstance(data, list):
        problems.add(None, "entries", f"entries 必须是条目列表，而不是{_kind(data)}")
        return
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            problems.add(index, None, f"每个条目必须是“字段: 值”的映射（如 标准问: …），而不是{_kind(item)}")
            continue
        values = _mapping_row(item, index, problems)
        if values is not None:
            yield index, values


def csv_cells(text: str, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """Each row of a CSV text with its row number, as the file has it; stops at broken quoting (reported)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    row_no = 0
    while True:
        row_no += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            problems.add(row_no, None, "不是有效的 CSV 文件（引号或分隔符有误）")
            return
        yield row_no, cells


def _csv_rows(text: str, problems: Problems) -> _RowSource:
    header: dict[int, str] | None = None
    for row_no, cells in csv_cells(text, problems):
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = _read_header(list(cells), row_no, problems)
            if header is None:
                return
            continue
        yield row_no, {name: unquote(cells[i]) for i, name in header.items() if i < len(cells)}


def _read_header(names: list[object], row_no: int, problems: Problems) -> dict[int, str] | None:
    """Map column positions to fields; None (after reporting) when the header is unusable."""
    header: dict[int, str] = {}
    first: dict[str, object] = {}
    ok = True
    for index, name in enumerate(names):
        field = field_for_header(name)
        if field is None:
            continue
        if field in first:
            problems.add(row_no, field, f"列出现了两次：“{first[field]}”和“{name}”")
            ok = False
        first[field] = name
        header[index] = field
    for field in REQUIRED_COLUMNS:
        if field not in first:
            problems.add(row_no, field, f"缺少必填列「{CHINESE_NAMES[field]}」")
            ok = False
    return header if ok else None


def unquote(text: str) -> str:
    """Undo the export's formula guard: drop one apostrophe before = + - @ tab CR."""
    if text.startswith("'") and text.lstrip("'").startswith(_FORMULA_STARTS):
        return text[1:]
    return text


def _guard(text: str) -> str:
    """Formula-injection guard for spreadsheet cells (undone by :func:`unquote`)."""
    if text.lstrip("'").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


# --------------------------------------------------------------------------- Excel


def check_workbook_file(path: Path, problems: Problems) -> bool:
    """Whether ``path`` can be opened as an .xlsx workbook safely (a zip, not too large unpacked); else reported."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        problems.add(None, None, _EMPTY_MESSAGE)
        return False
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        problems.add(None, None, "这是旧版 Excel .xls 文件（或加密的工作簿）：请另存为 .xlsx")
        return False
    if not zipfile.is_zipfile(path):
        problems.add(None, None, "不是 Excel .xlsx 文件（不是 zip 压缩包）；CSV 文件的扩展名应为 .csv")
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = {m.filename for m in members}
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as err:  # "zip file version 8.4"
        problems.add(None, None, f"无法读取这个 Excel .xlsx 文件，文件可能已损坏（{type(err).__name__}）")
        return False
    unpacked = sum(m.file_size for m in members)
    if len(members) > 10_000 or unpacked > MAX_XLSX_UNPACKED_BYTES:
        problems.add(
            None,
            None,
            f"已拒绝：工作簿解压后有 {_mb(unpacked)}、{len(members):,} 个部分"
            f"（最多 {_mb(MAX_XLSX_UNPACKED_BYTES)}、10,000 个部分）",
        )
        return False
    if "xl/workbook.xml" not in names and not any(n.endswith("/workbook.xml") for n in names):
        problems.add(None, None, "不是 Excel .xlsx 文件：压缩包里没有工作簿")
        return False
    return True


def _xlsx_rows(path: Path, problems: Problems) -> _RowSource:
    if not check_workbook_file(path, problems):
        return
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as err:  # openpyxl raises many kinds for broken files
        problems.add(None, None, f"无法读取这个 Excel .xlsx 文件，文件可能已损坏（{type(err).__name__}）")
        return
    try:
        sheets = workbook.worksheets
        if not sheets:
            problems.add(None, None, _EMPTY_MESSAGE)
            return
        sheet = sheets[0]
        sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
        cells_by_row = sheet.iter_rows()
        header: dict[int, str] | None = None
        row_no = 0
        while True:
            row_no += 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cells = next(cells_by_row)
            except StopIteration:
                return
            except Exception as err:  # broken sheet XML
                problems.add(row_no, None, f"无法读取工作簿的这一行，文件可能已损坏（{type(err).__name__}）")
                return
            by_column = {c.column: c for c in cells if getattr(c, "column", None) is not None}
            real_rows = {c.row for c in by_column.values()}
            if real_rows:
                row_no = real_rows.pop()
            if not any(c.value is not None and str(c.value).strip() for c in by_column.values()):
                continue
            if header is None:
                width = max(by_column)
                names = [by_column[i].value if i in by_column else None for i in range(1, width + 1)]
                found = _read_header(names, row_no, problems)
                if found is None:
                    return
                header = {i + 1: name for i, name in found.items()}
                continue
            values: dict[str, object] = {}
            for column, name in header.items():
                cell = by_column.get(column)
                if cell is None:
                    continue
                value = cell.value
                if cell.data_type == "f" or (isinstance(value, str) and value.startswith("=")):
                    formula = value if isinstance(value, str) else "公式"
                    problems.add(
                        row_no,
                        name,
                        f"单元格是公式（{formula[:40]}）；公式不会导入，请直接填写内容",
                    )
                    value = _REPORTED
                elif isinstance(value, str):
                    value = unquote(value)
                values[name] = value
            yield row_no, values
    finally:
        workbook.close()


def _check_excel_cells(rows: list[dict[str, object]]) -> None:
    for data in rows:
        for field in FIELDS:
            column = field.name
            text = _cell_text(data.get(column), field)
            if len(text) > EXCEL_CELL_CHARS:
                raise ValueError(
                    f"条目“{data.get('id') or data.get('question')}”的「{field.label}」有 {len(text):,} 个字，"
                    f"Excel 单元格最多 {EXCEL_CELL_CHARS:,} 个字（请导出为 .jsonl 或 .yaml）"
                )


# --------------------------------------------------------------------------- writers


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "r+b") as f:
            os.fsync(f.fileno())
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cell_text(value: object, field: Field) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return field.join(str(v) for v in value)
    return str(value)


def _sheet_rows(rows: list[dict[str, object]]) -> Generator[list[str], None, None]:
    yield [f.label for f in FIELDS]
    for data in rows:
        yield [_guard(_sheet_text(data, f)) for f in FIELDS]


def _sheet_text(data: Mapping[str, object], field: Field) -> str:
    # Staff read spreadsheets: the status in their words (已发布); import reads both.
    if field.name == "status":
        value = str(data.get("status") or "")
        try:
            return STATUS_NAMES[Status(value)]
        except ValueError:
            return value
    return _cell_text(data.get(field.name), field)


def _write_jsonl(rows: list[dict[str, object]], path: Path, notice: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for data in rows:
            f.write(json.dumps(data, ensure_ascii=False))
            f.write("\n")


def _write_csv(rows: list[dict[str, object]], path: Path, notice: str) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(_sheet_rows(rows))


def _write_xlsx(rows: list[dict[str, object]], path: Path, notice: str) -> None:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("知识库")
    sheet.freeze_panes = "A2"
    wide = {"question": 40, "similar_questions": 40, "answer": 60, "policy_title": 30, "policy_url": 30}
    wide.update((f.name, 30) for f in GUIDE_FIELDS)
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = wide.get(column, 14)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for row_index, texts in enumerate(_sheet_rows(rows)):
        cells = []
        for text in texts:
            cell = WriteOnlyCell(sheet, value=text)
            cell.data_type = "s"  # always text: never a formula, number or date
            if row_index == 0:
                cell.font = bold
            elif "\n" in text:
                cell.alignment = wrap
            cells.append(cell)
        sheet.append(cells)
    if notice:
        about = workbook.create_sheet("说明")
        about.column_dimensions["A"].width = 100
        cell = WriteOnlyCell(about, value=_guard(notice))
        cell.data_type = "s"
        cell.alignment = wrap
        about.append([cell])
    workbook.save(path)


def _write_yaml(rows: list[dict[str, object]], path: Path, notice: str) -> None:
    import yaml

    class _Dumper(yaml.SafeDumper):
        """Writes multi-line text as ``|`` blocks so answers stay readable."""

    def text(dumper: yaml.SafeDumper, value: str) -> Any:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    _Dumper.add_representer(str, text)
    document: dict[str, object] = {"notice": notice} if notice else {}
    document["entries"] = rows
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        yaml.dump(
            document, f, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1000
        )
