"""Text -> unit vectors: the :class:`Embedder` interface, the two real ones and a fake.

Vectors are L2-normalised float32, so inner product = cosine in FAISS. The real
model runs either in torch (:class:`SentenceTransformerEmbedder`, which also builds
and verifies) or in ONNX Runtime (:class:`OnnxEmbedder`, on the graph that
``hotline model build`` exports beside the weights); :func:`make_embedder` picks
one by the ``embedder`` setting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge_base.errors import ModelNotBuilt
from knowledge_base.settings import Settings

log = logging.getLogger(__name__)

# The exported graph inside a model folder, its weights, its own (trimmed) tokenizer and the record of how it was
# made (hotline/model_build.py writes them all).
ONNX_MODEL = "onnx/model.onnx"
ONNX_DATA = "onnx/model.onnx.data"
ONNX_TOKENIZER = "onnx/tokenizer.json"
# The same tokenizer as a SentencePiece model (knowledge_base/search/pieces.py): what the serving processes load.
ONNX_PIECES = "onnx/tokenizer.model"
ONNX_PROVENANCE = "onnx/EXPORT.json"


def _folder_tag(model_dir: Path) -> str:
    """The folder's name and its build record's digest: a rebuilt model never matches an old index."""
    provenance = model_dir / "PROVENANCE.json"
    if not provenance.is_file():
        return model_dir.name
    return f"{model_dir.name}@{hashlib.sha256(provenance.read_bytes()).hexdigest()[:12]}"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A local sentence-transformers folder (by default the multilingual-e5-small build).

    The model is loaded on first use (or :meth:`load`), never at import or construction,
    so processes that fork workers load it inside each worker.

    Args:
        model_dir: a sentence-transformers folder; nothing is ever fetched from a hub.
        prefix: put before every text ("query: " for e5 on question-to-question matching).
        threads: torch CPU threads for this process.
    """

    def __init__(self, model_dir: str | Path, *, prefix: str = "query: ", threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.prefix = prefix
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Identifies the model and how it is fed, for the index manifest."""
        return f"{_folder_tag(self.model_dir)}|prefix={self.prefix!r}"

    def load(self) -> None:
        """Load the model now (idempotent)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if not (self.model_dir / "modules.json").is_file() and not (self.model_dir / "config.json").is_file():
                raise ModelNotBuilt(
                    f"no sentence-transformers model in {self.model_dir}: run `hotline model build` "
                    "(or set model_dir to another local model folder)"
                )
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self.threads)
            log.info("loading embedding model from %s", self.model_dir)
            self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)

    @property
    def dim(self) -> int:
        config = self.model_dir / "config.json"
        if self._model is None and config.is_file():
            return int(json.loads(config.read_text())["hidden_size"])
        self.load()
        # sentence-transformers 6 renamed the method; 5.x only has the old name.
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            [self.prefix + t for t in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """The model folder's ONNX export (mean pooling and L2 normalisation inside the graph) in ONNX Runtime.

    It gives the vectors of :class:`SentenceTransformerEmbedder` (cosine >= 0.9999, see
    ``tests/integration/test_embedder_onnx.py``) at about half the CPU time, without torch in the
    process. Texts are cut into the ids of the export's ``tokenizer.json`` and truncated to the folder's
    ``max_seq_length``, as sentence-transformers does: by SentencePiece on ``onnx/tokenizer.model`` (the
    same ids at a fifth of the memory, :mod:`knowledge_base.search.pieces`), or by the ``tokenizers``
    library for an export without it. One difference, on purpose: a citizen who types ``<s>`` or
    ``</s>`` gets those characters embedded as text, where ``tokenizers`` would insert special tokens.

    Loaded on first use (or :meth:`load`), never at import or construction.

    Args:
        model_dir: a model folder holding ``onnx/model.onnx`` (``hotline model build`` exports it).
        prefix: put before every text ("query: " for e5 on question-to-question matching).
        threads: ONNX Runtime intra-op threads for one call.

    Example:
        >>> embedder = OnnxEmbedder("var/models/multilingual-e5-small")
        >>> embedder.encode(["社保卡丢了怎么补办"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model_dir: str | Path, *, prefix: str = "query: ", threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.model_dir = Path(model_dir)
        self.prefix = prefix
        self.threads = threads
        self._session: Any = None
        self._tokenize: Callable[[list[str]], list[list[int]]] | None = None
        self._pad_id = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The model, the export and how it is fed: an index built by torch is never searched with these vectors."""
        tag = _folder_tag(self.model_dir)
        export = self.model_dir / ONNX_PROVENANCE
        backend = f"onnx@{hashlib.sha256(export.read_bytes()).hexdigest()[:12]}" if export.is_file() else "onnx"
        return f"{tag}|{backend}|prefix={self.prefix!r}"

    def load(self) -> None:
        """Open the tokenizer and the ONNX Runtime session now (idempotent)."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            graph = self.model_dir / ONNX_MODEL
            if not graph.is_file():
                raise ModelNotBuilt(
                    f"no ONNX export in {self.model_dir} ({ONNX_MODEL} is missing): run `hotline model build`, "
                    "which exports it, or set embedder: torch"
                )
            import onnxruntime

            tokenize, pad_id = self._open_tokenizer()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            # One call runs one graph: a second pool of threads would only compete with the first.
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            log.info("loading ONNX embedding model from %s", graph)
            session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            self._tokenize, self._pad_id = tokenize, pad_id
            self._session = session

    def _open_tokenizer(self) -> tuple[Callable[[list[str]], list[list[int]]], int]:
        """The export's tokenizer (its ids number the graph's trimmed vocabulary) and its padding id.

        SentencePiece when the export has ``onnx/tokenizer.model``; else ``tokenizers`` on the export's
        ``tokenizer.json`` (an export of an older format) or the folder's.
        """
        pieces = self.model_dir / ONNX_PIECES
        if pieces.is_file():
            from knowledge_base.search.pieces import PieceTokenizer

            piece_tokenizer = PieceTokenizer(pieces, self._max_length())
            return piece_tokenizer.encode, piece_tokenizer.pad
        from tokenizers import Tokenizer

        own = self.model_dir / ONNX_TOKENIZER
        tokenizer = Tokenizer.from_file(str(own if own.is_file() else self.model_dir / "tokenizer.json"))
        tokenizer.no_padding()  # padding is done per batch in encode(), to the batch's longest text
        tokenizer.enable_truncation(max_length=self._max_length())
        pad = tokenizer.token_to_id("<pad>")

        def tokenize(texts: list[str]) -> list[list[int]]:
            return [encoding.ids for encoding in tokenizer.encode_batch(texts)]

        return tokenize, int(pad if pad is not None else 0)

    def _max_length(self) -> int:
        """sentence-transformers' ``max_seq_length`` for the folder (the tokenizer's own limit otherwise)."""
        limits = (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length"))
        for name, key in limits:
            path = self.model_dir / name
            if path.is_file():
                value = json.loads(path.read_text(encoding="utf-8")).get(key)
                if isinstance(value, int) and 0 < value <= 100_000:
                    return value
        return 512

    @property
    def dim(self) -> int:
        config = self.model_dir / "config.json"
        if config.is_file():
            return int(json.loads(config.read_text())["hidden_size"])
        self.load()
        return int(self._session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        assert self._tokenize is not None  # set by load()
        encodings = self._tokenize([self.prefix + t for t in texts])
        # Batches of similar lengths waste little on padding (pads are masked, so results do not depend on it).
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(order), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            width = max(len(encodings[i]) for i in rows)
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i])
                ids[r, :n] = encodings[i]
                mask[r, :n] = 1
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return out


def make_embedder(settings: Settings, *, threads: int | None = None) -> SentenceTransformerEmbedder | OnnxEmbedder:
    """The real embedder the ``embedder`` setting names, on ``settings.model_path``.

    Args:
        settings: gives ``embedder``, ``model_path``, ``model_prefix`` and ``embed_threads``.
        threads: overrides ``embed_threads`` (benchmarks measure one thread).
    """
    kind = OnnxEmbedder if settings.embedder == "onnx" else SentenceTransformerEmbedder
    return kind(settings.model_path, prefix=settings.model_prefix, threads=threads or settings.embed_threads)


class FakeEmbedder:
    """A deterministic fake for unit tests: hashed character uni- and bi-grams.

    Texts sharing characters get similar vectors, which is enough to test ranking,
    index updates and decisions without the real model. Never used in production.
    """

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"fake-ngram-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
            for gram in grams:
                out[row, zlib.crc32(gram.encode()) % self._dim] += 1.0
            norm = np.linalg.norm(out[row])
            if norm == 0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out
