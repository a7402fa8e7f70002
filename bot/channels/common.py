"""Request checks shared by our channels: a bad request gets a 4xx with a reason, never a crash."""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 2000
_PAYLOAD = re.compile(r"^/[a-z_]{1,40}(\{[^{}]{0,300}\})?$")
_SENDER = re.compile(r"^[\w.:-]{1,128}$")


class BadRequest(ValueError):
    """The request cannot be processed; the message says why (returned with HTTP 400)."""


def parse_body(request: Any) -> dict[str, Any]:
    try:
        body = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def sender_id(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not _SENDER.match(value):
        raise BadRequest(f"{field} is required: 1-128 letters, digits, '.', ':', '-' or '_'")
    return value


def message_text(body: dict[str, Any], text_field: str) -> str:
    """The user's text (whitespace collapsed, cut at MAX_TEXT) or a button payload, checked."""
    payload, text = body.get("payload"), body.get(text_field)
    if payload is not None:
        if not isinstance(payload, str) or not _PAYLOAD.match(payload):
            raise BadRequest("payload must be one of the offered buttons' payloads")
        return payload
    if isinstance(text, str):
        return " ".join(text.split())[:MAX_TEXT]
    raise BadRequest(f"{text_field} (string) or payload is required")
