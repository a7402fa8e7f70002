"""Property-based fuzzing of the importer: read_entries, then KnowledgeBase.import_entries.

Generated CSV, JSON Lines and YAML files (rows built from good entries with cells spoiled, odd
headers, every encoding mistake), random bytes under every extension, and real workbooks written
by write_entries, then damaged: bytes flipped, truncated, or their sheet XML edited. For each:

* read_entries raises ImportRejected or nothing (the format and encoding given are valid), and
  every problem it lists names the file and says what is wrong;
* what read_entries accepts, import_entries stores (the whole file was checked first);
* a refused import leaves the store as it was: kb_version, the entries and their revisions.

Derandomized, so CI runs the same files every time.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from knowledge_base.embedder import FakeEmbedder
from knowledge_base.errors import ImportRejected, KnowledgeBaseError
from knowledge_base.kb import KnowledgeBase
from knowledge_base.records import Entry
from knowledge_base.settings import Settings
from knowledge_base.store import SQLiteStore
from knowledge_base.transfer import CHINESE_NAMES, COLUMNS, read_entries, write_entries
from tests.conftest import TODAY, sample_entries
from tests.strategies import chinese, json_values, mutated, spiced, strings, texts

pytestmark = pytest.mark.unit

FUZZ = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
XLSX_EXAMPLES = 120  # each opens a workbook with openpyxl: slower than the text formats

# -- files --------------------------------------------------------------------------------------

ENTRY = {
    "id": st.sampled_from(["GD-SB-001", "T-SB-1", "T-GJJ-SZ", "1001", ""]) | st.from_regex(r"\AF-[0-9]{1,3}\Z"),
    "question": spiced(st.sampled_from(["社保怎么转移？", "=1+1 是什么？"]) | chinese),
    "similar_questions": st.lists(spiced(chinese), max_size=3),
    "answer": spiced(st.sampled_from(["登录粤省事办理。", "第一步：登录。\n第二步：提交。"]) | chinese),
    "department": spiced(st.sampled_from(["广东省人力资源和社会保障厅", ""])),
    "category": st.sampled_from(["社保", ""]),
    "regions": st.lists(st.sampled_from(["广东省", "广东省/深圳市", "广东省/广州市/天河区"]), max_size=2),
    "policy_title": spiced(st.sampled_from(["《社会保险法》", ""])),
    "policy_number": st.sampled_from(["粤府〔2024〕12号", "-2024-", ""]),
    "policy_url": st.sampled_from(["https://www.gd.gov.cn/a?b=1&c=2", ""]),
    "effective_date": st.sampled_from(["2024-01-01", "2024/1/1", ""]),
    "expiry_date": st.sampled_from(["2027-12-31", ""]),
    "status": st.sampled_from(["published", "draft", "已发布", "ARCHIVED", ""]),
    "tags": st.lists(spiced(st.sampled_from(["社保", "转移"])), max_size=2),
}
CELL_JUNK = strings | st.sampled_from(
    ["2024-02-30", "9999-99-99", "yesterday", "已删除", "火星/火星市/a/b", "=SUM(A1:A9)", "'=1", "+1", "@x", "-1",
     "\n".join(["问法"] * 300), "x" * 70_000, "广东省//", "/"]
)  # fmt: skip
VALUE_JUNK = CELL_JUNK | json_values | st.sampled_from([True, 3.5, 10**30, {"a": 1}, [["nested"]], [None]])
rows = st.lists(mutated(ENTRY, VALUE_JUNK), min_size=0, max_size=6)
# Keys as staff write them: English or Chinese, with the required-mark and odd spacing; sometimes unknown.
key_style = st.sampled_from(["en", "en", "zh", "zh*", " EN ", "unknown"])


def _key(name: str, style: str) -> str:
    if name not in CHINESE_NAMES:
        return name
    return {"en": name, "zh": CHINESE_NAMES[name], "zh*": CHINESE_NAMES[name] + "*", " EN ": f" {name.upper()} "}.get(
        style, name + "_x"
    )


def _renamed(row: dict[str, Any], style: str) -> dict[str, Any]:
    return {_key(k, style): v for k, v in row.items()}


def _cell(value: Any) -> str:
    """A value as a spreadsheet cell: lists one item per line, anything else as its text."""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _encoded(text: str, encoding: str) -> bytes:
    if encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


ENCODINGS = st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "gbk", "utf-16"])


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = []
    for row in draw(rows):
        data = _renamed(row, draw(key_style))
        lines.append(json.dumps(data, ensure_ascii=draw(st.booleans()), default=str))
    lines += draw(st.lists(st.sampled_from(["", "   ", "{", "[]", '"text"', "null", "{}"]) | texts, max_size=2))
    lines = draw(st.permutations(lines))
    return _encoded(draw(st.sampled_from(["\n", "\r\n"])).join(lines), draw(ENCODINGS))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=len(COLUMNS), unique=True))
    columns += draw(st.lists(st.sampled_from([*COLUMNS[:3], "", "备注"]), max_size=2))  # given twice, or unknown
    style = draw(key_style)
    out = io.StringIO()
    writer = csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow([_key(c, style) for c in columns])
    for row in draw(rows):
        cells = [_cell(row.get(c)) for c in columns]
        writer.writerow(cells[: draw(st.integers(0, len(cells)))] if draw(st.booleans()) else cells)
    text = out.getvalue()
    if draw(st.booleans()):  # a broken quote, a stray NUL or a bare CR, somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "\x00", "\r", '""x"', "\ufeff"])) + text[at:]
    return _encoded(text, draw(ENCODINGS))


@st.composite
def yaml_files(draw: st.DrawFn) -> bytes:
    entries = [_renamed(row, draw(key_style)) for row in draw(rows)]
    shape = draw(st.sampled_from(["mapping", "list", "entries-not-list", "scalar", "alias-bomb", "python-tag"]))
    if shape == "mapping":
        text = yaml.safe_dump({"notice": "样例", "entries": entries}, allow_unicode=draw(st.booleans()))
    elif shape == "list":
        text = yaml.safe_dump(entries, allow_unicode=True, default_flow_style=draw(st.booleans()))
    elif shape == "entries-not-list":
        text = yaml.safe_dump({"entries": draw(json_values)})
    elif shape == "scalar":
        text = draw(st.sampled_from(["", "~", "42", "- - -", "{", "entries: [", "\t- a", "!!binary x"]) | texts)
    elif shape == "alias-bomb":  # "billion laughs": must not expand into memory
        text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        text += "entries:\n  - question: *h\n    tags: *h\n"
    else:
        text = "entries:\n  - !!python/object/apply:os.system ['echo pwned']\n"
    return _encoded(text, draw(ENCODINGS))


any_bytes = st.binary(max_size=2000) | st.sampled_from([b"", b"\xef\xbb\xbf", b"PK\x03\x04" + b"\x00" * 40])
text_files = st.one_of(
    st.tuples(st.just(".jsonl"), jsonl_files()),
    st.tuples(st.just(".csv"), csv_files()),
    st.tuples(st.sampled_from([".yaml", ".yml"]), yaml_files()),
    st.tuples(st.sampled_from([".jsonl", ".csv", ".yaml", ".xlsx"]), any_bytes),
)


@functools.cache
def _workbook() -> bytes:
    """A real export of good entries: what the damaged workbooks start from."""
    import tempfile

    entries = [
        *sample_entries(),
        Entry(key="F-1", question="=1+1 是什么？", answer="第一步\n第二步", tags=("=SUM(A1)", "+1")),
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kb.xlsx"
        write_entries(entries, path, notice="样例")
        return path.read_bytes()


SHEET = "xl/worksheets/sheet1.xml"
XML_EDITS = [  # (pattern, replacement) applied to the first sheet's XML
    (r"<c r=\"B2\"[^>]*>.*?</c>", '<c r="B2"><f>SUM(1,2)</f><v>3</v></c>'),  # a formula
    (r"<c r=\"B3\"[^>]*>.*?</c>", '<c r="B3" t="n"><v>1e308</v></c>'),  # a number
    (r"<c r=\"B4\"[^>]*>.*?</c>", '<c r="B4" t="b"><v>1</v></c>'),  # a boolean
    (r"<c r=\"L2\"[^>]*>.*?</c>", '<c r="L2" t="n" s="0"><v>45000.5</v></c>'),  # a date as a serial number
    (r"<c r=\"A2\"[^>]*>.*?</c>", '<c r="A2" t="e"><v>#REF!</v></c>'),  # an error value
    (r"<c r=\"D2\"[^>]*>.*?</c>", '<c r="D2" t="s"><v>99999</v></c>'),  # a shared string that does not exist
    (r"<c r=\"C2\"", '<c r="ZZZZ99999999"'),  # a cell far outside the sheet
    (r"<c r=\"C3\"", '<c r="B3"'),  # two cells at one place
    (r"<dimension ref=\"[^\"]*\"", '<dimension ref="A1:XFD1048576"'),  # a lying size
    (r"</sheetData>", ""),  # broken XML
    (r"<row ", '<row r="0" '),  # an impossible row number
    (r"<sheetData>", "<sheetData><!DOCTYPE x [<!ENTITY a 'aaaa'>]>"),  # a DTD where none may be
]


@st.composite
def damaged_workbooks(draw: st.DrawFn) -> bytes:
    data = _workbook()
    how = draw(st.sampled_from(["flip", "truncate", "edit-xml", "drop-member"]))
    if how == "flip":
        buffer = bytearray(data)
        for at in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            buffer[at] ^= draw(st.integers(1, 255))
        return bytes(buffer)
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    members = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            members[name] = archive.read(name)
    if how == "drop-member":
        members.pop(draw(st.sampled_from(sorted(members))))
    else:
        xml = members[SHEET].decode("utf-8")
        for pattern, replacement in draw(st.lists(st.sampled_from(XML_EDITS), min_size=1, max_size=3)):
            xml = re.sub(pattern, replacement, xml, count=1, flags=re.S)
        members[SHEET] = xml.encode("utf-8")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


# -- the store and the property -------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb(tmp_path_factory, normaliser):
    root = tmp_path_factory.mktemp("fuzz-import")
    store = SQLiteStore(root / "kb.sqlite3")
    kb = KnowledgeBase(
        store, FakeEmbedder(), normaliser, settings=Settings(data_dir=str(root / "var")), today=lambda: TODAY
    )
    kb.import_entries(sample_entries(), author="tester")
    yield kb
    store.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


def snapshot(kb: KnowledgeBase) -> tuple[Any, ...]:
    store = kb.store
    revisions = store.db.query("SELECT COUNT(*) AS n, MAX(id) AS last FROM revisions")[0]
    return store.kb_version(), [e.to_dict() for e in store.entries()], revisions


def import_file(kb: KnowledgeBase, path: Path, data: bytes, *, encoding: str = "utf-8") -> None:
    """The property every import must have (see the module's docstring)."""
    path.write_bytes(data)
    before = snapshot(kb)
    try:
        entries = read_entries(path, encoding=encoding)
    except ImportRejected as exc:
        event(f"{path.suffix} rejected")
        assert exc.problems, "a rejection lists its problems"
        for problem in exc.problems:
            assert problem.file == path.name and problem.message.strip(), repr(problem)
        assert snapshot(kb) == before
        return
    event(f"{path.suffix} read {min(len(entries), 3)}+ entries")
    try:
        summary = kb.import_entries(entries, author="fuzz")
    except KnowledgeBaseError as exc:  # e.g. an id the store has under another entry's old key
        event(f"{path.suffix} store refused: {type(exc).__name__}")
        assert snapshot(kb) == before, "a refused import changed the store"
        return
    assert summary.added + summary.updated + summary.unchanged == len(entries)
    assert kb.store.kb_version() == before[0] + 1


@FUZZ
@given(file=text_files, gbk=st.booleans())
def test_text_files(kb, folder, file, gbk):
    suffix, data = file
    import_file(kb, folder / f"upload{suffix}", data, encoding="gbk" if gbk and suffix != ".xlsx" else "utf-8")


@settings(FUZZ, max_examples=XLSX_EXAMPLES)
@given(data=damaged_workbooks())
def test_damaged_workbooks(kb, folder, data):
    import_file(kb, folder / "upload.xlsx", data)
