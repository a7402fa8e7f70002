"""Dictionaries edited as rows, one field per column, checked before they go live, with every version kept."""

from __future__ import annotations

import re

import pytest

from knowledge_base.errors import InvalidEntry
from knowledge_base.search.dictionaries import COLUMNS, rows_text, table_rows
from tests.web.conftest import sign_in


def _form(client, **fields):
    return {"csrf_token": client.csrf, **fields}


def _rows_form(client, rows, version):
    columns = list(zip(*rows, strict=True))
    return _form(client, version=str(version), **{f"c{i}": list(col) for i, col in enumerate(columns)})


def test_the_page_shows_a_table_as_rows_one_field_per_column(app, fake_kb):
    html = sign_in(app, "reviewer").get("/admin/dictionaries/synonyms.tsv").get_data(as_text=True)
    assert '<th scope="col">其他叫法</th><th scope="col">标准说法</th>' in html
    assert re.search(r'name="c0" value="社保"[^>]*aria-label="第 \d+ 行 其他叫法"', html)
    assert "<textarea" not in html
    html = sign_in(app, "reviewer").get("/admin/dictionaries/userdict.txt").get_data(as_text=True)
    assert "词频（可空）" in html and "词性（可空）" in html


def test_rows_are_saved_checked_applied_and_kept_as_versions(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    store = app.extensions["hotline"].dictionaries
    rows = [*store.table("synonyms.tsv").rows, ("房积金", "住房公积金")]
    reply = reviewer.post("/admin/dictionaries/synonyms.tsv", data=_rows_form(reviewer, rows, 0))
    assert reply.status_code == 302, reply.get_data(as_text=True)
    assert fake_kb.normaliser.normalise("房积金怎么提取") == fake_kb.normaliser.normalise("住房公积金怎么提取")
    saved = store.table("synonyms.tsv")
    assert saved.version == 1 and saved.content.startswith("# 同义词表")  # the format notes are kept
    assert ("房积金", "住房公积金") in saved.rows

    # A row without its canonical term and a repeated one: refused, by row number, nothing changes.
    bad = [*rows, ("房贷", ""), ("房积金", "公积金")]
    reply = reviewer.post("/admin/dictionaries/synonyms.tsv", data=_rows_form(reviewer, bad, 1))
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400
    assert f"第 {len(rows) + 1} 行：请填写「房贷」的标准说法" in html
    assert f"第 {len(rows) + 2} 行：「房积金」已在第 {len(rows)} 行出现" in html
    assert 'value="房贷"' in html  # what was typed comes back
    assert store.table("synonyms.tsv").version == 1

    # History: every version with who and when; restore the default as a new version.
    page = reviewer.get("/admin/dictionaries/synonyms.tsv").get_data(as_text=True)
    assert "第 1 版（当前）" in page and "默认版本" in page and "恢复此版本" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", page.split('id="versions"', 1)[1])
    shown = reviewer.get("/admin/dictionaries/synonyms.tsv?version=1").get_data(as_text=True)
    assert "<td>房积金</td><td>住房公积金</td>" in shown.split('id="shown"', 1)[1]
    reply = reviewer.post("/admin/dictionaries/synonyms.tsv/restore/0", data=_form(reviewer, version="1"))
    assert reply.status_code == 302
    assert store.table("synonyms.tsv").version == 2 and ("房积金", "住房公积金") not in store.table("synonyms.tsv").rows
    assert fake_kb.normaliser.normalise("房积金怎么提取") != fake_kb.normaliser.normalise("住房公积金怎么提取")
    assert [v.version for v in store.versions("synonyms.tsv")] == [2, 1, 0]
    reviewer.post("/admin/dictionaries/synonyms.tsv/restore/1", data=_form(reviewer, version="2"))
    assert ("房积金", "住房公积金") in store.table("synonyms.tsv").rows
    actions = [r["action"] for r in app.extensions["hotline"].accounts.audit_log()]
    assert actions.count("dictionary.restore") == 2 and "dictionary.save" in actions

    # A stale version and an editor are refused.
    stale = reviewer.post("/admin/dictionaries/synonyms.tsv/restore/0", data=_form(reviewer, version="1"))
    assert stale.status_code == 302 and store.table("synonyms.tsv").version == 3
    editor = sign_in(app, "editor")
    assert editor.post("/admin/dictionaries/synonyms.tsv/restore/0", data=_form(editor, version="3")).status_code == 403


@pytest.mark.parametrize("name", list(COLUMNS))
def test_the_shipped_tables_read_as_rows_and_back_to_the_same_words(app, fake_kb, name):
    store = app.extensions["hotline"].dictionaries
    table = store.table(name)
    text, _ = rows_text(name, table.rows)
    assert table_rows(name, text) == table.rows
    assert all(len(row) == len(COLUMNS[name]) for row in table.rows)


@pytest.mark.parametrize(
    ("name", "rows", "words"),
    [
        ("cantonese.tsv", [("点样", "")], "第 1 行：粤语写法和普通话写法都要填写"),
        ("cantonese.tsv", [("点样", "怎么"), ("", ""), ("点样", "如何")], "第 3 行：「点样」已在第 1 行出现"),
        ("userdict.txt", [("社保卡", "十", "n")], "第 1 行：词频必须是正整数"),
        ("userdict.txt", [("社保卡", "", "N1")], "第 1 行：词性只能是小写英文字母"),
        ("userdict.txt", [("社保 卡", "", "")], "第 1 行：请填写词语"),
    ],
)
def test_bad_rows_are_named_by_row_in_chinese(name, rows, words):
    with pytest.raises(InvalidEntry) as refused:
        rows_text(name, rows)
    assert words in refused.value.message


def test_a_row_the_normaliser_refuses_is_named_by_row(app, fake_kb):
    store = app.extensions["hotline"].dictionaries
    rows = [*store.table("cantonese.tsv").rows, ("點樣", "如何")]  # 点样 once made simplified
    with pytest.raises(InvalidEntry) as refused:
        store.save_rows("cantonese.tsv", rows, expected_version=0, author="t")
    assert f"第 {len(rows)} 行未通过检查" in refused.value.message
