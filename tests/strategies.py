"""Hypothesis strategies of the fuzz tests (tests/web/test_fuzz_api.py, tests/unit/test_transfer_fuzz.py).

Values come in two kinds: junk (anything at all, huge, malformed, hostile), and good values,
``spiced`` now and then with something hostile, so that they get past the first checks and
reach storage, templates and logs. :func:`mutated` builds requests and rows from good values
with a few keys spoiled, which is what finds bugs behind the first check.

Import files are built the same way: rows of good entries with a cell spoiled now and then,
headers in English or Chinese, every encoding mistake; workbooks are real exports, damaged.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import operator as op
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from knowledge_base.records import Entry
from knowledge_base.transfer import CHINESE_NAMES, COLUMNS, write_entries
from tests.conftest import sample_entries

FUZZ = settings(
    max_examples=300,
    derandomize=True,  # CI sends the same inputs on every run
    database=None,  # and keeps no failing examples of its own between runs
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
"""The settings of every fuzz test (a test may ask for fewer examples)."""

# -- values and requests ---------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\u3000\u3000",
    "\x00",
    "a\x00b",
    "\r\n\r\n",
    "\x1b[31m红\x1b[0m",
    "\x7f\x08\x0b\x0c",
    "\u202e\u200b\ufeff\u2028\u2029",
    "\ud800",
    "\udfff",
    "a\ud83dz",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"'><svg/onload=alert(1)>",
    "javascript:alert(document.cookie)",
    "{{7*7}}{% raw %}",
    "' OR '1'='1",
    "'; DROP TABLE entries; --",
    "1; UPDATE meta SET value='0' WHERE name='kb_version'",
    '" OR ""="',
    "%s%s%s%n",
    "${jndi:ldap://x/a}",
    "../../../../etc/passwd",
    "NaN",
    "-1",
    "9" * 40,
    "1e999",
    "null",
    "web-1\n",
    "/feedback_useful\n",
    "社保" * 1200,
    "深圳市",
    "广东省深圳市南山区",
    "火星市",
    "/feedback_useful",
    '/choose_entry{"key":"T-SB-1"}',
    "T-GJJ-SZ",
    "GD20261126000001",
    "13812345678",
    "+86 138 1234 5678",
    "020-12345678",
    "440301199001011234",
    "🙂" * 300,
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǒ̹",
]
BIG_INTS = [-1, 0, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40]
characters = st.characters() | st.characters(categories=["Cs"]) | st.characters(max_codepoint=0x20)
texts = st.text(characters, max_size=40)
huge_texts = st.builds(op.mul, st.text(characters, min_size=1, max_size=3), st.integers(300, 25_000))
strings = st.one_of(st.sampled_from(NASTY), texts, texts, huge_texts)
# Put next to good values, these get past the first checks and reach storage, templates and logs.
SPICE = ["\ud800", "\udc00x", "\x00", "\x1b[2J", "\u202e", "\n", "\r\n", "\t", "\x85", "\u2028", "\\", '"',
         "<script>alert(1)</script>", "' OR '1'='1", "'; DROP TABLE entries; --", "%s%n", "{{7*7}}", "🙂"]  # fmt: skip


def _season(value: str, spice: str, front: bool) -> str:
    return spice + value if front else value + spice


def spiced(good: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Good values, and (a third of the time) good values with something hostile before or after them."""
    hostile = st.builds(_season, good, st.sampled_from(SPICE), st.booleans())
    return st.one_of(good, good, hostile)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(BIG_INTS)
    | st.floats()  # NaN and infinities too: Python's json reads them
    | strings
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=8
)


chinese = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=30)


MISSING = object()
"""In a mutation: leave the key out."""


