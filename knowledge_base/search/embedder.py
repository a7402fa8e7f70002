"""Text -> unit vectors: the :class:`Embedder` interface, the real sentence-transformers one and a fake.

Vectors are L2-normalised float32, so inner product = cosine in FAISS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge_base.errors import ModelNotBuilt

log = logging.getLogger(__name__)


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
        provenance = self.model_dir / "PROVENANCE.json"
        tag = self.model_dir.name
        if provenance.is_file():
            digest = hashlib.sha256(provenance.read_bytes()).hexdigest()[:12]
            tag = f"{tag}@{digest}"
        return f"{tag}|prefix={self.prefix!r}"

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
