"""What staff read from the importer and the exporter: Chinese messages, their own file's name, statuses in words."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from knowledge_base.errors import ImportProblem, ImportRejected
from knowledge_base.records import Entry, Status
from knowledge_base.transfer import FORMATS, describe_problem, read_entries, write_entries
from tests.unit.test_transfer import BAD_ROWS, EXTENSION, write_raw

CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_problem_of_a_bad_file_is_said_in_chinese(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"bad{EXTENSION[fmt]}"
    write_raw(fmt, path, BAD_ROWS)
    with pytest.raises(ImportRejected) as caught:
        read_entries(path)
    for problem in caught.value.problems:
        assert CHINESE.search(problem.message), problem
        # No English field key leaks into the words staff read.
        assert not re.search(r"\b(effective_date|expiry_date|policy_url|question|status)\b", problem.message)


def test_problems_name_the_file_the_person_chose_not_the_temporary_copy(tmp_path: Path) -> None:
    path = tmp_path / "upload.csv"
    write_raw("csv", path, [{"id": "A-1", "question": "问题", "effective_date": "2024-13-01"}], chinese=True)
    with pytest.raises(ImportRejected) as caught:
        read_entries(path, name="社保条目（11月）.csv")
    (problem,) = caught.value.problems
    assert problem.file == "社保条目（11月）.csv"
    text = describe_problem(problem)
    assert text.startswith("社保条目（11月）.csv 第 2 行「生效日期」：")
    assert "upload" not in text and "effective_date" not in text


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (ImportProblem("a.xlsx", 7, "expiry_date", "“明年”不是日期"), "a.xlsx 第 7 行「失效日期」：“明年”不是日期"),
        (ImportProblem("a.xlsx", None, None, "文件是空的"), "a.xlsx：文件是空的"),
        (ImportProblem("a.jsonl", 3, None, "不是有效的 JSON"), "a.jsonl 第 3 行：不是有效的 JSON"),
        (ImportProblem("a.csv", 2, "conditions", "太长"), "a.csv 第 2 行「办理条件」：太长"),
    ],
)
def test_a_problem_reads_row_then_chinese_column(problem: ImportProblem, text: str) -> None:
    assert describe_problem(problem) == text


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_spreadsheets_export_the_status_in_words_and_import_reads_both(tmp_path: Path, fmt: str) -> None:
    entries = [
        Entry(question="已发布的问题", key="P-1"),
        Entry(question="归档的问题", key="A-1", status=Status.ARCHIVED),
        Entry(question="草稿问题", key="D-1", status=Status.DRAFT),
    ]
    path = tmp_path / f"kb{EXTENSION[fmt]}"
    write_entries(entries, path)
    if fmt == "csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        import openpyxl

        sheet = openpyxl.load_workbook(path).worksheets[0]
        values = [[c.value for c in row] for row in sheet.iter_rows()]
        rows = [dict(zip(values[0], row, strict=True)) for row in values[1:]]
    assert [r["状态"] for r in rows] == ["已发布", "已归档", "草稿"]
    assert [e.status for e in read_entries(path)] == [Status.PUBLISHED, Status.ARCHIVED, Status.DRAFT]
    english = tmp_path / "english.csv"
    english.write_text("编号,标准问,状态\nE-1,问题一,published\nE-2,问题二,archived\n", encoding="utf-8")
    assert [e.status for e in read_entries(english)] == [Status.PUBLISHED, Status.ARCHIVED]
