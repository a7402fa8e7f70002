"""Normalisation of citizens' Chinese text, the same at index time and at query time.

Citizens write simplified and traditional Chinese, Cantonese colloquial forms,
full-width characters, emoji and greetings. :class:`TextNormaliser` turns all of
that into one plain simplified Mandarin form, so that "請問點樣申請港澳通行證續簽？"
and "港澳通行证怎么续签" meet in the index.

The word lists are plain UTF-8 text files that the knowledge team edits, in
``knowledge_base/data/`` (each file explains its format in its ``#`` header):

* ``synonyms.tsv``  - one group of true synonyms a line, canonical form first;
* ``cantonese.tsv`` - Cantonese colloquial form -> Mandarin written form;
* ``fillers.txt``   - greetings and sentence-final particles to drop;
* ``userdict.txt``  - jieba user dictionary of government terms kept whole;
* ``regions.tsv``   - gazetteer of Guangdong: province, cities, districts.

Nothing is loaded at import: the tables, OpenCC and jieba are loaded by
:meth:`TextNormaliser.from_dir` (jieba's dictionary lazily, on first use).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from knowledge_base.records import Region

__all__ = ["MAX_QUERY_CHARS", "TABLE_FILES", "Normalised", "TextNormaliser", "truncate"]

MAX_QUERY_CHARS = 1000
"""Longest question, in characters, that the search looks at; see :func:`truncate`."""

TABLE_FILES = ("synonyms.tsv", "cantonese.tsv", "fillers.txt", "userdict.txt", "regions.tsv")
"""The tables a data folder must hold."""

# Bump when the pipeline itself changes in a way that changes its output, so
# that indexes built by the old code are detected like those built with other tables.
_PIPELINE_VERSION = "1"
# hk2s (not t2s) because it also knows the Hong Kong variant forms that Cantonese
# writers use, e.g. 衞 -> 卫, which t2s leaves alone.
_OPENCC_CONFIG = "hk2s"

_FOLD_STEPS = 6
DEFAULT_DATA_DIR = Path(__file__).parents[1] / "data"
_STOP_PROVINCE = "-"

_log = logging.getLogger(__name__)
_JIEBA_LOG_LOCK = threading.Lock()

_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
_VARIATION_SELECTOR_RE = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_NOT_WORD_RE = re.compile(r"[^\w\s]+|_+")
_SPACES_RE = re.compile(r"\s+")
_USERDICT_TAG_RE = re.compile(r"^[a-z]+$")
_ALIAS_SPLIT_RE = re.compile(r"[,、]")

T = TypeVar("T")


class Converter(Protocol):
    """The script conversion the normaliser uses: OpenCC's ``convert`` (Hong Kong traditional → simplified)."""

    def convert(self, text: str) -> str: ...


class Tokenizer(Protocol):
    """The word segmentation the normaliser uses: a private ``jieba.Tokenizer``."""

    def lcut(self, sentence: str, HMM: bool = True) -> list[str]: ...
    def cut_for_search(self, sentence: str, HMM: bool = True) -> Iterable[str]: ...


class _JiebaTokenizer(Tokenizer, Protocol):
    """What building one uses besides: its dictionary and the user words added to it."""

    FREQ: dict[str, int]

    def initialize(self) -> None: ...
    def add_word(self, word: str, freq: int | None = None, tag: str | None = None) -> None: ...


@dataclass(frozen=True)
class Normalised:
    """The result of :meth:`TextNormaliser.analyse`.

    Attributes:
        text: The normalised text (what :meth:`TextNormaliser.normalise` returns).
        tokens: The search tokens of ``text`` (what :meth:`TextNormaliser.tokens` returns).
        steps: ``(step name, text after the step)`` for every step of the pipeline,
            in order, for ``--explain`` output.
        folded: What :meth:`TextNormaliser.fold` returns (the text the model reads).
    """

    text: str
    tokens: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]
    folded: str = ""


