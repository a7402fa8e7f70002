"""The vocabulary the ONNX export keeps: the SentencePiece pieces a Chinese hotline's text can be cut into.

multilingual-e5-small's word-embedding table has 250,002 rows (XLM-R's unigram vocabulary, every
language): 96M of its 118M parameters. A hotline's text is Chinese with some ASCII, Latin letters,
kana, Hangul, punctuation, symbols and emoji. The export keeps only the pieces made entirely of
such characters (:func:`is_kept_char`, the word marker "▁" included), the special tokens and the
lowest-scoring piece, and writes its own ``tokenizer.json`` with ids renumbered in the old order.

Why the ids stay exact: unigram segmentation only uses pieces that are substrings of the normalised
text, so a text whose normalised characters are all kept can only be cut into kept pieces; the
pieces keep their scores, and the unknown-token penalty (the lowest score minus 10) is unchanged
because the lowest-scoring piece is kept. Such a text gets the full tokenizer's pieces, each
renumbered. A character outside the set becomes ``<unk>`` where the full tokenizer had a piece for
it (:func:`outside_chars` finds them; ``hotline bench retrieval`` counts them in the queries).

Example:
    >>> is_kept_char("社"), is_kept_char("é"), is_kept_char("д")
    (True, True, False)
"""

from __future__ import annotations

import bisect
import copy
from typing import Any

__all__ = ["KEPT_RANGES", "is_kept_char", "outside_chars", "trim_tokenizer"]

