"""The real thing: the ONNX export of multilingual-e5-small gives sentence-transformers' vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hotline.model_build import export_onnx, onnx_is_current
from knowledge_base.search.embedder import OnnxEmbedder, SentenceTransformerEmbedder, make_embedder
from knowledge_base.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Short and long, simplified and traditional, Mandarin and Cantonese, with digits, Latin letters and
# punctuation: the kinds of text the hotline's questions and phrasings are.
SENTENCES = [
    "社保卡丢了怎么补办",
    "怎么查询社保缴费记录",
    "新冠疫苗第三针什么时候可以打？",
    "核酸检测结果多久能出来",
    "去香港需要隔离几天",
    "公积金提取需要什么材料",
    "我是外地户口，在广州工作了三年，想买房，请问公积金贷款额度怎么算，需要准备哪些材料，去哪里办理？",
    "居住证到期了怎么续签",
    "小孩上学需要哪些证明",
    "失业金怎么领",
    "请问办理护照要多久",
    "医保异地就医怎么备案",
    "請問居住證點樣辦理",
    "我哋屋企附近有冇核酸檢測點啊",
    "點解我張社保卡用唔到",
    "佢話要預約先可以打疫苗，係咪真㗎",
    "身份證唔見咗點算好",
    "請問醫保報銷比例係幾多",
    "12345热线几点上班",
    "ETC卡怎么办理",
    "COVID-19 vaccine booster appointment",
    "我想问下，嗯，那个，就是退休金什么时候发？",
    "吗",
    "？？？",
    "新生儿落户需要带什么材料去派出所办理，父母双方都要到场吗，外地户口可以吗",
    "疫情期间" * 150,
    "我想咨询一下公积金提取的问题，" * 60,  # past 512 tokens: cut as sentence-transformers cuts it
    "隔离酒店的费用由谁承担",
    "粤康码变黄码了怎么办",
    "出租屋的租客需要登记吗",
]


@pytest.fixture(scope="module")
def onnx_embedder(model_dir: Path) -> OnnxEmbedder:
    export_onnx(model_dir, progress=False)  # a no-op on a current export
    embedder = OnnxEmbedder(model_dir)
    embedder.load()
    return embedder


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def test_one_at_a_time_matches_sentence_transformers(onnx_embedder, real_embedder, record_property) -> None:
    expected = real_embedder.encode(SENTENCES)
    got = np.vstack([onnx_embedder.encode([s]) for s in SENTENCES])
    cosines = _cosines(got, expected)
    record_property("min_cosine", float(cosines.min()))
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), 384)
    assert cosines.min() >= 0.9999, dict(zip(SENTENCES, cosines.round(6).tolist(), strict=True))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batches_with_padding_match_and_keep_their_order(onnx_embedder, real_embedder) -> None:
    expected = real_embedder.encode(SENTENCES)
    for batch_size in (1, 4, 64):
        got = onnx_embedder.encode(SENTENCES, batch_size=batch_size)
        assert _cosines(got, expected).min() >= 0.9999, batch_size


@pytest.mark.parametrize("prefix", ["query: ", "passage: ", ""])
def test_the_prefix_is_put_before_every_text_as_the_torch_embedder_does(model_dir, onnx_embedder, prefix) -> None:
    torch_side = SentenceTransformerEmbedder(model_dir, prefix=prefix)
    onnx_side = OnnxEmbedder(model_dir, prefix=prefix)
    texts = SENTENCES[:5]
    assert _cosines(onnx_side.encode(texts), torch_side.encode(texts)).min() >= 0.9999
    if prefix != "query: ":
        # The prefix really is applied: other prefixes give other vectors than "query: ".
        assert _cosines(onnx_side.encode(texts), onnx_embedder.encode(texts)).max() < 0.9999


def test_long_text_is_cut_to_the_folders_max_seq_length(onnx_embedder, real_embedder) -> None:
    assert onnx_embedder._max_length() == 512
    long = "疫情期间，我想咨询一下公积金提取的问题。" * 60
    assert len(onnx_embedder._tokenizer.encode(long).ids) == 512  # cut (it is well over 512 tokens)
    longer = onnx_embedder.encode([long + "另外请问社保卡怎么补办"])
    assert _cosines(longer, onnx_embedder.encode([long])).min() >= 0.9999  # what lies past the cut is not read
    assert _cosines(longer, real_embedder.encode([long + "另外请问社保卡怎么补办"])).min() >= 0.9999


def test_the_export_is_recorded_and_current(model_dir, onnx_embedder) -> None:
    record = json.loads((model_dir / "onnx" / "EXPORT.json").read_text(encoding="utf-8"))
    assert onnx_is_current(model_dir)
    assert record["precision"] == "float32"
    assert record["file"]["size"] == (model_dir / "onnx" / "model.onnx").stat().st_size
    assert len(record["file"]["sha256"]) == 64
    assert record["check"]["min_cosine_vs_torch"] >= 0.9999
    assert export_onnx(model_dir, progress=False) == model_dir / "onnx" / "model.onnx"  # current: kept


def test_an_onnx_index_is_never_taken_for_a_torch_one(model_dir, onnx_embedder, real_embedder) -> None:
    assert onnx_embedder.name != real_embedder.name
    assert "onnx@" in onnx_embedder.name
    settings = load_settings(path=None, environ={}, model_dir=str(model_dir), embedder="onnx")
    assert isinstance(make_embedder(settings), OnnxEmbedder)
    assert make_embedder(settings).name == onnx_embedder.name


def test_an_outdated_export_is_redone(model_dir, tmp_path) -> None:
    import shutil

    copy = tmp_path / "e5"
    shutil.copytree(model_dir, copy)
    assert onnx_is_current(copy)
    provenance = json.loads((copy / "PROVENANCE.json").read_text(encoding="utf-8"))
    provenance["built_at"] = "rebuilt"
    (copy / "PROVENANCE.json").write_text(json.dumps(provenance), encoding="utf-8")
    assert not onnx_is_current(copy)  # the weights' build changed: the export no longer describes them
    export_onnx(copy, progress=False)
    assert onnx_is_current(copy)
    assert OnnxEmbedder(copy).encode(["社保卡丢了怎么补办"]).shape == (1, 384)
