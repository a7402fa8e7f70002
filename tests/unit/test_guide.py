"""The service guide (办事指南) of an entry: the record, the field catalogue, import and export, the sample data."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import openpyxl
import pytest

from knowledge_base.errors import ImportRejected, InvalidEntry
from knowledge_base.fields import COLUMNS, FIELDS, FIELDS_BY_NAME, GUIDE_FIELDS, Kind, field_for_header
from knowledge_base.plain.aspects import ASPECTS, ASPECTS_BY_NAME, GUIDE_ORDER
from knowledge_base.records import MAX_ASPECT_CHARS, Entry, ServiceGuide
from knowledge_base.transfer import read_entries, write_entries

pytestmark = pytest.mark.unit

SAMPLE_YAML = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample" / "guangdong_kb.yaml"

GUIDE = ServiceGuide(
    conditions="在广东缴存住房公积金的职工",
    materials="身份证原件\n银行卡",
    procedure="1. 在线申请；\n2. 审核；\n3. 到账。",
    time_limit="一般为3个工作日，具体以受理回执为准",
    fees="不收费",
    location="各区服务网点",
    enquiry_phone="12329",
    online="粤省事小程序",
)


def guided_entry(**changes: object) -> Entry:
    entry = Entry(key="GD-GJJ-T1", question="公积金怎么提取？", answer="在线申请提取。", guide=GUIDE)
    return entry.replace(**changes) if changes else entry


# --------------------------------------------------------------------------- the record


def test_the_guide_has_one_text_per_aspect_named_as_the_aspects() -> None:
    assert tuple(GUIDE.as_dict()) == GUIDE_ORDER
    assert {a.name for a in ASPECTS} == set(GUIDE_ORDER)
    assert GUIDE.get("materials") == "身份证原件\n银行卡"
    with pytest.raises(KeyError, match="not an aspect"):
        GUIDE.get("answer")


def test_items_are_the_aspects_with_text_in_guide_order() -> None:
    guide = ServiceGuide(online="粤省事", materials="身份证", fees="  ")
    assert [(a.label, text) for a, text in guide.items()] == [("申请材料", "身份证"), ("网上办理", "粤省事")]
    assert [a.name for a, _ in GUIDE.items()] == list(GUIDE_ORDER)
    assert guide and GUIDE and not ServiceGuide() and not ServiceGuide(fees=" \n ")


def test_aspect_texts_are_trimmed_and_line_breaks_made_plain() -> None:
    guide = ServiceGuide(materials="  身份证\r\n户口簿\r照片  ", online=None)  # type: ignore[arg-type]
    assert guide.materials == "身份证\n户口簿\n照片" and guide.online == ""


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("materials", "身份证\x00", "控制字符"),
        ("fees", "\x1b[31m免费", "控制字符"),
        ("location", "窗口\ud800", "控制字符"),
        ("procedure", "步" * (MAX_ASPECT_CHARS + 1), f"最多 {MAX_ASPECT_CHARS} 个字"),
        ("enquiry_phone", 12345, "必须是文字"),
    ],
)
def test_a_bad_aspect_is_refused_with_its_chinese_name(name: str, value: object, words: str) -> None:
    with pytest.raises(InvalidEntry) as err:
        ServiceGuide(**{name: value})  # type: ignore[arg-type]
    assert err.value.field == name
    assert f"「{ASPECTS_BY_NAME[name].label}」" in err.value.message and words in err.value.message


def test_the_longest_aspect_allowed_is_kept() -> None:
    assert len(ServiceGuide(materials="材" * MAX_ASPECT_CHARS).materials) == MAX_ASPECT_CHARS


def test_an_entry_needs_a_service_guide_record() -> None:
    with pytest.raises(InvalidEntry) as err:
        Entry(question="q", guide={"materials": "身份证"})  # type: ignore[arg-type]
    assert err.value.field == "guide"


def test_round_trip_with_and_without_a_guide() -> None:
    for entry in (guided_entry(), Entry(question="没有办事指南的条目")):
        data = entry.to_dict()
        assert all(data[name] == entry.guide.get(name) for name in GUIDE_ORDER)
        assert Entry.from_dict(json.loads(json.dumps(data, ensure_ascii=False))) == entry
    assert Entry(question="q").content()["materials"] == ""


def test_content_stored_before_the_guide_existed_loads_with_an_empty_guide() -> None:
    old = {k: v for k, v in guided_entry().to_dict().items() if k not in GUIDE_ORDER}
    loaded = Entry.from_dict(old)
    assert loaded.guide == ServiceGuide() and not loaded.guide
    assert loaded.question == "公积金怎么提取？" and loaded.key == "GD-GJJ-T1"


def test_a_changed_aspect_changes_the_content() -> None:
    # the store compares content to tell an unchanged import row from an update
    changed = ServiceGuide.from_mapping({**GUIDE.as_dict(), "fees": "5元"})
    assert guided_entry().content() != guided_entry(guide=changed).content()


# --------------------------------------------------------------------------- the field catalogue


def test_guide_fields_come_from_the_aspects_and_follow_the_answer() -> None:
    assert [(f.name, f.label, f.kind) for f in GUIDE_FIELDS] == [
        (name, ASPECTS_BY_NAME[name].label, Kind.MULTILINE) for name in GUIDE_ORDER
    ]
    assert COLUMNS[:4] == ("id", "question", "similar_questions", "answer")
    assert COLUMNS[4:12] == GUIDE_ORDER
    assert all(FIELDS_BY_NAME[name].imported for name in GUIDE_ORDER)
    assert len({f.label for f in FIELDS}) == len(FIELDS)


@pytest.mark.parametrize("name", GUIDE_ORDER)
def test_guide_headers_are_read_in_chinese_and_english(name: str) -> None:
    label = ASPECTS_BY_NAME[name].label
    assert field_for_header(label) == field_for_header(f" {label} *") == field_for_header(name.upper()) == name


# --------------------------------------------------------------------------- import and export


def _sheet_rows(path: Path) -> list[list[str]]:
    if path.suffix == ".csv":
        return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    workbook = openpyxl.load_workbook(path)
    return [["" if v is None else str(v) for v in row] for row in workbook.worksheets[0].iter_rows(values_only=True)]


def _write_sheet(path: Path, rows: list[list[str]]) -> None:
    if path.suffix == ".csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows(rows)
        return
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_sheet_with_chinese_aspect_headers_imports_and_exports_back_identical(tmp_path: Path, suffix: str) -> None:
    header = ["编号", "标准问", "答案", "申请材料", "办理时限", "收费标准", "咨询电话", "网上办理"]
    row = [
        "GD-T-1",
        "身份证怎么补办？",
        "到户政窗口补领。",
        "本人到场\n采集照片和指纹",
        "约20个工作日",
        "20元",
        "12345",
        "",
    ]
    given = tmp_path / f"given{suffix}"
    _write_sheet(given, [header, row])
    (entry,) = read_entries(given)
    assert entry.guide == ServiceGuide(
        materials="本人到场\n采集照片和指纹", time_limit="约20个工作日", fees="20元", enquiry_phone="12345"
    )
    exported = tmp_path / f"exported{suffix}"
    write_entries([entry], exported)
    rows = _sheet_rows(exported)
    assert rows[0] == [f.label for f in FIELDS]
    by_header = dict(zip(rows[0], rows[1], strict=True))
    assert [by_header[h] for h in header] == row
    assert read_entries(exported) == [entry]


@pytest.mark.parametrize("fmt", ["jsonl", "yaml", "csv", "xlsx"])
def test_guided_entries_round_trip_in_every_format(tmp_path: Path, fmt: str) -> None:
    entries = [guided_entry(), Entry(key="GD-T-2", question="没有办事指南的条目")]
    path = tmp_path / f"kb.{fmt}"
    write_entries(entries, path)
    assert read_entries(path) == entries


@pytest.mark.parametrize(
    ("suffix", "cell", "words"),
    [
        (".csv", "身份证\x07户口簿", "控制字符"),  # a workbook cannot hold control characters at all
        (".csv", "材" * 10_001, f"最多 {MAX_ASPECT_CHARS} 个字"),
        (".xlsx", "材" * 10_001, f"最多 {MAX_ASPECT_CHARS} 个字"),
    ],
)
def test_a_bad_aspect_cell_rejects_the_file_naming_row_and_aspect(
    tmp_path: Path, suffix: str, cell: str, words: str
) -> None:
    path = tmp_path / f"bad{suffix}"
    _write_sheet(path, [["编号", "标准问", "申请材料"], ["T-1", "好问题", "身份证"], ["T-2", "另一个问题", cell]])
    with pytest.raises(ImportRejected) as caught:
        read_entries(path)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (3, "materials")
    assert "「申请材料」" in problem.message and words in problem.message


def test_a_bad_aspect_in_json_lines_is_reported_with_the_others(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    rows = [
        {"id": "T-1", "question": "好问题", "办理地点": "窗口\x00"},
        {"id": "T-2", "question": "", "fees": ["不是", "文字"]},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        read_entries(path)
    found = {(p.row, p.column) for p in caught.value.problems}
    assert {(1, "location"), (2, "fees"), (2, "question")} <= found
    location = next(p for p in caught.value.problems if p.column == "location")
    assert "「办理地点」" in location.message


# --------------------------------------------------------------------------- the sample data


def test_many_sample_entries_carry_a_guide_across_categories() -> None:
    entries = read_entries(SAMPLE_YAML)
    guided = [e for e in entries if e.guide]
    assert len(guided) >= 40
    assert len({e.category for e in guided}) >= 8
    assert all(2 <= len(list(e.guide.items())) <= 7 for e in guided)  # a guide, not a copy of all eight every time
    for entry in guided:
        for _aspect, text in entry.guide.items():
            assert "官方" not in text  # nothing is presented as official


def test_sample_guides_quote_only_hotlines_the_sample_knows() -> None:
    known = {"12345", "12333", "12329", "12366"}
    for entry in read_entries(SAMPLE_YAML):
        numbers = set(re.findall(r"\d{5,}", entry.guide.enquiry_phone))
        assert numbers <= known, (entry.key, numbers)
