"""Import and export of entries: round trips, the benchmark files and every refused input."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
import yaml

from knowledge_base import transfer
from knowledge_base.errors import ImportProblem, ImportRejected
from knowledge_base.fields import FIELDS, FIELDS_BY_NAME
from knowledge_base.records import Entry, PolicyBasis, Region, Status
from knowledge_base.transfer import CHINESE_NAMES, COLUMNS, FORMATS, detect_format, read_entries, write_entries

pytestmark = pytest.mark.unit

SAMPLE_YAML = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample" / "guangdong_kb.yaml"
GBK_MESSAGE = (
    "文件不是 UTF-8 编码（看起来是 GBK/GB18030）：请另存为 UTF-8，或选择按 GBK 编码导入（命令行加 --encoding gbk）"
)
EXTENSION = {"jsonl": ".jsonl", "csv": ".csv", "xlsx": ".xlsx", "yaml": ".yaml"}
HEADER_ROWS = {"jsonl": 0, "csv": 1, "xlsx": 1, "yaml": 0}  # data row i (0-based) is reported as i + 1 + this


def full_entries() -> list[Entry]:
    return [
        Entry(
            key="GD-SB-001",
            question="社保怎么转移？",
            similar_questions=("社保关系转移怎么办；流程是？", "跨省转社保, 需要什么材料"),
            answer="第一步：登录广东政务服务网。\n第二步：提交《申请表》。\n\n咨询电话：+86 20 12345",
            department="广州市人力资源和社会保障局",
            category="社保",
            regions=(Region("广东省", "深圳市", "南山区"), Region("广东省")),
            policy=PolicyBasis("《广东省社会保险条例》", "粤府〔2024〕12号", "https://www.gd.gov.cn/a?b=1&c=2"),
            effective_date=date(2024, 1, 1),
            expiry_date=date(2026, 12, 31),
            status=Status.IN_REVIEW,
            tags=("社保", "转移"),
            version=3,
            updated_by="张三",
            updated_at=datetime(2025, 3, 4, 5, 6, 7),
        ),
        Entry(
            key="1001",
            question="=1+1 是什么？",
            answer="+86 12345 热线",
            similar_questions=("-负数开头", "@某人"),
            department="'=引号加等号",
            category="'普通引号",
            policy=PolicyBasis(number="-2024-"),
            tags=("=SUM(A1)", "+1"),
            status=Status.DRAFT,
        ),
        Entry(
            key="msga-3",
            question="<script>alert('x')</script>",
            answer="'; DROP TABLE entries; --\n<b>粗体</b> & &amp;",
            status=Status.ARCHIVED,
        ),
        Entry(question="只有问题"),
        Entry(key="sep", question="行分隔符\u2028在中间", answer="甲\u2028乙\u2029丙  行尾空格  \n    缩进行\n\n末行"),
    ]


def stored_fields_cleared(entries: list[Entry]) -> list[Entry]:
    return [e.replace(version=0, updated_by="", updated_at=None) for e in entries]


def write_raw(fmt: str, path: Path, rows: list[dict[str, object]], *, chinese: bool = False) -> None:
    """Write rows as given (invalid values included) in ``fmt``; lists become one line per item in sheets."""
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return
    if fmt == "yaml":
        path.write_text(yaml.safe_dump({"entries": rows}, allow_unicode=True), encoding="utf-8")
        return
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    header = [CHINESE_NAMES[c] if chinese else c for c in columns]
    table = [[("\n".join(v) if isinstance(v, list) else v) for v in (r.get(c, "") for c in columns)] for r in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *table])
        path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        return
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in table:
        sheet.append(row)
    workbook.save(path)


def rejected(path: Path, **kwargs: str) -> list[ImportProblem]:
    with pytest.raises(ImportRejected) as caught:
        read_entries(path, **kwargs)
    assert caught.value.problems, "ImportRejected without problems"
    return caught.value.problems


def where(problems: list[ImportProblem]) -> list[tuple[int | None, str | None]]:
    return sorted(((p.row, p.column) for p in problems), key=lambda rc: (rc[0] or 0, rc[1] or ""))


# --------------------------------------------------------------------------- round trip


def test_columns_are_the_keys_of_to_dict() -> None:
    assert list(Entry(question="q").to_dict()) == list(COLUMNS)
    assert set(CHINESE_NAMES) == set(COLUMNS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_lossless(tmp_path: Path, fmt: str) -> None:
    entries = full_entries()
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    assert write_entries(entries, path, notice="示例数据，非真实政策") == len(entries)
    assert read_entries(path) == stored_fields_cleared(entries)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_knowledge_base_round_trips_in_every_format(tmp_path: Path, fmt: str) -> None:
    # real similar questions hold "，" and "、": they must come back whole, tags and regions item by item
    entries = read_entries(SAMPLE_YAML)
    assert any("，" in q for e in entries for q in e.similar_questions)
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_entries(entries, path)
    assert read_entries(path) == entries
    write_entries(read_entries(path), path)
    assert read_entries(path) == entries


def test_export_headers_are_the_field_labels(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    write_entries(full_entries()[:1], path)
    header = next(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert header == [f.label for f in FIELDS]


@pytest.mark.parametrize("fmt", FORMATS)
def test_list_cells_split_by_the_field_rule_in_every_format(tmp_path: Path, fmt: str) -> None:
    row = {
        "question": "社保怎么转移？",
        "similar_questions": "社保，怎么转移？\n身份证、户口本丢了",
        "regions": "广东省/深圳市、广东省/广州市",
        "tags": "社保，转移; 医保\n公积金",
    }
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_raw(fmt, path, [row], chinese=True)
    (entry,) = read_entries(path)
    assert entry.similar_questions == ("社保，怎么转移？", "身份证、户口本丢了")
    assert entry.regions == (Region("广东省", "深圳市"), Region("广东省", "广州市"))
    assert entry.tags == ("社保", "转移", "医保", "公积金")
    for name in ("similar_questions", "regions", "tags"):
        assert FIELDS_BY_NAME[name].split(row[name]) == tuple(map(str, getattr(entry, name)))


@pytest.mark.parametrize("fmt", ["jsonl", "yaml"])
def test_list_items_follow_the_same_rule_as_cells(tmp_path: Path, fmt: str) -> None:
    row = {"question": "问", "similar_questions": ["一，二", "三"], "tags": ["社保，转移", "医保"]}
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_raw(fmt, path, [row])
    (entry,) = read_entries(path)
    assert (entry.similar_questions, entry.tags) == (("一，二", "三"), ("社保", "转移", "医保"))


def test_old_form_labels_are_accepted_as_headers(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_text("标准问题,政策文件,政策链接\n问,《条例》,https://x.gov.cn\n", encoding="utf-8")
    (entry,) = read_entries(path)
    assert (entry.question, entry.policy) == ("问", PolicyBasis("《条例》", "", "https://x.gov.cn"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_carries_the_store_fields_but_import_ignores_them(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_entries(full_entries()[:1], path)
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(path).worksheets[0]
        content = "\n".join(str(c.value) for row in sheet.iter_rows() for c in row)
    else:
        content = path.read_text(encoding="utf-8-sig")
    assert "张三" in content and "2025-03-04T05:06:07" in content
    (entry,) = read_entries(path)
    assert (entry.version, entry.updated_by, entry.updated_at, entry.id) == (0, "", None, None)


def test_csv_export_has_chinese_header_bom_and_formula_guard(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    write_entries(full_entries(), path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    assert rows[0] == [CHINESE_NAMES[c] for c in COLUMNS]
    second = dict(zip(COLUMNS, rows[2], strict=True))
    assert second["question"] == "'=1+1 是什么？"
    assert second["answer"] == "'+86 12345 热线"
    assert second["department"] == "''=引号加等号"
    assert second["category"] == "'普通引号"  # no formula character after it: left alone
    assert second["similar_questions"] == "'-负数开头\n@某人"
    assert second["tags"] == "'=SUM(A1)\n+1"


def test_xlsx_export_writes_explicit_strings_and_a_notice_sheet(tmp_path: Path) -> None:
    path = tmp_path / "kb.xlsx"
    write_entries(full_entries(), path, notice="示例数据")
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert {c.data_type for c in cells} == {"s"}
    assert [c.value for c in sheet[1]] == [CHINESE_NAMES[c] for c in COLUMNS]
    assert sheet.cell(row=3, column=COLUMNS.index("question") + 1).value == "'=1+1 是什么？"
    assert sheet.cell(row=3, column=COLUMNS.index("id") + 1).value == "1001"
    assert workbook.sheetnames == ["知识库", "说明"]
    assert workbook["说明"]["A1"].value == "示例数据"


def test_yaml_export_has_notice_and_entries(tmp_path: Path) -> None:
    path = tmp_path / "kb.yml"
    write_entries(full_entries(), path, notice="示例数据")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["notice"] == "示例数据"
    assert data["entries"][0]["id"] == "GD-SB-001"
    assert "answer: |" in path.read_text(encoding="utf-8")  # multi-line answers stay readable


def test_write_replaces_atomically_and_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "kb.xlsx"
    write_entries(full_entries()[:2], path)
    before = path.read_bytes()
    too_long = Entry(question="很长", similar_questions=tuple(f"{i:03d}" + "问" * 497 for i in range(70)))
    with pytest.raises(ValueError, match="32,767"):
        write_entries([too_long], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["kb.xlsx"]
    assert write_entries(iter(full_entries()), path) == 5
    assert len(read_entries(path)) == 5


def test_write_fails_cleanly_in_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_entries(full_entries(), tmp_path / "missing" / "kb.jsonl")


# --------------------------------------------------------------------------- formats and options


@pytest.mark.parametrize(
    ("name", "explicit", "expected"),
    [
        ("kb.jsonl", None, "jsonl"),
        ("kb.csv", None, "csv"),
        ("kb.XLSX", None, "xlsx"),
        ("kb.yaml", None, "yaml"),
        ("kb.yml", None, "yaml"),
        ("kb.txt", "csv", "csv"),
        ("kb.csv", ".YML", "yaml"),
    ],
)
def test_detect_format(name: str, explicit: str | None, expected: str) -> None:
    assert detect_format(Path(name), explicit) == expected


@pytest.mark.parametrize(("name", "explicit"), [("kb.txt", None), ("kb.xls", None), ("kb", None), ("kb.csv", "tsv")])
def test_detect_format_refuses_unknown_formats(name: str, explicit: str | None) -> None:
    with pytest.raises(ValueError, match="可用：jsonl, csv, xlsx, yaml"):
        detect_format(Path(name), explicit)


def test_unknown_encoding_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_text("标准问\n问题\n", encoding="utf-8")
    with pytest.raises(ValueError, match="未知编码"):
        read_entries(path, encoding="klingon")


def test_jsonl_ignores_unknown_keys_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    good = json.dumps({"id": "a", "question": "问", "kind": "faq", "dept": "x"}, ensure_ascii=False)
    path.write_text(f"{good}\n\n{{not json\n[1, 2]\n" + json.dumps({"answer": "no question"}) + "\n", encoding="utf-8")
    problems = rejected(path)
    assert where(problems) == [(3, None), (4, None), (5, "question")]
    assert "不是有效的 JSON" in problems[0].message
    assert "JSON 对象" in problems[1].message


def test_jsonl_with_chinese_keys_and_list_as_text(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    row = {"编号": "a", "标准问": "问", "相似问法": "问法一\n问法二", "状态": "已发布", "tags": ["x", 2024]}
    path.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    (entry,) = read_entries(path)
    assert entry.similar_questions == ("问法一", "问法二")
    assert entry.tags == ("x", "2024")
    assert entry.status is Status.PUBLISHED


def test_jsonl_key_given_twice_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(json.dumps({"question": "a", "标准问": "b"}, ensure_ascii=False), encoding="utf-8")
    assert where(rejected(path)) == [(1, "question")]


def test_yaml_accepts_mapping_bare_list_dates_and_numbers(tmp_path: Path) -> None:
    mapping = tmp_path / "kb.yaml"
    mapping.write_text(
        "notice: 示例数据\nentries:\n"
        "  - id: 1001\n    question: 问题\n    effective_date: 2024-01-01\n"
        "    expiry_date: '2025-06-30'\n    tags: 单个标签\n    policy_number: 2024\n"
        "    version: 7\n    updated_at: 2020-01-01 10:00:00\n",
        encoding="utf-8",
    )
    (entry,) = read_entries(mapping)
    assert (entry.key, entry.effective_date, entry.expiry_date) == ("1001", date(2024, 1, 1), date(2025, 6, 30))
    assert (entry.tags, entry.policy.number, entry.version) == (("单个标签",), "2024", 0)
    bare = tmp_path / "bare.yml"
    bare.write_text("- question: 一\n- question: 二\n  标签: [甲, 乙]\n", encoding="utf-8")
    assert [e.question for e in read_entries(bare)] == ["一", "二"]


@pytest.mark.parametrize(
    ("content", "expected", "text"),
    [
        ("notice: 只有说明\n", [(None, "entries")], "需要一个 entries 条目列表"),
        ("entries: 文本\n", [(None, "entries")], "必须是条目列表"),
        ("entries:\n  - 只是文本\n  - question: 好\n", [(1, None)], "必须是“字段: 值”的映射"),
        ("entries: [\n", [(None, None)], "不是有效的 YAML"),
        ("- !!python/object/apply:os.system ['echo hacked']\n", [(None, None)], "不是有效的 YAML"),
        ("- question: yes\n  answer: true\n", [(1, "answer"), (1, "question")], "真/假值"),
    ],
)
def test_yaml_structure_problems(
    tmp_path: Path, content: str, expected: list[tuple[int | None, str | None]], text: str
) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text(content, encoding="utf-8")
    problems = rejected(path)
    assert where(problems) == expected
    assert text in problems[0].message


def test_sheets_convert_numbers_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "kb.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["编号", "标准问", "分类", "文号", "生效日期", "失效日期", "标签", "备注"])
    sheet.append([1001, 12345, 12.5, 2024.0, datetime(2024, 1, 1), "2025/6/30", "甲\n\n乙\n", "ignored"])
    sheet.append([None, "第二条", None, None, date(2024, 2, 1), None, 7, None])
    workbook.save(path)
    first, second = read_entries(path)
    assert (first.key, first.question, first.category, first.policy.number) == ("1001", "12345", "12.5", "2024")
    assert (first.effective_date, first.expiry_date, first.tags) == (date(2024, 1, 1), date(2025, 6, 30), ("甲", "乙"))
    assert (second.key, second.effective_date, second.tags) == ("", date(2024, 2, 1), ("7",))


def test_csv_apostrophe_is_stripped_only_before_formula_characters(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_text("标准问,答案,分类\n'+86 热线,'普通,''=x\n", encoding="utf-8")
    (entry,) = read_entries(path)
    assert (entry.question, entry.answer, entry.category) == ("+86 热线", "'普通", "'=x")


@pytest.mark.parametrize("chinese", [False, True])
def test_csv_rows_are_counted_as_a_spreadsheet_shows_them(tmp_path: Path, chinese: bool) -> None:
    path = tmp_path / "kb.csv"
    rows: list[dict[str, object]] = [
        {"id": "a", "question": "多行\n问题", "answer": "一\n二\n三"},
        {"id": "b", "question": "好", "status": "bad"},
    ]
    write_raw("csv", path, rows, chinese=chinese)
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r\n\r\n", 1))  # a blank row after the header
    assert where(rejected(path)) == [(4, "status")]


def test_hostile_text_is_kept_as_is(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    answer = "<img src=x onerror=alert(1)> ' OR 1=1; DROP TABLE entries; -- {{7*7}} ${jndi:x}"
    path.write_text(json.dumps({"question": "<script>alert(1)</script>", "answer": answer}), encoding="utf-8")
    (entry,) = read_entries(path)
    assert (entry.question, entry.answer) == ("<script>alert(1)</script>", answer)


def test_sample_knowledge_base_reads() -> None:
    entries = read_entries(SAMPLE_YAML)
    assert len(entries) >= 150
    assert all(len(e.similar_questions) >= 3 and "示例数据" in e.tags for e in entries)


# --------------------------------------------------------------------------- bad cells


BAD_ROWS: list[dict[str, object]] = [
    {"id": "A-1", "question": "好问题", "answer": "好答案"},
    {"id": "A-2", "question": "日期错", "effective_date": "2024-13-01"},
    {"id": "A-3", "question": "状态错", "status": "live"},
    {"id": "A-4", "question": "地区错", "regions": ["广东省", "广东省/深圳市/南山区/粤海街道"]},
    {"id": "A-5", "question": "控制符", "answer": "坏\x7f字符"},
    {"id": "A-6", "question": "问" * 2001},
    {"id": "A-1", "question": "重复编号"},
    {"id": "A-8", "question": ""},
    {"id": "A-9", "question": "链接错", "policy_url": "javascript:alert(1)"},
    {"id": "A-10", "question": "日期倒置", "effective_date": "2024-05-01", "expiry_date": "2024-01-01"},
    {"id": "A 11", "question": "多处错", "expiry_date": "明年", "status": "?", "department": "部" * 101},
    {"id": "A-12", "question": "<script>alert('x')</script>", "answer": "'; DROP TABLE entries; --"},
    {"id": "A-13", "question": "文号太长", "policy_number": "号" * 101, "policy_title": "题" * 301},
]
BAD_CELLS = [
    (1, "effective_date"),
    (2, "status"),
    (3, "regions"),
    (4, "answer"),
    (5, "question"),
    (6, "id"),
    (7, "question"),
    (8, "policy_url"),
    (9, "expiry_date"),
    (10, "department"),
    (10, "expiry_date"),
    (10, "id"),
    (10, "status"),
    (12, "policy_number"),
    (12, "policy_title"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_bad_cell_is_reported_with_row_and_column(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"bad{EXTENSION[fmt]}"
    write_raw(fmt, path, BAD_ROWS)
    problems = rejected(path)
    offset = 1 + HEADER_ROWS[fmt]
    assert where(problems) == [(i + offset, column) for i, column in BAD_CELLS]
    assert {p.file for p in problems} == {path.name}
    by_cell = {(p.row, p.column): p.message for p in problems}
    assert by_cell[(6 + offset, "id")] == f"编号“A-1”与第 {offset} 行重复"
    assert "有 2001 个字" in by_cell[(5 + offset, "question")]
    assert "控制字符" in by_cell[(4 + offset, "answer")]
    assert "早于生效日期" in by_cell[(9 + offset, "expiry_date")]
    assert "YYYY-MM-DD" in by_cell[(1 + offset, "effective_date")]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_missing_required_column_is_one_problem(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_raw(fmt, path, [{"id": "a", "answer": "答案"}, {"id": "b", "answer": "答案"}], chinese=True)
    assert rejected(path) == [ImportProblem(path.name, 1, "question", "缺少必填列「标准问」")]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_column_given_twice_is_reported(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    rows = [["question", "标准问 *"], ["a", "b"]]
    if fmt == "csv":
        path.write_text("question,标准问 *\na,b\n", encoding="utf-8")
    else:
        workbook = openpyxl.Workbook()
        for row in rows:
            workbook.active.append(row)
        workbook.save(path)
    assert where(rejected(path)) == [(1, "question")]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("kb.jsonl", b""),
        ("kb.jsonl", b"\n  \n\n"),
        ("kb.csv", b""),
        ("kb.csv", "编号,标准问,答案\r\n".encode()),
        ("kb.csv", "\ufeff标准问\n\n,\n".encode()),
        ("kb.yaml", b""),
        ("kb.yaml", "notice: 说明\nentries: []\n".encode()),
        ("kb.yaml", b"entries:\n"),
        ("kb.xlsx", b""),
    ],
)
def test_empty_files_are_rejected(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert rejected(path) == [ImportProblem(name, None, None, "文件是空的：没有找到任何条目")]


@pytest.mark.parametrize("header_only", [False, True])
def test_empty_workbooks_are_rejected(tmp_path: Path, header_only: bool) -> None:
    path = tmp_path / "kb.xlsx"
    workbook = openpyxl.Workbook()
    if header_only:
        workbook.active.append(["编号", "标准问"])
    workbook.save(path)
    assert rejected(path) == [ImportProblem("kb.xlsx", None, None, "文件是空的：没有找到任何条目")]


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "yaml"])
def test_gbk_is_refused_unless_asked_for(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_raw(fmt, path, [{"id": "a", "question": "社保怎么转移", "answer": "登录网站办理"}])
    path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
    assert rejected(path) == [ImportProblem(path.name, None, None, GBK_MESSAGE)]
    for encoding in ("gbk", "GB18030"):
        (entry,) = read_entries(path, encoding=encoding)
        assert (entry.key, entry.question, entry.answer) == ("a", "社保怎么转移", "登录网站办理")


def test_bytes_that_are_neither_utf8_nor_gbk_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_bytes("标准问\n问题\n".encode() + b"\xff\xff\xff\n")
    (problem,) = rejected(path)
    assert problem.message.startswith("不是 UTF-8 编码（第 3 行有无效字节 0xff）")


def test_a_workbook_renamed_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    write_entries(full_entries(), tmp_path / "kb.xlsx")
    (tmp_path / "kb.xlsx").rename(path)
    (problem,) = rejected(path)
    assert "Excel 工作簿" in problem.message


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "yaml"])
def test_utf8_with_bom_is_accepted(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_raw(fmt, path, [{"id": "a", "question": "问题"}], chinese=True)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    (entry,) = read_entries(path)
    assert (entry.key, entry.question) == ("a", "问题")


# --------------------------------------------------------------------------- Excel safety and limits


def test_excel_formulas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "kb.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["编号", "标准问", "答案", "分类"])
    sheet.append(["a", "问题一", "=1+1", "好"])
    sheet.append(["b", "问题二", "好", None])
    text_cell = sheet.cell(row=3, column=4, value='=HYPERLINK("http://x")')
    text_cell.data_type = "s"
    sheet.append(["c", "问题三", "'=1+1", "'+86"])  # our own export's guard: fine
    workbook.save(path)
    problems = rejected(path)
    assert where(problems) == [(2, "answer"), (3, "category")]
    assert all("公式" in p.message for p in problems)


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("编号,标准问\nA-1,问题\n".encode(), "不是 Excel .xlsx 文件"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "旧版 Excel .xls"),
        ("zip without workbook", "没有工作簿"),
        ("broken workbook", "无法读取这个 Excel .xlsx 文件"),
    ],
)
def test_files_that_are_not_workbooks_are_refused(tmp_path: Path, content: bytes | str, text: str) -> None:
    path = tmp_path / "kb.xlsx"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "hello")
            if content == "broken workbook":
                archive.writestr("[Content_Types].xml", "<Types")
                archive.writestr("xl/workbook.xml", "<workbook")
    (problem,) = rejected(path)
    assert (problem.row, problem.column) == (None, None)
    assert text in problem.message


def test_workbook_that_unpacks_too_big_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kb.xlsx"
    write_entries(full_entries(), path)
    monkeypatch.setattr(transfer, "MAX_XLSX_UNPACKED_BYTES", 1_000)
    (problem,) = rejected(path)
    assert "解压后" in problem.message


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_over_the_size_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_entries(full_entries(), path)
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 100)
    (problem,) = rejected(path)
    assert (problem.row, problem.column) == (None, None)
    assert problem.message.startswith("文件太大")


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_over_the_row_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_entries(full_entries(), path)
    monkeypatch.setattr(transfer, "MAX_ROWS", 3)
    (problem,) = rejected(path)
    assert (problem.row, problem.column) == (4 + HEADER_ROWS[fmt], None)
    assert problem.message == "超过 3 条，请把文件拆开分批导入"


def test_problem_report_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text('{"question": ""}\n' * 1_500, encoding="utf-8")
    problems = rejected(path)
    assert len(problems) == 1_000
    assert [(p.row, p.column) for p in problems[:999]] == [(i, "question") for i in range(1, 1_000)]
    assert "问题太多" in problems[-1].message


def test_import_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write_raw("csv", path, BAD_ROWS)
    before = sorted(os.listdir(tmp_path))
    rejected(path)
    assert sorted(os.listdir(tmp_path)) == before
