"""The ``hotline`` command end to end, on the real model, FAISS and a SQLite file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hotline.cli import main
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(model_dir, tmp_path_factory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("cli-data")
    return {
        "HOTLINE_DATA_DIR": str(data),
        "HOTLINE_MODEL_DIR": str(model_dir),
        "HOTLINE_CONFIG": str(REPO / "config.yml"),
    }


@pytest.fixture(scope="module")
def hotline(env):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    result = run("setup")
    assert result.exit_code == 0, result.output
    assert "sample knowledge base imported" in result.output
    return run


def test_help_lists_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("search", "import", "export", "calibrate", "bench", "model", "setup", "ask"):
        assert command in result.output


def test_search_explain_shows_every_step(hotline):
    result = hotline("search", "請問社保卡唔見咗點樣補辦？", "--explain")
    assert result.exit_code == 0, result.output
    out = result.output
    for label in ("decision:", "normalised:", "tokens:", "why:", "matched phrasing:", "dense", "lexical"):
        assert label in out
    assert "社会保障卡" in out  # synonyms and traditional characters normalised


def test_search_json(hotline):
    data = json.loads(hotline("search", "公积金怎么提取", "--region", "深圳", "--json").stdout)
    assert data["decision"] in ("answer", "clarify", "no_answer") and data["hits"]
    assert data["kb_version"] >= 1


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_exits_2(hotline, question):
    result = hotline("search", question)
    assert result.exit_code == 2 and "empty" in result.output


def test_long_question_is_truncated_with_a_notice(hotline):
    result = hotline("search", "社保怎么查" * 2000)
    assert result.exit_code == 0 and "问题过长" in result.output


def test_bad_import_reports_row_and_column_and_writes_nothing(hotline, tmp_path):
    status = json.loads(hotline("index", "status").stdout)
    bad = tmp_path / "bad.csv"
    bad.write_text("编号,标准问,答案,生效日期\nNEW-1,新问题,答案,2024-13-45\nNEW-2,,答案,\n", encoding="utf-8")
    result = hotline("import", str(bad))
    assert result.exit_code == 2
    assert "row 2, column effective_date" in result.output and "row 3, column question" in result.output
    assert json.loads(hotline("index", "status").stdout)["database_kb_version"] == status["database_kb_version"]


def test_export_then_import_changes_nothing(hotline, tmp_path):
    for suffix in ("xlsx", "csv", "jsonl", "yaml"):
        path = tmp_path / f"kb.{suffix}"
        assert hotline("export", str(path)).exit_code == 0
        result = hotline("import", str(path))
        assert result.exit_code == 0, result.output
        assert " 0 added, 0 updated" in result.output


def test_import_then_search_finds_the_new_entry(hotline, tmp_path):
    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps(
            {
                "id": "NEW-EBIKE",
                "question": "电动自行车怎么上牌照",
                "similar_questions": ["电瓶车在哪里登记上牌"],
                "answer": "到交警部门的登记点办理。",
                "department": "市公安局交通警察支队",
            },
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    assert hotline("import", str(new)).exit_code == 0
    data = json.loads(hotline("search", "电瓶车上牌去哪里", "--json").stdout)
    assert data["hits"][0]["id"] == "NEW-EBIKE"


def test_config_lists_every_setting(hotline):
    from knowledge_base.settings import setting_help

    out = hotline("config").output
    assert all(name in out for name in setting_help())


def test_index_status_matches_database(hotline):
    status = json.loads(hotline("index", "status").stdout)
    assert status["kb_version"] == status["database_kb_version"] and status["entries_indexed"] > 150


def test_setup_is_idempotent(hotline):
    result = hotline("setup")
    assert result.exit_code == 0 and "sample knowledge base imported" not in result.output


def test_bench_scale_small(hotline):
    result = hotline("bench", "scale", "--sizes", "2000", "--queries", "20", "--json")
    rows = json.loads(result.stdout)["rows"]
    assert {r["index_type"] for r in rows} == {"flat", "hnsw"} and rows[1]["recall_at_10_vs_flat"] > 0.5


def test_model_folder_is_reported_missing_clearly(tmp_path):
    env = {"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_MODEL_DIR": str(tmp_path / "nothing")}
    result = CliRunner().invoke(main, ["search", "社保"], env=env)
    assert result.exit_code != 0 and "hotline model build" in result.output


def test_unknown_setting_in_config_is_a_usage_error(tmp_path):
    bad = tmp_path / "config.yml"
    bad.write_text("answer_treshold: 0.9\n")
    result = CliRunner().invoke(main, ["--config", str(bad), "search", "社保"])
    assert result.exit_code == 2 and "unknown setting" in result.output