# Inclusive code point ranges, by Unicode block.
KEPT_RANGES: tuple[tuple[int, int], ...] = tuple(
    sorted(
        [
            (0x0020, 0x007E),  # ASCII
            (0x00A0, 0x00FF),  # Latin-1 supplement: accented letters, × · ° ± ² ³ µ
            (0x02B0, 0x02FF),  # spacing modifier letters: the bopomofo tone marks ˇ ˊ ˋ ˙
            (0x0300, 0x036F),  # combining diacritical marks (pinyin tones written apart)
            (0x1100, 0x11FF),  # Hangul jamo
            (0x2000, 0x206F),  # general punctuation: — … ‘ ’ “ ” ‰ ※, zero-width joiner
            (0x2070, 0x209F),  # superscripts and subscripts
            (0x20A0, 0x20CF),  # currency symbols
            (0x20D0, 0x20FF),  # combining marks for symbols (keycap emoji)
            (0x2100, 0x214F),  # letterlike symbols: ℃ № ™
            (0x2150, 0x218F),  # number forms: Ⅰ Ⅱ ½
            (0x2190, 0x23FF),  # arrows, mathematical operators, miscellaneous technical
            (0x2460, 0x24FF),  # enclosed alphanumerics: ① ⑴ ⒈
            (0x2500, 0x27BF),  # box drawing, blocks, geometric shapes, miscellaneous symbols, dingbats
            (0x2B00, 0x2BFF),  # miscellaneous symbols and arrows
            (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
            (0x2FF0, 0x2FFF),  # ideographic description characters
            (0x3000, 0x303F),  # CJK symbols and punctuation: 、 。 《 》 【 】
            (0x3040, 0x30FF),  # hiragana, katakana
            (0x3100, 0x312F),  # bopomofo
            (0x3130, 0x318F),  # Hangul compatibility jamo
            (0x31A0, 0x31BF),  # bopomofo extended
            (0x31C0, 0x31EF),  # CJK strokes
            (0x31F0, 0x31FF),  # katakana phonetic extensions
            (0x3200, 0x33FF),  # enclosed CJK letters and months, CJK compatibility
            (0x3400, 0x4DBF),  # CJK unified ideographs extension A
            (0x4E00, 0x9FFF),  # CJK unified ideographs
            (0xAC00, 0xD7AF),  # Hangul syllables
            (0xF900, 0xFAFF),  # CJK compatibility ideographs
            (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
            (0xFE10, 0xFE1F),  # vertical forms
            (0xFE30, 0xFE6F),  # CJK compatibility forms, small form variants
            (0xFF00, 0xFFEF),  # halfwidth and fullwidth forms
            (0x1F000, 0x1FAFF),  # mahjong, playing cards, enclosed supplements, emoji, pictographs
            (0x20000, 0x323AF),  # CJK unified ideographs extensions B-H
            (0x2F800, 0x2FA1F),  # CJK compatibility ideographs supplement
        ]
    )
)
# Pinyin letters with tone marks outside Latin-1 (ā ǎ ē ě ī ǐ ō ǒ ū ǔ ǖ ǘ ǚ ǜ ń ň ǹ ḿ); the rest of
# Latin Extended-A/B and Additional (Vietnamese, Polish, Czech...) adds 11,000 rows a hotline never uses.
_PINYIN = frozenset("āĀēĒěĚīĪǐǏōŌǒǑūŪǔǓǖǕǘǗǚǙǜǛńŃňŇǹǸḿḾǎǍ")
_STARTS = [start for start, _ in KEPT_RANGES]
WORD_MARKER = "\u2581"


def is_kept_char(char: str) -> bool:
    """Whether a (normalised) character is one a Chinese hotline's text can contain."""
    if char == WORD_MARKER or char in _PINYIN:
        return True
    code = ord(char)
    i = bisect.bisect_right(_STARTS, code) - 1
    return i >= 0 and code <= KEPT_RANGES[i][1]


def outside_chars(normalised: str) -> list[str]:
    """The characters of a normalised text that the trimmed vocabulary has no piece for (the word marker aside)."""
    return [c for c in normalised if not c.isspace() and not is_kept_char(c)]


def trim_tokenizer(spec: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """Keep the pieces of a unigram ``tokenizer.json`` spec that :func:`is_kept_char` allows.

    Special (added) tokens and the lowest-scoring piece are always kept; ids are renumbered in the
    old order, and the unknown id, the added tokens' ids and the post-processor's special ids follow.

    Args:
        spec: the parsed ``tokenizer.json`` of a ``Unigram`` model.

    Returns:
        The trimmed spec and ``kept``: ``kept[new_id] == old_id`` (the rows of the embedding table to keep).

    Raises:
        ValueError: the spec is not a unigram model.
    """
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise ValueError(f"only a Unigram tokenizer can be trimmed, not {model.get('type')!r}")
    vocab: list[list[Any]] = model["vocab"]
    special = {int(token["id"]) for token in spec.get("added_tokens", [])}
    unk = model.get("unk_id")
    if unk is not None:
        special.add(int(unk))
    # The unknown token's score is derived from the lowest score in the vocabulary: keep that piece.
    lowest = min(range(len(vocab)), key=lambda i: float(vocab[i][1]))
    kept = [
        i
        for i, (piece, _score) in enumerate(vocab)
        if i in special or i == lowest or all(is_kept_char(c) for c in piece)
    ]
    new_id = {old: new for new, old in enumerate(kept)}
    trimmed = copy.deepcopy(spec)
    trimmed["model"]["vocab"] = [vocab[i] for i in kept]
    if unk is not None:
        trimmed["model"]["unk_id"] = new_id[int(unk)]
    for token in trimmed.get("added_tokens", []):
        token["id"] = new_id[int(token["id"])]
    for special_token in _post_processor_specials(trimmed.get("post_processor")):
        special_token["ids"] = [new_id[int(i)] for i in special_token["ids"]]
    return trimmed, kept


def _post_processor_specials(processor: Any) -> list[dict[str, Any]]:
    """The ``special_tokens`` entries (with their ``ids``) of a post-processor, inside a Sequence too."""
    if not isinstance(processor, dict):
        return []
    if processor.get("type") == "Sequence":
        return [entry for inner in processor.get("processors", []) for entry in _post_processor_specials(inner)]
    specials = processor.get("special_tokens")
    return list(specials.values()) if isinstance(specials, dict) else []