def truncate(text: str, limit: int = MAX_QUERY_CHARS) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` characters.

    Args:
        text: The text to cut.
        limit: The most characters to keep; at least 1.

    Returns:
        ``(text, truncated)``: the possibly shortened text and whether it was cut.

    Raises:
        TypeError: ``text`` is not a str.
        ValueError: ``limit`` is smaller than 1.

    Example:
        >>> truncate("社保卡丢了", 3)
        ('社保卡', True)
    """
    if not isinstance(text, str):
        raise TypeError(f"truncate() needs a str, got {type(text).__name__}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if len(text) <= limit:
        return text, False
    return text[:limit], True


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class _Line:
    """One content line of a table: file name and 1-based line number for messages."""

    file: str
    number: int
    text: str

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.file} line {self.number}: {message}: {self.text!r}")

    def columns(self) -> list[str]:
        return [c.strip() for c in self.text.split("\t")]


def _read_table(path: Path) -> list[_Line]:
    """The content lines of a table: comments (``#``) and blank lines dropped."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"text normalisation table {path} is missing") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    lines = []
    for number, line in enumerate(raw.split("\n"), 1):
        text = line.rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        lines.append(_Line(path.name, number, text.lstrip(" ")))
    return lines


class _Lexicon(Generic[T]):
    """Leftmost-longest dictionary matcher over text (keys are lower case)."""

    __slots__ = ("_lengths", "_map")

    def __init__(self, mapping: dict[str, T]) -> None:
        self._map = {k: v for k, v in mapping.items() if k}
        lengths: dict[str, set[int]] = {}
        for key in self._map:
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths = {c: tuple(sorted(ls, reverse=True)) for c, ls in lengths.items()}

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def match_at(self, view: str, i: int) -> tuple[int, T] | None:
        """The longest key starting at ``view[i]``, as ``(length, value)``."""
        lengths = self._lengths.get(view[i])
        if lengths:
            n = len(view)
            for length in lengths:
                if i + length <= n:
                    value = self._map.get(view[i : i + length])
                    if value is not None:
                        return length, value
        return None

    def matches(self, text: str) -> Iterator[tuple[int, int, T]]:
        """``(start, end, value)`` of each leftmost-longest match, case-insensitively."""
        view = text.lower()
        if len(view) != len(text):  # a few letters change length when lowered
            view = text
        i, n = 0, len(view)
        while i < n:
            found = self.match_at(view, i)
            if found is None:
                i += 1
                continue
            length, value = found
            yield i, i + length, value
            i += length

    def replace(self: _Lexicon[str], text: str) -> str:
        parts: list[str] = []
        last = 0
        for start, end, value in self.matches(text):
            parts.append(text[last:start])
            parts.append(value)
            last = end
        if not parts:
            return text
        parts.append(text[last:])
        return "".join(parts)


# --------------------------------------------------------------------------- character steps


def _clean(text: str) -> str:
    """Control characters become spaces (line breaks, tabs) or go (zero-width, BOM, ...)."""
    if text.isprintable() and not _VARIATION_SELECTOR_RE.search(text):
        return text
    out = []
    for ch in text:
        if ch in _WHITESPACE_CONTROLS:
            out.append(" ")
        elif unicodedata.category(ch) not in _DROPPED_CATEGORIES:
            out.append(ch)
    return _VARIATION_SELECTOR_RE.sub("", "".join(out))


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _strip_punctuation(text: str) -> str:
    """Punctuation, symbols and emoji become spaces; letters, digits and CJK stay."""
    return _NOT_WORD_RE.sub(" ", text)


def _collapse_spaces(text: str) -> str:
    return _SPACES_RE.sub(" ", text).strip()


def _is_separator(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


# --------------------------------------------------------------------------- the normaliser


class TextNormaliser:
    """Normalises citizens' Chinese text and finds the region it mentions.

    Build it with :meth:`from_dir`. After construction it is read-only and may be
    shared by threads; jieba's dictionary is loaded on first use, under a lock.

    The pipeline of :meth:`normalise`, in order: strip control and zero-width
    characters; NFKC (full-width to half-width); traditional to simplified
    (OpenCC ``hk2s``); Cantonese to Mandarin; synonyms to their canonical form;
    lower-case Latin letters; drop fillers; punctuation, symbols and emoji to
    spaces; collapse whitespace.

    Example:
        >>> tn = TextNormaliser.from_dir()
        >>> tn.normalise("請問點樣申請港澳通行證續簽？")
        '怎么申请港澳通行证续签'
        >>> tn.normalise("社保卡唔见咗点算啊😭")
        '社会保障卡丢了怎么办'
        >>> str(tn.extract_region("我喺深圳南山區"))
        '广东省/深圳市/南山区'
    """

    def __init__(
        self,
        *,
        converter: Converter,
        cantonese: dict[str, str],
        synonyms: dict[str, str],
        fillers: frozenset[str],
        user_words: tuple[tuple[str, int | None, str | None], ...],
        regions: dict[str, tuple[Region, ...]],
        version: str,
        data_dir: Path,
    ) -> None:
        """Use :meth:`from_dir`; the arguments are the already parsed tables."""
        self._converter = converter
        self._cantonese = _Lexicon(cantonese)
        self._synonyms = _Lexicon(synonyms)
        self._fillers = fillers
        self._filler_phrases: _Lexicon[bool] = _Lexicon({f: True for f in fillers if len(f) > 1})
        self._particles = frozenset(f for f in fillers if len(f) == 1)
        self._user_words = user_words
        self._regions = _Lexicon(regions)
        self._version = version
        self._data_dir = data_dir
        self._jieba: Tokenizer | None = None
        self._jieba_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TextNormaliser(data_dir={str(self._data_dir)!r}, version={self._version!r})"

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_dir(cls, data_dir: Path | None = None) -> TextNormaliser:
        """Read the tables of ``data_dir`` and build a normaliser.

        Args:
            data_dir: Folder holding :data:`TABLE_FILES`; default the package's
                ``knowledge_base/data`` folder.

        Returns:
            A ready normaliser (jieba's dictionary still loads on first use).

        Raises:
            FileNotFoundError: A table is missing.
            ValueError: A table has a malformed line; the message names the file
                and the line number.
        """
        import opencc

        folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
        tables = {name: _read_table(folder / name) for name in TABLE_FILES}
        converter: Converter = opencc.OpenCC(_OPENCC_CONFIG)

        def base(text: str) -> str:
            return converter.convert(_nfkc(_clean(text))).strip()

        cantonese = _parse_cantonese(tables["cantonese.tsv"], base)
        cantonese_lex = _Lexicon(cantonese)

        def with_cantonese(text: str) -> str:
            return cantonese_lex.replace(base(text))

        synonyms = _parse_synonyms(tables["synonyms.tsv"], with_cantonese)
        synonyms_lex = _Lexicon(synonyms)

        def with_synonyms(text: str) -> str:
            return synonyms_lex.replace(with_cantonese(text)).lower()

        fillers = _parse_fillers(tables["fillers.txt"], with_synonyms)
        user_words = _parse_userdict(tables["userdict.txt"], with_synonyms)
        regions = _parse_regions(tables["regions.tsv"], base)

        digest = hashlib.sha256(f"textnorm/{_PIPELINE_VERSION}/{_OPENCC_CONFIG}\n".encode())
        for name in TABLE_FILES:
            digest.update(f"\0{name}\n".encode())
            for line in tables[name]:
                digest.update(line.text.encode("utf-8") + b"\n")
        return cls(
            converter=converter,
            cantonese=cantonese,
            synonyms=synonyms,
            fillers=fillers,
            user_words=user_words,
            regions=regions,
            version=digest.hexdigest()[:16],
            data_dir=folder,
        )

    def _tokenizer(self) -> Tokenizer:
        """The private jieba tokenizer with the user dictionary, built on first use."""
        tokenizer = self._jieba
        if tokenizer is not None:
            return tokenizer
        with self._jieba_lock:
            if self._jieba is None:
                self._jieba = _build_tokenizer(self._user_words)
            return self._jieba

    # ------------------------------------------------------------------ public API

    def version(self) -> str:
        """A hash of the tables' contents (comments and blank lines excluded).

        Store it with an index: an index built with other tables, whose texts were
        therefore normalised differently, can then be detected.
        """
        return self._version

    def normalise(self, text: str) -> str:
        """The normalised form of ``text``; empty when nothing searchable is left.

        Raises:
            TypeError: ``text`` is not a str.
        """
        _require_str(text, "normalise")
        for _name, step in self._steps():
            text = step(text)
        return text

    def fold(self, text: str) -> str:
        """Width, script, Cantonese forms and synonyms unified; punctuation and particles kept.

        This is what the embedding model reads: it understands punctuation and
        particles, and dropping them changes meaning for it (能长期服用吗 asks
        something other than 能长期服用).

        Raises:
            TypeError: ``text`` is not a str.
        """
        _require_str(text, "fold")
        for _name, step in self._steps()[:_FOLD_STEPS]:
            text = step(text)
        return _collapse_spaces(text)

    def analyse(self, text: str) -> Normalised:
        """Run the whole pipeline, keeping the text after every step and the tokens.

        Raises:
            TypeError: ``text`` is not a str.
        """
        _require_str(text, "analyse")
        steps = []
        for name, step in self._steps():
            text = step(text)
            steps.append((name, text))
        folded = _collapse_spaces(steps[_FOLD_STEPS - 1][1])
        return Normalised(text=text, tokens=tuple(self._search_tokens(text)), steps=tuple(steps), folded=folded)

    def tokens(self, text: str) -> list[str]:
        """Search tokens of ``text`` for BM25: jieba ``cut_for_search`` of the normalised text.

        Punctuation, whitespace and filler tokens are left out; user-dictionary
        words come out whole (and, as ``cut_for_search`` does, also their
        dictionary sub-words).

        Raises:
            TypeError: ``text`` is not a str.
        """
        _require_str(text, "tokens")
        return self._search_tokens(self.normalise(text))

    def extract_region(self, text: str) -> Region | None:
        """The Guangdong region ``text`` mentions, as precisely as it says, or None.

        The first city mentioned wins; a district narrows it when it belongs to
        that city. A district alone implies its city.

        Example: "我在深圳南山" -> ``Region("广东省", "深圳市", "南山区")``;
        "广州" -> ``Region("广东省", "广州市", "")``.

        Raises:
            TypeError: ``text`` is not a str.
        """
        _require_str(text, "extract_region")
        view = self._converter.convert(_nfkc(_clean(text)))
        province: Region | None = None
        cities: list[Region] = []
        districts: list[tuple[Region, ...]] = []
        for _start, _end, found in self._regions.matches(view):
            if not found:  # a word listed as "not a place"
                continue
            if any(r.district for r in found):
                districts.append(found)
            elif any(r.city for r in found):
                cities.extend(r for r in found if r.city)
            elif province is None:
                province = found[0]
        if cities:
            city = cities[0]
            for group in districts:
                for region in group:
                    if (region.province, region.city) == (city.province, city.city):
                        return region
            return city
        for group in districts:
            places = {(r.province, r.city) for r in group}
            if len(places) == 1:
                return group[0] if len(group) == 1 else Region(*next(iter(places)))
        return province

    # ------------------------------------------------------------------ pipeline

    # The steps up to and including "lowercase" make up :meth:`fold`.
    def _steps(self) -> tuple[tuple[str, Callable[[str], str]], ...]:
        return (
            ("clean", _clean),
            ("nfkc", _nfkc),
            ("traditional_to_simplified", self._to_simplified),
            ("cantonese", self._cantonese.replace),
            ("synonyms", self._synonyms.replace),
            ("lowercase", str.lower),
            ("fillers", self._remove_fillers),
            ("punctuation", _strip_punctuation),
            ("whitespace", _collapse_spaces),
        )

    def _to_simplified(self, text: str) -> str:
        return text if text.isascii() else self._converter.convert(text)

    def _remove_fillers(self, text: str) -> str:
        """Drop filler phrases on word boundaries and particles at the end of clauses.

        Word boundaries come from jieba (without HMM), so "请问" in "申请问题" and
        "吧" in "酒吧" stay.
        """
        if not text.strip():
            return text
        words = self._tokenizer().lcut(text, HMM=False)
        offsets = [0]
        for word in words:
            offsets.append(offsets[-1] + len(word))
        word_at = {offset: k for k, offset in enumerate(offsets)}
        removed = [False] * len(words)

        k = 0
        while k < len(words):
            found = self._filler_phrases.match_at(text, offsets[k])
            end = word_at.get(offsets[k] + found[0]) if found else None
            if end is None:  # no phrase, or one ending inside a word
                k += 1
                continue
            for m in range(k, end):
                removed[m] = True
            k = end

        clause_end = True
        for k in range(len(words) - 1, -1, -1):
            word = words[k]
            if removed[k]:
                continue
            if _is_separator(word):
                clause_end = True
            elif clause_end and all(ch in self._particles for ch in word):
                removed[k] = True
            else:
                clause_end = False
        if not any(removed):
            return text
        return "".join(w for w, gone in zip(words, removed, strict=True) if not gone)

    def _search_tokens(self, normalised: str) -> list[str]:
        if not normalised:
            return []
        return [
            w for w in self._tokenizer().cut_for_search(normalised) if w not in self._fillers and not _is_separator(w)
        ]


# --------------------------------------------------------------------------- helpers


def _require_str(text: object, method: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{method}() needs a str, got {type(text).__name__}")


def _build_tokenizer(user_words: tuple[tuple[str, int | None, str | None], ...]) -> Tokenizer:
    """A private jieba tokenizer (not jieba's global one) with the user dictionary.

    jieba announces its dictionary loading on stderr; that is silenced here and
    reported once at DEBUG level instead.
    """
    import jieba

    started = time.perf_counter()
    jieba_logger = logging.getLogger("jieba")
    with _JIEBA_LOG_LOCK:
        level = jieba_logger.level
        jieba_logger.setLevel(logging.WARNING)
        try:
            tokenizer: _JiebaTokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word, freq, tag in user_words:
                if freq is not None:  # never lower the frequency of jieba's own words
                    freq = max(freq, tokenizer.FREQ.get(word, 0))
                tokenizer.add_word(word, freq, tag)
        finally:
            jieba_logger.setLevel(level)
    _log.debug("jieba dictionary loaded with %d user words in %.2f s", len(user_words), time.perf_counter() - started)
    return tokenizer


def _prepared(line: _Line, prepare: Callable[[str], str], text: str, what: str) -> str:
    value = prepare(text)
    if not value:
        raise line.error(f"{what} {text!r} is empty after normalisation")
    return value


def _parse_cantonese(lines: list[_Line], prepare: Callable[[str], str]) -> dict[str, str]:
    table: dict[str, str] = {}
    first: dict[str, int] = {}
    for line in lines:
        columns = line.columns()
        if len(columns) != 2 or not all(columns):
            raise line.error("expected 2 tab-separated columns: Cantonese form, Mandarin form")
        key = _prepared(line, prepare, columns[0], "Cantonese form").lower()
        value = _prepared(line, prepare, columns[1], "Mandarin form")
        if key in table and table[key] != value:
            raise line.error(f"{columns[0]!r} is already mapped to {table[key]!r} on line {first[key]}")
        table[key] = value
        first.setdefault(key, line.number)
    return table


def _parse_synonyms(lines: list[_Line], prepare: Callable[[str], str]) -> dict[str, str]:
    table: dict[str, str] = {}
    first: dict[str, int] = {}
    for line in lines:
        columns = line.columns()
        if not all(columns):
            raise line.error("empty column (two tabs in a row, or a tab at the start)")
        if len(columns) == 1 and any(ch.isspace() for ch in columns[0]):
            raise line.error("columns must be separated by tabs, not spaces")
        canonical = _prepared(line, prepare, columns[0], "canonical form")
        for column in columns:
            key = _prepared(line, prepare, column, "variant").lower()
            if key in table and table[key] != canonical:
                raise line.error(f"{column!r} already belongs to the group of {table[key]!r} on line {first[key]}")
            table[key] = canonical
            first.setdefault(key, line.number)
    return table


def _parse_fillers(lines: list[_Line], prepare: Callable[[str], str]) -> frozenset[str]:
    fillers = set()
    for line in lines:
        if "\t" in line.text:
            raise line.error("one filler a line, without tabs")
        fillers.add(_prepared(line, prepare, line.text.strip(), "filler"))
    return frozenset(fillers)


def _parse_userdict(
    lines: list[_Line], prepare: Callable[[str], str]
) -> tuple[tuple[str, int | None, str | None], ...]:
    words: dict[str, tuple[str, int | None, str | None]] = {}
    for line in lines:
        fields = line.text.split()
        if not 1 <= len(fields) <= 3:
            raise line.error("expected: word [frequency] [tag]")
        freq: int | None = None
        tag: str | None = None
        for extra in fields[1:]:
            if extra.isdigit() and freq is None and tag is None:
                freq = int(extra)
                if freq < 1:
                    raise line.error("frequency must be a positive whole number")
            elif _USERDICT_TAG_RE.match(extra) and tag is None:
                tag = extra
            else:
                raise line.error(f"{extra!r} is neither a frequency (positive whole number) nor a tag (a-z)")
        word = _prepared(line, prepare, fields[0], "word")
        if any(ch.isspace() for ch in word):
            raise line.error(f"word {fields[0]!r} contains a space after normalisation")
        words[word] = (word, freq, tag)
    return tuple(words.values())


def _parse_regions(lines: list[_Line], prepare: Callable[[str], str]) -> dict[str, tuple[Region, ...]]:
    table: dict[str, tuple[Region, ...]] = {}
    for line in lines:
        columns = line.columns()
        if not 3 <= len(columns) <= 4:
            raise line.error("expected 4 tab-separated columns: province, city, district, aliases")
        province, city, district, aliases = (*columns, "")[:4]
        names = [a.strip() for a in _ALIAS_SPLIT_RE.split(_nfkc(aliases)) if a.strip()]
        if province == _STOP_PROVINCE:
            if city or district or not names:
                raise line.error("a '-' line lists words that are not places in its fourth column only")
            for name in names:
                key = _prepared(line, prepare, name, "word").lower()
                if table.get(key):
                    raise line.error(f"{name!r} is listed as a place and as not a place")
                table[key] = ()
            continue
        if not province:
            raise line.error("the province column is empty")
        try:
            region = Region(prepare(province), prepare(city), prepare(district))
        except ValueError as exc:
            raise line.error(str(exc)) from None
        for name in [district or city or province, *names]:
            key = _prepared(line, prepare, name, "name").lower()
            found = table.get(key)
            if found == ():
                raise line.error(f"{name!r} is listed as a place and as not a place")
            if found is None:
                table[key] = (region,)
            elif region not in found:
                table[key] = (*found, region)
    return table
