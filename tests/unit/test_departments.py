"""The responsibility list (职责清单): its rows, its Excel and CSV import, and the department suggestion.

The list and the imports run on a real SQLite database and real files. The matching tests that claim the
real model use it (``real_embedder``: multilingual-e5-small, as the knowledge base); the fake embedder only
checks the matcher's own rules (floor, region, keyword hits, re-embedding when the list changes).
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from knowledge_base.errors import EntryNotFound, ImportRejected, InvalidEntry
from knowledge_base.orders.book import WorkOrderBook
from knowledge_base.orders.departments import (
    Department,
    DepartmentList,
    DepartmentMatcher,
    describe,
    read_departments,
    split_keywords,
)
from knowledge_base.search.embedder import FakeEmbedder

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample" / "departments.csv"


@pytest.fixture
def departments(db):
    return DepartmentList(db)


@pytest.fixture
def sample(departments):
    departments.import_departments(read_departments(SAMPLE), actor="test")
    return departments


def _csv(tmp_path, text, name="清单.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _xlsx(tmp_path, rows, name="清单.xlsx"):
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def _problems(path, **kwargs):
    with pytest.raises(ImportRejected) as rejected:
        read_departments(path, **kwargs)
    return [describe(p) for p in rejected.value.problems]


# -- rows -----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_add_edit_deactivate_and_list(departments):
    added = departments.add("市林业局", "古树名木保护；林地管理", "古树，林地、古树", actor="r1")
    assert (added.keywords, added.region_name, added.active, added.updated_by) == (("古树", "林地"), "全市", True, "r1")
    assert added.clauses == ("古树名木保护", "林地管理")
    edited = departments.edit(added.id, name="市林业局", duties="古树名木保护", region="禅城区", actor="r2")
    assert (edited.duties, edited.region, edited.keywords, edited.updated_by) == ("古树名木保护", "禅城区", (), "r2")
    assert departments.set_active(added.id, False, actor="r2").active is False
    assert departments.names() == [] and [d.name for d in departments.all()] == ["市林业局"]
    with pytest.raises(EntryNotFound):
        departments.get(999)


@pytest.mark.unit
def test_a_name_is_unique(departments):
    first = departments.add("市林业局", "古树名木保护", actor="r1")
    other = departments.add("市园林局", "公园管理", actor="r1")
    with pytest.raises(InvalidEntry, match="职责清单里已经有“市林业局”"):
        departments.add(" 市林业局 ", "别的职责", actor="r1")
    with pytest.raises(InvalidEntry, match="已经有“市林业局”"):
        departments.edit(other.id, name="市林业局", duties="公园管理", actor="r1")
    assert departments.get(first.id).duties == "古树名木保护"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "", "duties": "x"}, "「部门」不能为空"),
        ({"name": "局", "duties": "  "}, "「职责」不能为空"),
        ({"name": "局" * 61, "duties": "x"}, "「部门」最多 60 个字"),
        ({"name": "……", "duties": "x"}, "「部门」只有标点或符号"),
        ({"name": "局", "duties": "x", "region": "？？"}, "「区域」只有标点或符号"),
        ({"name": "局", "duties": "x", "keywords": tuple(f"词{i}" for i in range(41))}, "「关键词」最多 40 个"),
    ],
)
def test_a_bad_row_is_refused_in_chinese(fields, words):
    with pytest.raises(InvalidEntry, match=words):
        Department(**fields)


@pytest.mark.unit
def test_split_keywords():
    assert split_keywords(" 噪音，施工、夜间 噪音;油烟/废气 ") == ("噪音", "施工", "夜间", "油烟", "废气")
    assert split_keywords(None) == ()


# -- import ---------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_sample_list_imports(sample):
    names = sample.names()
    assert len(names) == 19
    for name in ("市生态环境局", "市住房和城乡建设局", "市公安局", "市医疗保障局", "供电局（公共服务企业）"):
        assert name in names


@pytest.mark.unit
def test_import_csv_adds_and_updates_in_one_go(tmp_path, departments):
    departments.add("市林业局", "旧职责", actor="r1")
    gone = departments.add("市园林局", "公园管理", actor="r1")
    departments.set_active(gone.id, False, actor="r1")
    path = _csv(
        tmp_path, "部门,职责,关键词,区域\n市林业局,古树名木保护,古树,\n市园林局,公园管理,公园,\n市新局,新职责,,南海区\n"
    )
    summary = departments.import_departments(read_departments(path), actor="import")
    assert (summary.added, summary.updated) == (1, 2)
    assert departments.get(gone.id).active  # imported again: active again
    assert [(d.name, d.region) for d in departments.all() if d.name == "市新局"] == [("市新局", "南海区")]


@pytest.mark.unit
def test_import_xlsx_with_other_header_names_and_numbers(tmp_path):
    header = ["部门名称", "职责范围", "关键字", "辖区", "备注"]
    rows = [header, ["市林业局", "古树名木保护", "古树 林地", None, "x"], ["12345 热线", 12345, None, None, None]]
    path = _xlsx(tmp_path, rows)
    rows = read_departments(path)
    assert [(d.name, d.duties, d.keywords) for d in rows] == [
        ("市林业局", "古树名木保护", ("古树", "林地")),
        ("12345 热线", "12345", ()),
    ]


@pytest.mark.unit
def test_a_bad_csv_names_every_bad_row_and_returns_nothing(tmp_path, departments):
    path = _csv(
        tmp_path, "部门,职责,关键词,区域\n市林业局,古树,,\n,没有部门,,\n市林业局,重复,,\n市园林局,,,\n市局,x,,！！\n"
    )
    assert _problems(path) == [
        "清单.csv 第 3 行「部门」：「部门」不能为空",
        "清单.csv 第 4 行「部门」：“市林业局”与第 2 行重复",
        "清单.csv 第 5 行「职责」：「职责」不能为空",
        "清单.csv 第 6 行「区域」：「区域」只有标点或符号，请写明内容",
    ]
    assert departments.all() == []


@pytest.mark.unit
def test_a_bad_xlsx_is_refused_by_row(tmp_path):
    path = _xlsx(tmp_path, [["部门", "职责"], ["市林业局", "=1+1"], ["市园林局", "公园管理"]])
    assert _problems(path, name="林业.xlsx") == [
        "林业.xlsx 第 2 行：单元格是公式（=1+1）；公式不会导入，请直接填写内容"
    ]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("清单.csv", "名称,说明\n甲,乙\n", "缺少必填列「部门」「职责」"),
        ("清单.csv", "部门,职责,部门\n甲,乙,丙\n", "「部门」：列出现了两次"),
        ("清单.csv", "部门,职责\n", "文件是空的：没有找到任何部门"),
        ("清单.csv", "", "文件是空的"),
        ("清单.txt", "部门,职责\n甲,乙\n", "只能从 Excel（.xlsx）或 CSV（.csv）文件导入"),
        ("清单.xlsx", "not a zip", "不是 Excel .xlsx 文件"),
    ],
)
def test_unusable_files_are_refused(tmp_path, name, content, words):
    problems = _problems(_csv(tmp_path, content, name))
    assert len(problems) == 1 and words in problems[0] and problems[0].startswith(name)


@pytest.mark.unit
def test_a_gbk_csv_is_refused_with_advice(tmp_path):
    path = tmp_path / "清单.csv"
    path.write_bytes("部门,职责\n市林业局,古树名木保护\n".encode("gbk"))
    assert "UTF-8" in _problems(path)[0]


# -- matching: the matcher's rules (fake embedder) --------------------------------------------------------


@pytest.mark.unit
def test_region_keywords_floor_and_reason(departments):
    departments.add("市生态环境局", "噪音污染投诉；工业废气排放", "噪音 废气", actor="t")
    departments.add("禅城区祖庙街道办事处", "邻里纠纷调解", "邻里", region="禅城区", actor="t")
    matcher = DepartmentMatcher(departments, FakeEmbedder(), floor=0.0)
    ranked = matcher.rank("噪音污染投诉", "")
    assert [m.department for m in ranked] == ["市生态环境局"]  # a district's office only for its district
    assert ranked[0].keywords == ("噪音",) and ranked[0].clause == "噪音污染投诉"
    assert ranked[0].reason == "职责“噪音污染投诉”与诉求最接近（相似度 100%），命中关键词：噪音"
    local = matcher.rank("邻里纠纷调解", "佛山市禅城区")
    assert local[0].department == "禅城区祖庙街道办事处" and local[0].reason.endswith("辖区：禅城区")
    assert [m.department for m in matcher.rank("邻里纠纷调解", "南海区")] == ["市生态环境局"]
    assert DepartmentMatcher(departments, FakeEmbedder(), floor=2.0).suggest("噪音污染投诉") is None
    assert matcher.suggest("") is None


@pytest.mark.unit
def test_the_list_is_embedded_again_when_it_changes(departments):
    calls: list[int] = []
    fake = FakeEmbedder()

    class Counting:
        name, dim = fake.name, fake.dim

        def encode(self, texts, **kwargs):
            calls.append(len(texts))
            return fake.encode(texts)

    matcher = DepartmentMatcher(departments, Counting(), floor=0.0)
    assert matcher.suggest("噪音") is None and calls == []  # an empty list suggests nothing, embeds nothing
    added = departments.add("市生态环境局", "噪音污染投诉", "噪音", actor="t")
    matcher.suggest("噪音")
    matcher.suggest("废气")
    assert calls == [2, 1, 1]  # the list (one clause + the whole text) once, then each query
    departments.add("市公安局", "电信网络诈骗", actor="t")
    assert matcher.suggest("电信网络诈骗")[0] == "市公安局"
    departments.set_active(added.id, False, actor="t")
    assert [m.department for m in matcher.rank("噪音污染投诉")] == ["市公安局"]


@pytest.mark.unit
def test_the_model_is_asked_for_only_when_needed(departments):
    asked: list[str] = []

    def embedder():
        asked.append("x")
        return FakeEmbedder()

    matcher = DepartmentMatcher(departments, embedder, floor=0.0)
    assert asked == []
    departments.add("市公安局", "电信网络诈骗", actor="t")
    assert matcher.suggest("电信网络诈骗")[0] == "市公安局" and asked


# -- matching with the real model ------------------------------------------------------------------------

COMPLAINTS = [
    ("我要投诉楼下装修噪音太大，晚上十一点还在施工", "市生态环境局", "噪音"),
    ("公司拖欠我三个月工资不发，老板电话也不接", "市人力资源和社会保障局", "工资"),
    ("小区物业乱收停车费，物业服务很差", "市住房和城乡建设局", "物业"),
    ("路边有人占道摆摊卖水果，堵住人行道", "市城市管理和综合执法局", ""),
    ("我家从早上开始停电，已经两个小时了", "供电局（公共服务企业）", "停电"),
    ("超市卖过期牛奶，要求退款被拒绝", "市市场监督管理局", "过期"),
    ("家里水龙头流出来的水是黄的", "市自来水公司（公共服务企业）", ""),
    ("的士司机故意绕路多收钱", "市交通运输局", "绕路"),
    ("孩子明年上小学，学位申请怎么办", "市教育局", "学位"),
    ("有人打电话冒充客服骗了我五千块", "市公安局", ""),
    ("医保在外地看病怎么报销", "市医疗保障局", "医保"),
    ("暴雨后路口积水严重，车都过不去", "市水务局", "积水"),
    ("隔壁工厂排放的废气很臭", "市生态环境局", "废气"),
]


@pytest.fixture
def real_matcher(sample, real_embedder):
    return DepartmentMatcher(sample, real_embedder)


@pytest.mark.integration
@pytest.mark.parametrize(("complaint", "department", "keyword"), COMPLAINTS)
def test_the_real_model_picks_the_right_department(real_matcher, complaint, department, keyword):
    suggestion = real_matcher.suggest(complaint, "")
    assert suggestion is not None and suggestion[0] == department, real_matcher.rank(complaint)[:3]
    reason = suggestion[1]
    assert reason.startswith("职责“") and "与诉求最接近（相似度 " in reason
    if keyword:
        assert f"命中关键词：{keyword}" in reason or (f"、{keyword}" in reason and "命中关键词" in reason)


@pytest.mark.integration
@pytest.mark.parametrize("question", ["我想问一下明天天气怎么样", "你好"])
def test_the_real_model_stays_silent_when_no_department_fits(real_matcher, question):
    assert real_matcher.suggest(question, "") is None, real_matcher.rank(question)[:2]


@pytest.mark.integration
def test_the_real_model_prefers_the_district_office_of_the_order_region(real_matcher):
    suggestion = real_matcher.suggest("楼上邻居总是把杂物堆在楼道里，调解邻里纠纷", "佛山市南海区")
    assert suggestion is not None and suggestion[0] == "南海区桂城街道办事处" and "辖区：南海区" in suggestion[1]


@pytest.mark.integration
def test_a_new_order_gets_the_suggestion_through_the_book(db, sample, real_embedder):
    book = WorkOrderBook(db, suggest=DepartmentMatcher(sample, real_embedder).suggest)
    order = book.create(channel="web", sender_id="s1", description="公司拖欠工资三个月", kind="complaint")
    assert order.suggested_department == "市人力资源和社会保障局"
    assert "拖欠工资和劳动报酬" in order.suggestion_reason and "命中关键词" in order.suggestion_reason


# -- the command line -------------------------------------------------------------------------------------


@pytest.mark.unit
def test_hotline_departments_import_and_list(tmp_path):
    from click.testing import CliRunner

    from hotline.cli import main

    config = tmp_path / "config.yml"
    config.write_text(f"data_dir: {tmp_path / 'var'}\nredis_url: ''\n", encoding="utf-8")
    run = CliRunner().invoke
    imported = run(main, ["--config", str(config), "departments", "import", str(SAMPLE)])
    assert imported.exit_code == 0 and "19 added, 0 updated" in imported.output
    listed = run(main, ["--config", str(config), "departments", "list"])
    assert listed.exit_code == 0 and "市生态环境局\t全市\t噪音" in listed.output
    assert "南海区桂城街道办事处\t南海区" in listed.output
    bad = _csv(tmp_path, "部门,职责\n市林业局,\n")
    refused = run(main, ["--config", str(config), "departments", "import", str(bad)])
    assert refused.exit_code == 1 and "清单.csv 第 2 行「职责」：「职责」不能为空" in refused.output
    assert run(main, ["--config", str(config), "departments", "list"]).output == listed.output
