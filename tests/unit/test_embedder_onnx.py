"""OnnxEmbedder's own logic on a tiny real ONNX graph and tokenizer: batching, padding, order, truncation, errors.

The graph mean-pools a lookup table over the attention mask and L2-normalises, as the exported e5 graph
does, so the expected vectors are computed here with numpy. The real model is checked against
sentence-transformers in tests/integration/test_embedder_onnx.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hotline.bench import configurations, run_retrieval
from hotline.model_build import ONNX_FORMAT_VERSION, _check_exportable, _folder_digest, onnx_is_current
from knowledge_base.errors import ModelNotBuilt
from knowledge_base.search.embedder import (
    ONNX_DATA,
    ONNX_MODEL,
    ONNX_PROVENANCE,
    ONNX_TOKENIZER,
    FakeEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from knowledge_base.settings import load_settings

pytestmark = pytest.mark.unit

WORDS = ["<pad>", "<unk>", "<s>", "</s>", "q:", "社保", "卡", "丢", "了", "怎么", "补办", "疫苗", "预约"]
DIM, MAX_TOKENS = 8, 6


def _tiny_folder(folder: Path) -> np.ndarray:
    """A model folder with a word-level tokenizer and a mean-pooling ONNX graph; returns the lookup table."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({"hidden_size": DIM}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": MAX_TOKENS}))

    table = np.random.default_rng(3).standard_normal((len(WORDS), DIM)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["hidden"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
        helper.make_node("Mul", ["hidden", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "one"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "one"], ["count"], keepdims=0),
        helper.make_node("Div", ["summed", "count"], ["mean"]),
        helper.make_node("LpNormalization", ["mean"], ["sentence_embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", DIM])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (folder / "onnx").mkdir()
    onnx.save(model, str(folder / ONNX_MODEL))
    return table


def _expected(table: np.ndarray, text: str) -> np.ndarray:
    ids = [2, *(WORDS.index(w) if w in WORDS else 1 for w in text.split()), 3][:MAX_TOKENS]
    if len(ids) == MAX_TOKENS:
        ids[-1] = 3  # truncation keeps the closing token, as the tokenizer's post-processor does
    mean = table[ids].mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, np.ndarray]:
    folder = tmp_path / "tiny-model"
    return folder, _tiny_folder(folder)


TEXTS = ["社保 卡 丢 了 怎么 补办", "疫苗", "怎么 预约 疫苗", "卡", "未知词 社保", "社保 卡 丢 了 怎么 补办 疫苗 预约"]


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_vectors_are_the_masked_mean_in_input_order_whatever_the_batching(tiny, batch_size) -> None:
    folder, table = tiny
    embedder = OnnxEmbedder(folder, prefix="q: ")
    got = embedder.encode(TEXTS, batch_size=batch_size)
    expected = np.vstack([_expected(table, "q: " + t) for t in TEXTS])
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), DIM)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_padding_does_not_change_a_vector(tiny) -> None:
    folder, _ = tiny
    embedder = OnnxEmbedder(folder, prefix="")
    alone = embedder.encode(["疫苗"])
    beside_a_long_one = embedder.encode(["疫苗", "社保 卡 丢 了 怎么 补办"])[:1]
    np.testing.assert_allclose(alone, beside_a_long_one, atol=1e-6)


def test_texts_are_cut_to_max_seq_length(tiny) -> None:
    folder, table = tiny
    embedder = OnnxEmbedder(folder, prefix="")
    assert embedder._max_length() == MAX_TOKENS
    long = "社保 卡 丢 了 怎么 补办 疫苗 预约 疫苗 预约"
    np.testing.assert_allclose(embedder.encode([long])[0], _expected(table, long), atol=1e-5)


def test_the_exports_own_tokenizer_is_used_when_there_is_one(tiny) -> None:
    folder, table = tiny
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    vocab["社保"], vocab["疫苗"] = vocab["疫苗"], vocab["社保"]  # the export numbers its pieces its own way
    (folder / ONNX_TOKENIZER).write_text(json.dumps(spec), encoding="utf-8")
    got = OnnxEmbedder(folder, prefix="").encode(["社保"])[0]
    np.testing.assert_allclose(got, _expected(table, "疫苗"), atol=1e-5)


def test_no_texts_give_an_empty_matrix_of_the_right_width(tiny) -> None:
    assert OnnxEmbedder(tiny[0]).encode([]).shape == (0, DIM)


def test_one_intra_op_thread_by_default_and_the_threads_asked_for(tiny) -> None:
    folder, _ = tiny
    one, two = OnnxEmbedder(folder), OnnxEmbedder(folder, threads=2)
    one.load()
    two.load()
    assert one._session.get_session_options().intra_op_num_threads == 1
    assert two._session.get_session_options().intra_op_num_threads == 2


def test_a_folder_without_the_export_says_how_to_make_it(tmp_path) -> None:
    with pytest.raises(ModelNotBuilt, match="hotline model build"):
        OnnxEmbedder(tmp_path).encode(["社保卡"])