def _mutate(base: dict[str, Any], changes: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    mutated = {**extra, **base}
    for key, value in changes.items():
        if value is MISSING:
            mutated.pop(key, None)
        else:
            mutated[key] = value
    return mutated


def mutated(valid: dict[str, st.SearchStrategy[Any]], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """A request that passes the endpoint's checks with up to three keys spoiled, left out or added.

    Starting from a good request makes the one bad value the thing under test (a request with
    every value random is refused by the first check, and the others are never reached).
    """
    return st.builds(
        _mutate,
        st.fixed_dictionaries(valid),
        st.dictionaries(st.sampled_from(sorted(valid)), st.just(MISSING) | junk, max_size=3),
        st.dictionaries(texts, junk, max_size=2) | st.just({}),
    )


# -- import files: CSV, JSON Lines, YAML, damaged workbooks -------------------------------------

ENTRY = {
    # the sample entries' keys (an import updates them) and new ones; a key twice in a file is refused
    "id": st.sampled_from(["T-SB-1", "T-GJJ-SZ", ""]) | st.from_regex(r"\AF-[0-9]{1,6}\Z"),
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
good_rows = st.fixed_dictionaries(ENTRY)
# Mostly good rows: a file is refused for its one bad cell, and good files must reach the store too.
rows = st.lists(st.one_of(good_rows, good_rows, good_rows, mutated(ENTRY, VALUE_JUNK)), min_size=1, max_size=5)
# Keys as staff write them: English or Chinese, with the required-mark and odd spacing; sometimes unknown.
key_style = st.sampled_from(["en", "en", "en", "zh", "zh", "zh*", " EN ", "unknown"])


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


ENCODINGS = st.sampled_from(["utf-8"] * 5 + ["utf-8-sig", "utf-8-sig", "gbk", "utf-16"])
sometimes = st.sampled_from([False, False, False, True])


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = []
    for row in draw(rows):
        data = _renamed(row, draw(key_style))
        lines.append(json.dumps(data, ensure_ascii=draw(st.booleans()), default=str))
    if draw(sometimes):
        lines += draw(st.lists(st.sampled_from(["", "   ", "{", "[]", '"text"', "null", "{}"]) | texts, max_size=2))
    lines = draw(st.permutations(lines))
    return _encoded(draw(st.sampled_from(["\n", "\r\n"])).join(lines), draw(ENCODINGS))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    columns = draw(st.lists(st.sampled_from(COLUMNS), max_size=len(COLUMNS), unique=True))
    if "question" not in columns and not draw(sometimes):
        columns.insert(draw(st.integers(0, len(columns))), "question")
    if draw(sometimes):  # a column given twice, or an unknown one
        columns += draw(st.lists(st.sampled_from([*COLUMNS[:3], "", "备注"]), min_size=1, max_size=2))
    style = draw(key_style)
    out = io.StringIO()
    writer = csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow([_key(c, style) for c in columns])
    for row in draw(rows):
        cells = [_cell(row.get(c)) for c in columns]
        writer.writerow(cells[: draw(st.integers(0, len(cells)))] if draw(sometimes) else cells)
    text = out.getvalue()
    if draw(sometimes):  # a broken quote, a stray NUL or a bare CR, somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "\x00", "\r", '""x"', "\ufeff"])) + text[at:]
    return _encoded(text, draw(ENCODINGS))


@st.composite
def yaml_files(draw: st.DrawFn) -> bytes:
    entries = [_renamed(row, draw(key_style)) for row in draw(rows)]
    shape = draw(
        st.sampled_from(["mapping"] * 3 + ["list"] * 3 + ["entries-not-list", "scalar", "alias-bomb", "python-tag"])
    )
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
    entries = [
        *sample_entries(),
        Entry(key="F-1", question="=1+1 是什么？", answer="第一步\n第二步", tags=("=SUM(A1)", "+1")),
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kb.xlsx"
        write_entries(entries, path, notice="样例")
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
    # The same bytes on every run (derandomized flips must hit the same places): no timestamps.
    core = members["docProps/core.xml"].decode("utf-8")
    members["docProps/core.xml"] = re.sub(r"\d{4}-\d\d-\d\dT[\d:]+Z", "2026-01-01T00:00:00Z", core).encode("utf-8")
    return _zipped(members)


def _zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


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
    (r"</sheetPr>", '</sheetPr><dimension ref="A1:XFD1048576"/>'),  # a lying size
    (r"</sheetData>", ""),  # broken XML
    (r"<row ", '<row r="0" '),  # an impossible row number
    (r"<sheetData>", "<sheetData><!DOCTYPE x [<!ENTITY a 'aaaa'>]>"),  # a DTD where none may be
]


@st.composite
def damaged_workbooks(draw: st.DrawFn) -> bytes:
    data = _workbook()
    how = draw(st.sampled_from(["flip", "truncate", "edit-xml", "drop-member", "zip-field"]))
    if how == "zip-field":  # a central-directory field zipfile refuses (a newer zip version, a compression it lacks)
        buffer = bytearray(data)
        at = data.find(b"PK\x01\x02") + draw(st.sampled_from([6, 10]))  # "version needed", "compression method"
        buffer[at : at + 2] = draw(st.integers(20, 65535)).to_bytes(2, "little")
        return bytes(buffer)
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
    return _zipped(members)
