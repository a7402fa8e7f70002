"""The vocabulary trimming rule and its renumbering, on a small real unigram tokenizer."""

from __future__ import annotations

import json

import pytest

from hotline.onnx_vocab import is_kept_char, outside_chars, trim_tokenizer

pytestmark = pytest.mark.unit

PIECES = [
    ("<s>", 0.0),
    ("<pad>", 0.0),
    ("</s>", 0.0),
    ("<unk>", 0.0),
    ("▁", -2.0),
    ("社保", -3.0),
    ("社", -5.0),
    ("保", -5.0),
    ("卡", -4.0),
    ("▁ETC", -6.0),
    ("E", -7.0),
    ("T", -7.0),
    ("C", -7.0),
    ("при", -6.0),  # Cyrillic: dropped
    ("п", -8.0),
    ("р", -8.0),
    ("и", -8.0),
    ("ḍ", -20.0),  # outside the set, but the lowest score: kept (it fixes <unk>'s penalty)
    ("吗？", -6.5),
    ("吗", -6.0),
    ("？", -6.0),
    ("<mask>", 0.0),
]


def _spec() -> dict:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram(PIECES, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return json.loads(tokenizer.to_str())


@pytest.mark.parametrize("char", list("社𠀀豈。Ａㄅカ한aéǎˇ—℃①😷▁"))
def test_a_hotlines_characters_are_kept(char) -> None:
    assert is_kept_char(char)


@pytest.mark.parametrize("char", list("дαกعḍ\ue010"))
def test_other_scripts_are_not(char) -> None:
    assert not is_kept_char(char)


def test_outside_chars_lists_what_has_no_kept_piece() -> None:
    assert outside_chars("社保 ▁卡 при") == ["п", "р", "и"]
    assert outside_chars("ETC卡怎么办？😷") == []


def test_trimming_keeps_the_allowed_pieces_and_renumbers_in_order() -> None:
    spec = _spec()
    trimmed, kept = trim_tokenizer(spec)
    pieces = [p for p, _ in trimmed["model"]["vocab"]]
    assert "при" not in pieces and "п" not in pieces and "ḍ" in pieces
    assert [spec["model"]["vocab"][i][0] for i in kept] == pieces
    assert kept == sorted(kept) and kept[:4] == [0, 1, 2, 3]
    assert trimmed["model"]["vocab"] == [spec["model"]["vocab"][i] for i in kept]  # scores unchanged
    mask = next(t for t in trimmed["added_tokens"] if t["content"] == "<mask>")
    assert pieces[mask["id"]] == "<mask>" and mask["id"] == len(pieces) - 1
    assert spec["model"]["vocab"][0][0] == "<s>" and trimmed["post_processor"]["special_tokens"]["</s>"]["ids"] == [2]


def test_a_text_of_kept_characters_gets_the_full_tokenizers_pieces_renumbered() -> None:
    from tokenizers import Tokenizer

    spec = _spec()
    trimmed, kept = trim_tokenizer(spec)
    full, small = Tokenizer.from_str(json.dumps(spec)), Tokenizer.from_str(json.dumps(trimmed))
    for text in ["社保卡", "ETC卡吗？", "社 保", "卡卡社保吗"]:
        assert [kept[i] for i in small.encode(text).ids] == full.encode(text).ids, text
    # A dropped script becomes <unk>; what surrounds it is cut as before.
    assert [small.id_to_token(i) for i in small.encode("社保при").ids] == ["<s>", "▁", "社保", "<unk>", "</s>"]
    assert [full.id_to_token(i) for i in full.encode("社保при").ids] == ["<s>", "▁", "社保", "при", "</s>"]


def test_the_unknown_id_follows_the_renumbering() -> None:
    spec = _spec()
    spec["model"]["vocab"].insert(3, ["д", -9.0])  # a dropped piece before <unk>: ids after it shift
    spec["model"]["unk_id"] = 4
    for token in spec["added_tokens"]:
        token["id"] += token["id"] >= 3
    trimmed, kept = trim_tokenizer(spec)
    assert trimmed["model"]["vocab"][trimmed["model"]["unk_id"]][0] == "<unk>"
    assert trimmed["model"]["unk_id"] == 3 and kept[3] == 4


def test_only_a_unigram_model_is_trimmed() -> None:
    with pytest.raises(ValueError, match="Unigram"):
        trim_tokenizer({"model": {"type": "WordPiece", "vocab": {}}})
