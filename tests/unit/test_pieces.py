"""What the SentencePiece conversion refuses (the real model's ids are compared in tests/integration)."""

from __future__ import annotations

import json

import pytest

from knowledge_base.search.pieces import sentencepiece_model

pytestmark = pytest.mark.unit


def _spec(normalizer, pre_tokenizer) -> dict:
    from tokenizers import Tokenizer, models

    tokenizer = Tokenizer(models.Unigram([("<unk>", 0.0), ("▁", -2.0), ("社保", -3.0)], unk_id=0))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    return json.loads(tokenizer.to_str())


def test_only_xlm_r_shaped_unigram_tokenizers_are_converted() -> None:
    from tokenizers import normalizers, pre_tokenizers

    with pytest.raises(ValueError, match="only XLM-R's unigram tokenizer"):
        sentencepiece_model(_spec(normalizers.NFKC(), pre_tokenizers.Metaspace()))
    with pytest.raises(ValueError, match="only XLM-R's unigram tokenizer"):
        sentencepiece_model({"model": {"type": "WordPiece", "vocab": {}}})
    spec = _spec(normalizers.NFKC(), pre_tokenizers.WhitespaceSplit())
    spec["normalizer"] = {
        "type": "Sequence",
        "normalizers": [{"type": "Precompiled", "precompiled_charsmap": ""}, {"type": "Replace"}],
    }
    with pytest.raises(ValueError, match="Metaspace"):
        sentencepiece_model(spec)
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁"}
    with pytest.raises(ValueError, match="unexpected Replace"):
        sentencepiece_model(spec)
