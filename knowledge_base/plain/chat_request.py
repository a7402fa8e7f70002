"""Checks of a chat message as every channel receives it: who sends, and a text or a button's payload.

Standard library only: the Rasa channels (Python 3.10, another environment) import it too, so the
website relay and the channels refuse exactly the same requests with the same reasons.
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 2000
# \Z, not $: $ also matches before a final newline, which would reach Rasa as part of the id.
_PAYLOAD = re.compile(r"^/[a-z_]{1,40}(\{[^{}]{0,300}\})?\Z")
_SENDER = re.compile(r"^[\w.:-]{1,128}\Z")


class BadRequest(ValueError):
    """The request cannot be processed; the message says why (returned with HTTP 400)."""


def sender_id(body: dict[str, Any], field: str) -> str:
    """The conversation's id from ``body[field]``.

    Raises:
        BadRequest: missing, not text, or not 1-128 letters, digits, '.', ':', '-' or '_'.
    """
    value = body.get(field)
    if not isinstance(value, str) or not _SENDER.match(value):
        raise BadRequest(f"{field} is required: 1-128 letters, digits, '.', ':', '-' or '_'")
    return value


def payload_of(body: dict[str, Any]) -> str | None:
    """The clicked button's payload, or None when the message is text.

    Raises:
        BadRequest: a payload that is not of the form the bot's buttons use.
    """
    payload = body.get("payload")
    if payload is None:
        return None
    if not isinstance(payload, str) or not _PAYLOAD.match(payload):
        raise BadRequest("payload must be one of the offered buttons' payloads")
    return payload


def text_of(body: dict[str, Any], field: str) -> str:
    """The user's text, whitespace collapsed, lone surrogates dropped, cut at :data:`MAX_TEXT`.

    Example:
        >>> text_of({"message": "社保卡\\ud800  丢了"}, "message")
        '社保卡 丢了'

    Raises:
        BadRequest: no text under ``field``.
    """
    text = body.get(field)
    if not isinstance(text, str):
        raise BadRequest(f"{field} (string) or payload is required")
    # Lone surrogates (possible in JSON "\ud800") cannot be stored or logged: dropped here, once for all channels.
    text = text.encode("utf-8", "ignore").decode("utf-8")
    return " ".join(text.split())[:MAX_TEXT]


def message_text(body: dict[str, Any], text_field: str) -> str:
    """A button's payload if there is one, else the user's text (both checked)."""
    return payload_of(body) or text_of(body, text_field)