@pytest.mark.parametrize("kwargs", [{"threads": 0}, {"threads": -1}])
def test_bad_thread_counts_are_refused(tmp_path, kwargs) -> None:
    with pytest.raises(ValueError, match="threads"):
        OnnxEmbedder(tmp_path, **kwargs)


def test_a_bad_batch_size_is_refused(tiny) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        OnnxEmbedder(tiny[0]).encode(["疫苗"], batch_size=0)


def test_the_name_tells_the_backend_and_the_export_apart(tiny) -> None:
    folder, _ = tiny
    (folder / "PROVENANCE.json").write_text("{}")
    torch_name = SentenceTransformerEmbedder(folder).name
    before = OnnxEmbedder(folder).name
    assert before != torch_name and "onnx" in before and before.endswith("|prefix='query: '")
    (folder / ONNX_PROVENANCE).write_text('{"exported_at": "1"}')
    first = OnnxEmbedder(folder).name
    (folder / ONNX_PROVENANCE).write_text('{"exported_at": "2"}')
    assert first != OnnxEmbedder(folder).name  # a new export is a new index fingerprint
    assert SentenceTransformerEmbedder(folder).name == torch_name  # torch indexes stay valid


@pytest.mark.parametrize(("setting", "kind"), [("onnx", OnnxEmbedder), ("torch", SentenceTransformerEmbedder)])
def test_the_setting_chooses_the_embedder(tmp_path, setting, kind) -> None:
    settings = load_settings(path=None, environ={"HOTLINE_EMBEDDER": setting}, model_dir=str(tmp_path), embed_threads=3)
    embedder = make_embedder(settings)
    assert isinstance(embedder, kind)
    assert embedder.threads == 3 and embedder.model_dir == tmp_path
    assert make_embedder(settings, threads=1).threads == 1


def test_an_unknown_embedder_is_refused() -> None:
    with pytest.raises(ValueError, match="'onnx' or 'torch'"):
        load_settings(path=None, environ={}, embedder="tensorflow")


@pytest.mark.parametrize("default", ["onnx", "torch"])
def test_the_retrieval_bench_runs_both_encoders(default) -> None:
    configs = configurations(load_settings(path=None, environ={}, embedder=default))
    assert {c.embedder for c in configs.values()} == {"onnx", "torch"}
    assert configs["default"].embedder == default


def test_no_export_means_not_current(tiny, tmp_path) -> None:
    assert not onnx_is_current(tmp_path)
    assert not onnx_is_current(tiny[0])  # a graph without its EXPORT.json record


def test_an_export_of_the_previous_format_or_missing_a_file_is_not_current(tiny) -> None:
    folder, _ = tiny
    (folder / "PROVENANCE.json").write_text("{}")
    (folder / ONNX_DATA).write_bytes(b"weights")
    (folder / ONNX_TOKENIZER).write_text((folder / "tokenizer.json").read_text())
    files = {name: {"size": (folder / name).stat().st_size} for name in (ONNX_MODEL, ONNX_DATA, ONNX_TOKENIZER)}
    record = {"format_version": ONNX_FORMAT_VERSION, "made_from": _folder_digest(folder), "files": files}
    (folder / ONNX_PROVENANCE).write_text(json.dumps(record))
    assert onnx_is_current(folder)
    (folder / ONNX_PROVENANCE).write_text(json.dumps({**record, "format_version": 1}))
    assert not onnx_is_current(folder)  # a graph with the whole vocabulary inside it: exported again
    (folder / ONNX_PROVENANCE).write_text(json.dumps(record))
    (folder / ONNX_DATA).unlink()
    assert not onnx_is_current(folder)


def test_only_mean_pooling_with_normalisation_is_exported(tmp_path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ModelNotBuilt, match="embedder: torch"):
        _check_exportable(tmp_path)
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    _check_exportable(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps(modules[:2]))  # no Normalize
    with pytest.raises(ModelNotBuilt):
        _check_exportable(tmp_path)


def test_the_retrieval_bench_reports_both_encoders_measured_in_turn(tmp_path) -> None:
    sample = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample"
    asked: list[str] = []

    def embedder_for(settings):
        asked.append(settings.embedder)
        return FakeEmbedder()

    settings = load_settings(path=None, environ={}, data_dir=str(tmp_path), embedder="onnx")
    report = run_retrieval(
        sample / "guangdong_kb.yaml",
        sample / "test_questions.jsonl",
        settings=settings,
        embedder_for=embedder_for,
        limit=12,
        encoder_memory=False,
    )
    assert sorted(asked) == ["onnx", "onnx", "torch"]  # default, plain e5 on the default's encoder, the other one
    assert report["configs"]["default"]["embedder"] == "onnx"
    assert report["configs"]["torch"]["embedder"] == "torch"
    for name in ("default", "torch", "e5_plain"):
        assert report["configs"][name]["n_queries"] == 12
        assert report["configs"][name]["latency_ms_p50"] > 0
    # Same fake vectors on both "encoders": the same ranking, whatever the order the queries ran in.
    assert report["configs"]["default"]["hit_at_1"] == report["configs"]["torch"]["hit_at_1"]
