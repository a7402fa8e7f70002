"""Request checks shared by our channels: a bad request gets a 4xx with a reason, never a crash."""

from __future__ import annotations

from typing import Any

# The checks themselves are shared with the website's relay (standard library only).
from knowledge_base.plain.chat_request import MAX_TEXT, BadRequest, message_text, sender_id

__all__ = ["MAX_TEXT", "BadRequest", "message_text", "parse_body", "sender_id"]


def parse_body(request: Any) -> dict[str, Any]:
    try:
        body = request.json
    except Exception:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
