"""Unit tests of knowledge_base.search.textnorm: the text normalisation pipeline and its tables."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from knowledge_base.records import Region
from knowledge_base.search.textnorm import MAX_QUERY_CHARS, TABLE_FILES, Normalised, TextNormaliser, truncate

pytestmark = pytest.mark.unit

DATA_DIR = Path(__file__).resolve().parents[2] / "knowledge_base" / "data"


@pytest.fixture(scope="module")
def tn() -> TextNormaliser:
    return TextNormaliser.from_dir()


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


# --------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # full-width letters, digits, spaces and punctuation
        ("ＡＢＣ１２３", "abc123"),
        ("社保卡　怎么办？", "社会保障卡 怎么办"),
        ("１２３４５热线", "12345"),
        # traditional and Hong Kong forms
        ("醫保點樣報銷", "医疗保险怎么报销"),
        ("衞生健康委員會", "卫生健康委员会"),
        ("戶口本裏面", "户口簿里面"),
        # Cantonese
        ("社保卡唔见咗点算", "社会保障卡丢了怎么办"),
        ("点解我嘅公积金冇到账", "为什么我的住房公积金没有到账"),
        ("使唔使预约", "需不需要预约"),
        ("係咪要攞號", "是不是要取号"),
        ("几时可以攞到证", "什么时候可以拿到证"),
        ("边度可以办居住证", "哪里可以办居住证"),
        ("可唔可以网上办", "可不可以网上办"),
        ("我哋公司嘅系统", "我们公司的系统"),
        ("佢哋话要俾钱", "他们话要给钱"),
        ("唔该", ""),
        # mixed scripts
        ("我的ID card丢了", "我的id card丢了"),
        ("粤省事APP怎么登录", "粤省事app怎么登录"),
        # emoji, symbols, control and zero-width characters
        ("社保卡😀丢了", "社会保障卡 丢了"),
        ("\u200b社保\u200d卡\x00", "社会保障卡"),
        ("社保\n卡\t丢了", "社会保险 卡 丢了"),
        ("\ufeff👍🏻🎉", ""),
        ("？！。，《》", ""),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalise(tn: TextNormaliser, text: str, expected: str) -> None:
    assert tn.normalise(text) == expected


def test_traditional_cantonese_question(tn: TextNormaliser) -> None:
    assert "怎么申请港澳通行证" in tn.normalise("請問點樣申請港澳通行證續簽？")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("系统", "系统"),
        ("关系", "关系"),
        ("联系", "联系"),
        ("係統", "系统"),
        ("關係", "关系"),
        ("聯繫", "联系"),
        ("体系", "体系"),
        ("系列", "系列"),
        ("系数", "系数"),
        ("系鞋带", "系鞋带"),
        ("社保关系转移", "社会保险关系转移"),
        ("联系电话", "联系电话"),
        ("係唔係本人办", "是不是本人办"),  # the Cantonese 係 still becomes 是
    ],
)
def test_mandarin_words_with_xi_stay(tn: TextNormaliser, text: str, expected: str) -> None:
    # 係 (Cantonese "is") becomes 系 in simplified script; only a standalone 系 means 是.
    assert tn.normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("在哪个网点办理", "在哪个网点办理"),  # 点办 is Cantonese, 网点 is not
        ("办理地点", "办理地点"),
        ("可以在受理点办理吗", "可以在受理点办理"),
        ("身边个别人", "身边个别人"),  # 边个 is Cantonese, 身边 is not
        ("往返", "往返"),
    ],
)
def test_mandarin_words_with_cantonese_substrings_stay(tn: TextNormaliser, text: str, expected: str) -> None:
    assert tn.normalise(text) == expected


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("社保", "社会保险"),
        ("公积金", "住房公积金"),
        ("医保", "医疗保险"),
        ("驾照", "驾驶证"),
        ("个税", "个人所得税"),
        ("房产证", "不动产权证书"),
        ("退休金", "养老金"),
        ("失业金", "失业保险金"),
        ("户口本", "户口簿"),
        ("出生证", "出生医学证明"),
        ("社保卡", "社会保障卡"),
        ("市民热线", "12345"),
        ("車管所", "车辆管理所"),
    ],
)
def test_synonyms_both_directions(tn: TextNormaliser, variant: str, canonical: str) -> None:
    assert tn.normalise(variant) == canonical
    assert tn.normalise(canonical) == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("社会保险", "社会保险"),
        ("住房公积金", "住房公积金"),
        ("住房公积金和公积金", "住房公积金和住房公积金"),
        ("社保卡和社保", "社会保障卡和社会保险"),
        ("失业保险金", "失业保险金"),
        ("身份证号", "身份证号码"),
        ("医保卡", "医保卡"),  # protected word: not 医疗保险卡
        ("医保局", "医疗保障局"),
    ],
)
def test_synonyms_no_double_rewrite(tn: TextNormaliser, text: str, expected: str) -> None:
    assert tn.normalise(text) == expected


@pytest.mark.parametrize(
    "text",
    ["请问社保卡丢了怎么补办？", "點解我嘅公積金冇到賬", "住房公积金和公积金", "你好，医保局电话几多？", "ID card"],
)
def test_normalise_is_idempotent(tn: TextNormaliser, text: str) -> None:
    once = tn.normalise(text)
    assert tn.normalise(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好，请问社保怎么转移？谢谢！", "社会保险怎么转移"),
        ("我想咨询一下公积金提取", "住房公积金提取"),
        ("可以吗谢谢", "可以"),
        ("啊，社保卡", "社会保障卡"),
        ("附近有酒吧吗", "附近有酒吧"),
        ("酒吧", "酒吧"),
        ("网吧在哪里呀", "网吧在哪里"),
        ("吗啡是什么", "吗啡是什么"),
        ("申请问题", "申请问题"),  # 请问 inside 申请|问题 is not a greeting
        ("哈哈哈哈", ""),
    ],
)
def test_fillers(tn: TextNormaliser, text: str, expected: str) -> None:
    assert tn.normalise(text) == expected


@pytest.mark.parametrize("value", [None, 123, b"bytes", ["社保"]])
def test_non_str_is_refused(tn: TextNormaliser, value: object) -> None:
    with pytest.raises(TypeError):
        tn.normalise(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tn.tokens(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tokens and analyse


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("灵活就业人员怎么交社保", "灵活就业人员"),
        ("生育津贴怎么领", "生育津贴"),
        ("不动产登记中心在哪里", "不动产登记"),
        ("港澳通行證點樣續簽", "港澳通行证"),
        ("个税专项附加扣除", "专项附加扣除"),
        ("粤省事怎么用", "粤省事"),
        ("12345热线的工单", "工单"),
    ],
)
def test_tokens_keep_user_dict_words_whole(tn: TextNormaliser, text: str, word: str) -> None:
    assert word in tn.tokens(text)


def test_tokens_leave_out_punctuation_spaces_and_fillers(tn: TextNormaliser) -> None:
    tokens = tn.tokens("社保呢怎么办？ 谢谢 😀")
    assert "呢" not in tokens
    assert "社会保险" in tokens
    assert all(t.strip() and any(ch.isalnum() for ch in t) for t in tokens)
    assert tn.tokens("") == []
    assert tn.tokens("？？😀") == []


def test_analyse_records_every_step(tn: TextNormaliser) -> None:
    result = tn.analyse("請問點樣申請港澳通行證續簽？")
    assert isinstance(result, Normalised)
    assert [name for name, _ in result.steps] == [
        "clean",
        "nfkc",
        "traditional_to_simplified",
        "cantonese",
        "synonyms",
        "lowercase",
        "fillers",
        "punctuation",
        "whitespace",
    ]
    assert result.steps[-1][1] == result.text == tn.normalise("請問點樣申請港澳通行證續簽？")
    assert list(result.tokens) == tn.tokens("請問點樣申請港澳通行證續簽？")
    assert dict(result.steps)["traditional_to_simplified"] == "请问点样申请港澳通行证续签?"


# --------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我在深圳南山", Region("广东省", "深圳市", "南山区")),
        ("我喺深圳南山區", Region("广东省", "深圳市", "南山区")),
        ("广州", Region("广东省", "广州市", "")),
        ("南山区社保局电话", Region("广东省", "深圳市", "南山区")),
        ("佛山顺德的公积金", Region("广东省", "佛山市", "顺德区")),
        ("穗康码怎么申请", Region("广东省", "广州市", "")),
        ("廣東省居住證", Region("广东省", "", "")),
        ("在广州想问深圳南山的政策", Region("广东省", "广州市", "")),
        ("在中山大学读书", None),  # listed as not a place
        ("香港身份证", None),
        ("社保卡丢了", None),
        ("", None),
    ],
)
def test_extract_region(tn: TextNormaliser, text: str, expected: Region | None) -> None:
    assert tn.extract_region(text) == expected


def test_gazetteer_has_all_cities_and_the_districts_of_guangzhou_and_shenzhen(tn: TextNormaliser) -> None:
    cities = "广州 深圳 珠海 汕头 佛山 韶关 河源 梅州 惠州 汕尾 东莞 中山 江门 阳江 湛江 茂名 肇庆 清远 潮州 揭阳 云浮"
    for city in cities.split():
        assert tn.extract_region(city + "市") == Region("广东省", city + "市", "")
    for district in ["越秀", "荔湾", "海珠", "天河", "白云", "黄埔", "番禺", "花都", "南沙", "从化", "增城"]:
        assert tn.extract_region(district + "区") == Region("广东省", "广州市", district + "区")
    for district in ["福田", "罗湖", "南山", "盐田", "宝安", "龙岗", "龙华", "坪山", "光明"]:
        assert tn.extract_region(district + "区") == Region("广东省", "深圳市", district + "区")


# --------------------------------------------------------------------------- tables and version


def test_version_is_stable_and_follows_the_tables(data_copy: Path) -> None:
    original = TextNormaliser.from_dir(data_copy).version()
    assert original == TextNormaliser.from_dir(DATA_DIR).version()
    _append(data_copy / "synonyms.tsv", "# a comment changes nothing")
    assert TextNormaliser.from_dir(data_copy).version() == original
    _append(data_copy / "synonyms.tsv", "电子社保卡\t电子社会保障卡")
    changed = TextNormaliser.from_dir(data_copy)
    assert changed.version() != original
    assert changed.normalise("电子社会保障卡") == "电子社保卡"


def test_edited_table_takes_effect(data_copy: Path) -> None:
    _append(data_copy / "cantonese.tsv", "靓仔\t帅哥")
    _append(data_copy / "fillers.txt", "劳驾")
    tn = TextNormaliser.from_dir(data_copy)
    assert tn.normalise("劳驾，靚仔") == "帅哥"


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("synonyms.tsv", "社会保险\t\t社保", "empty column"),
        ("synonyms.tsv", "社会保险 社保", "tabs"),
        ("synonyms.tsv", "医疗险\t社保", "already belongs"),
        ("cantonese.tsv", "点样\t怎么\t怎样", "2 tab-separated columns"),
        ("cantonese.tsv", "点样\t怎样", "already mapped"),
        ("fillers.txt", "你好\t您好", "without tabs"),
        ("userdict.txt", "社会保险 many n", "neither a frequency"),
        ("userdict.txt", "社会保险 0 n", "positive"),
        ("regions.tsv", "广东省\t\t南山区\t南山", "填写区县时必须同时填写城市"),
        ("regions.tsv", "广东省\t深圳市", "4 tab-separated columns"),
        ("regions.tsv", "-\t\t\t深圳", "as a place and as not a place"),
    ],
)
def test_malformed_line_names_file_and_line(data_copy: Path, file: str, line: str, message: str) -> None:
    path = data_copy / file
    number = len(path.read_text(encoding="utf-8").split("\n"))  # the appended line's number
    _append(path, line)
    with pytest.raises(ValueError, match=rf"{file} line {number}: .*{message}"):
        TextNormaliser.from_dir(data_copy)


@pytest.mark.parametrize("name", TABLE_FILES)
def test_missing_table(data_copy: Path, name: str) -> None:
    (data_copy / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        TextNormaliser.from_dir(data_copy)


def test_tables_are_plain_text_with_a_comment_header() -> None:
    for name in TABLE_FILES:
        text = (DATA_DIR / name).read_text(encoding="utf-8")
        assert text.startswith("# "), name


# --------------------------------------------------------------------------- truncate


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("社保卡丢了", 3, ("社保卡", True)),
        ("社保卡", 3, ("社保卡", False)),
        ("", 3, ("", False)),
        ("问" * (MAX_QUERY_CHARS + 5), MAX_QUERY_CHARS, ("问" * MAX_QUERY_CHARS, True)),
    ],
)
def test_truncate(text: str, limit: int, expected: tuple[str, bool]) -> None:
    assert truncate(text, limit) == expected


def test_truncate_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError):
        truncate(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        truncate("社保", 0)


# --------------------------------------------------------------------------- loading, threads, speed


def test_nothing_is_loaded_at_import() -> None:
    code = "import sys, knowledge_base.search.textnorm; print('jieba' in sys.modules, 'opencc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_jieba_startup_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    fresh = TextNormaliser.from_dir()
    fresh.tokens("社保卡丢了")
    assert "prefix dict" not in capfd.readouterr().err


def test_threads_share_one_normaliser(tn: TextNormaliser) -> None:
    fresh = TextNormaliser.from_dir()  # jieba not loaded yet: first use races on purpose
    questions = ["社保卡唔见咗点算", "請問點樣申請港澳通行證續簽？", "公积金怎么提取呀"] * 10
    expected = [tn.tokens(q) for q in questions]
    results: dict[int, list[str]] = {}

    def work(i: int) -> None:
        results[i] = fresh.tokens(questions[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(questions))] == expected


def test_speed_of_a_short_question(tn: TextNormaliser) -> None:
    question = "你好，请问社保卡唔见咗点算？要带什么材料去哪里补办呢"
    assert 25 <= len(question) <= 35
    for _ in range(200):
        tn.normalise(question)
        tn.tokens(question)
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        tn.normalise(question)
        tn.tokens(question)
    per_call = (time.perf_counter() - start) / rounds
    print(f"\nnormalise + tokens of a {len(question)}-character question: {per_call * 1e6:.0f} µs")
