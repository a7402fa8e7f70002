"""BM25, kept incrementally (one entry's change touches only its postings).

Two uses: re-scoring the dense candidates of a search (:meth:`BM25Index.score_docs`,
over character uni- and bigrams by default) when ``lexical_weight`` > 0, and the
BM25-alone baseline of the benchmark (:meth:`BM25Index.search`, over jieba words).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import Counter
from collections.abc import Sequence


class BM25Index:
    """Okapi BM25 with an inverted index that supports add and remove.

    Args:
        k1: term-frequency saturation.
        b: length normalisation.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, dict[int, int]] = {}
        self._lengths: dict[int, int] = {}
        self._doc_tf: dict[int, Counter[str]] = {}
        self._total_length = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, doc_id: int, tokens: Sequence[str]) -> None:
        with self._lock:
            self._remove_locked(doc_id)
            counts = Counter(tokens)
            for term, tf in counts.items():
                self._postings.setdefault(term, {})[doc_id] = tf
            self._lengths[doc_id] = len(tokens)
            self._doc_tf[doc_id] = counts
            self._total_length += len(tokens)

    def remove(self, doc_id: int) -> None:
        with self._lock:
            self._remove_locked(doc_id)

    def _remove_locked(self, doc_id: int) -> None:
        length = self._lengths.pop(doc_id, None)
        if length is None:
            return
        self._total_length -= length
        for term in self._doc_tf.pop(doc_id):
            docs = self._postings[term]
            del docs[doc_id]
            if not docs:
                del self._postings[term]

    def scores(self, tokens: Sequence[str]) -> dict[int, float]:
        """BM25 score of every document sharing a term with the query."""
        with self._lock:
            n = len(self._lengths)
            if n == 0:
                return {}
            avg = self._total_length / n or 1.0
            out: dict[int, float] = {}
            for term in set(tokens):
                docs = self._postings.get(term)
                if not docs:
                    continue
                idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
                for doc_id, tf in docs.items():
                    norm = tf + self.k1 * (1 - self.b + self.b * self._lengths[doc_id] / avg)
                    out[doc_id] = out.get(doc_id, 0.0) + idf * tf * (self.k1 + 1) / norm
            return out

    def score_docs(
        self, tokens: Sequence[str], doc_ids: Sequence[int], *, held_out: int | None = None
    ) -> dict[int, float]:
        """BM25 of the given documents only: cheap re-scoring of a search's candidates.

        Args:
            tokens: the query's terms.
            doc_ids: the documents to score.
            held_out: a document scored as if it were not in the index at all (no score, and its
                terms and length left out of the statistics): leave-one-out calibration without a rebuild.
        """
        with self._lock:
            held_tf = self._doc_tf.get(held_out) if held_out is not None else None
            held_length = self._lengths[held_out] if held_out is not None and held_tf is not None else 0
            n = len(self._lengths) - (held_tf is not None)
            if n <= 0:
                return {}
            total = self._total_length - held_length
            avg = total / n or 1.0
            idf = {}
            for term in set(tokens):
                df = len(self._postings.get(term, ())) - (held_tf is not None and term in held_tf)
                if df:
                    idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
            out = {}
            for doc_id in doc_ids:
                tf_of = self._doc_tf.get(doc_id)
                if tf_of is None or doc_id == held_out:
                    continue
                k = self.k1 * (1 - self.b + self.b * self._lengths[doc_id] / avg)
                out[doc_id] = sum(w * tf_of[t] * (self.k1 + 1) / (tf_of[t] + k) for t, w in idf.items() if t in tf_of)
            return out

    def search(self, tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        ranked = sorted(self.scores(tokens).items(), key=lambda item: -item[1])
        return ranked[:k]


def char_ngrams(text: str) -> list[str]:
    """Character unigrams and bigrams: robust to jieba's segmentation of colloquial and misspelt Chinese."""
    chars = [c for c in text if not c.isspace()]
    return chars + [a + b for a, b in itertools.pairwise(chars)]
