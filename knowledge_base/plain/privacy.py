"""Masking of citizens' phone and ID-card numbers for logs and every view but the work order itself."""

from __future__ import annotations

import re

# Mainland mobile numbers, landlines with area code, and 18-digit resident ID numbers.
_ID_CARD = re.compile(r"(?<!\d)(\d{6})(\d{8})(\d{3}[\dXx])(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)(\d{4})(\d{3,4})(?!\d)")
_PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


def mask(text: str) -> str:
    """Replace the middle of every phone and ID-card number in ``text`` with ``*``.

    >>> mask("电话13812345678，身份证440301199001011234")
    '电话138****5678，身份证440301********1234'
    """
    text = _ID_CARD.sub(lambda m: m.group(1) + "*" * 8 + m.group(3), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    return _LANDLINE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def normalise_phone(text: str) -> str | None:
    """A mainland mobile or landline number without spaces and country code, or None if it is not one.

    >>> normalise_phone("+86 138 1234 5678")
    '13812345678'
    """
    digits = re.sub(r"[\s()（）]", "", text or "")
    digits = re.sub(r"^(?:\+?86)", "", digits)
    return digits if _PHONE.match(digits) else None
