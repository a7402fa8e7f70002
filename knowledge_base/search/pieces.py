"""The export's unigram tokenizer in SentencePiece: the ids of its ``tokenizer.json`` at a fifth of the memory.

The ``tokenizers`` library holds the export's 127,847-piece unigram model in about 95 MB per process (its trie
keeps a hash map per node); SentencePiece holds the same pieces in about 20 MB. Both serving processes (the
action server and the web app) load one, so ``hotline model build`` writes the export's tokenizer a second time
as a SentencePiece model (:func:`sentencepiece_model`), and :class:`PieceTokenizer` reproduces ``tokenizer.json``'s
pipeline with it:

1. the precompiled normalisation map (NFKC and friends), as ``tokenizer.json``'s ``Precompiled`` normaliser;
2. runs of two or more spaces made one (its ``Replace`` normaliser);
3. a word marker before the text unless it starts with a space (``Metaspace``, prefix space on), spaces as "▁";
4. the unigram segmentation, the pieces' ids, truncation to ``max_length`` and ``<s>`` … ``</s>`` around.

SentencePiece's own normaliser would drop every leading and trailing space and add the prefix even before a
space, which ``tokenizer.json`` does not do: so step 1 runs alone, steps 2-3 here, and step 4 on a model whose
normaliser does nothing. ``tests/integration/test_embedder_onnx.py`` and the export itself check that the ids
are those of ``tokenizer.json``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PieceTokenizer", "sentencepiece_model"]

_SPACES = re.compile(" {2,}")


def sentencepiece_model(spec: dict[str, Any]) -> bytes:
    """A unigram ``tokenizer.json`` (as parsed JSON) as a serialised SentencePiece model, ids unchanged.

    The model's normaliser carries ``tokenizer.json``'s precompiled map; :class:`PieceTokenizer` applies it
    apart from the segmentation (see the module's description).

    Raises:
        ValueError: the tokenizer is not one this conversion reproduces exactly (another model type, or
            another normaliser / pre-tokenizer than XLM-R's).
    """
    from sentencepiece import sentencepiece_model_pb2

    pb: Any = sentencepiece_model_pb2  # generated protobuf classes: no type information
    model, normalizer = spec.get("model") or {}, spec.get("normalizer") or {}
    steps = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    kinds = [step.get("type") for step in steps]
    pre = spec.get("pre_tokenizer") or {}
    if model.get("type") != "Unigram" or kinds != ["Precompiled", "Replace"]:
        raise ValueError(f"only XLM-R's unigram tokenizer is converted, not {model.get('type')} with {kinds}")
    if pre.get("type") != "Metaspace" or pre.get("replacement") != "\u2581":
        raise ValueError(f"only a Metaspace pre-tokenizer with '\u2581' is converted, not {pre.get('type')}")
    if steps[1].get("pattern") != {"Regex": " {2,}"} or steps[1].get("content") != " ":
        raise ValueError(f"unexpected Replace normaliser {steps[1]}")
    vocab = model["vocab"]
    specials = {token["content"]: token["id"] for token in spec.get("added_tokens", []) if token.get("special")}
    proto = pb.ModelProto()
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.UNIGRAM
    trainer.vocab_size = len(vocab)
    trainer.unk_id = int(model["unk_id"])
    trainer.bos_id, trainer.eos_id = specials.get("<s>", -1), specials.get("</s>", -1)
    trainer.pad_id = specials.get("<pad>", -1)
    norm = proto.normalizer_spec
    norm.name = "precompiled"
    norm.precompiled_charsmap = base64.b64decode(steps[0]["precompiled_charsmap"])
    norm.add_dummy_prefix = norm.remove_extra_whitespaces = norm.escape_whitespaces = False
    kind = pb.ModelProto.SentencePiece
    for index, (piece, score) in enumerate(vocab):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if index == trainer.unk_id:
            entry.type = kind.UNKNOWN
        elif specials.get(piece) == index:
            entry.type = kind.CONTROL
        else:
            entry.type = kind.NORMAL
    return bytes(proto.SerializeToString())


class PieceTokenizer:
    """Texts to ids as the export's ``tokenizer.json`` gives them, with ``<s>`` and ``</s>`` around.

    Args:
        model_file: a model written from :func:`sentencepiece_model` (``onnx/tokenizer.model``).
        max_length: ids per text at most, the two special ones included (``max_seq_length``).

    Example:
        >>> PieceTokenizer("var/models/multilingual-e5-small/onnx/tokenizer.model", 2)
        Traceback (most recent call last):
        ValueError: max_length must be >= 3, got 2
        >>> tokenizer = PieceTokenizer("var/models/multilingual-e5-small/onnx/tokenizer.model", 512)  # doctest: +SKIP
        >>> tokenizer.encode(["query: 社保卡"])  # doctest: +SKIP
        [[0, 41, 1016, 12, 6, 1360, 3090]]
    """

    def __init__(self, model_file: str | Path, max_length: int) -> None:
        import sentencepiece
        from sentencepiece import sentencepiece_model_pb2

        pb: Any = sentencepiece_model_pb2  # generated protobuf classes: no type information
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3, got {max_length}")
        proto = pb.ModelProto()
        proto.ParseFromString(Path(model_file).read_bytes())
        # Step 1 alone: the model's own map, no spaces added, removed or escaped.
        self._normalizer = sentencepiece.SentencePieceNormalizer(model_proto=proto.SerializeToString())
        # Step 4 on text already normalised: spaces become "▁", nothing else changes.
        norm = proto.normalizer_spec
        norm.name, norm.precompiled_charsmap, norm.escape_whitespaces = "identity", b"", True
        self._pieces = sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())
        self.bos, self.eos, self.pad = self._pieces.bos_id(), self._pieces.eos_id(), self._pieces.pad_id()
        if min(self.bos, self.eos, self.pad) < 0:
            raise ValueError(f"{model_file} has no <s>, </s> or <pad> id")
        self._room = max_length - 2

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text, truncated to ``max_length`` with the special ids kept."""
        prepared = []
        for text in texts:
            normalised = _SPACES.sub(" ", self._normalizer.normalize(text))
            prepared.append(normalised if not normalised or normalised[0] == " " else " " + normalised)
        return [[self.bos, *ids[: self._room], self.eos] for ids in self._pieces.encode(prepared)]
