"""The one-number hotline (一号对外) channel: a telephone IVR / speech gateway talks to Rasa over HTTP.

POST /webhooks/hotline/webhook with header ``X-Hotline-Secret`` and JSON
``{"call_id": "...", "text": "<speech recognition result>", "caller_id": "...", "region": "深圳市"}``
or, after the caller pressed a key, ``{"call_id": "...", "payload": "<the option's payload>"}``.
The reply is ``{"call_id", "speech": [sentences], "prompt", "options": [{digit, title, payload}],
"handoff": bool, "work_order"}``: text written for speech, no links or markup.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from channels.common import BadRequest, message_text, parse_body, sender_id
from channels.dialogue import converse
from channels.limits import ChannelLimiter
from channels.speech import to_speech
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

BUSY = {
    "speech": ["抱歉，系统暂时繁忙，正在为您转接人工服务，请稍候。"],
    "prompt": "",
    "options": [],
    "handoff": True,
    "work_order": None,
}

# A caller (call_id) over rate_limit_per_minute hears this and may speak again a minute later.
SLOW_DOWN = {
    "speech": ["抱歉，您说得太快了，系统来不及处理，请稍后再试。"],
    "prompt": "",
    "options": [],
    "handoff": False,
    "work_order": None,
}


class HotlineInput(InputChannel):
    """Speech-gateway channel, authenticated with a shared secret."""

    @classmethod
    def name(cls) -> str:
        return "hotline"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> HotlineInput:
        credentials = credentials or {}
        return cls(credentials.get("secret") or "", ChannelLimiter.from_credentials(credentials))

    def __init__(self, secret: str, limiter: ChannelLimiter | None = None) -> None:
        if len(secret) < 16:
            raise ValueError(
                "the hotline channel needs a shared secret of at least 16 characters (set HOTLINE_GATEWAY_SECRET)"
            )
        self.secret = secret
        self.limiter = limiter or ChannelLimiter(0)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hotline = Blueprint("hotline_webhook", __name__)

        @hotline.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hotline.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            given = request.headers.get("X-Hotline-Secret", "")
            if not hmac.compare_digest(given.encode(), self.secret.encode()):
                return response.json({"error": "wrong or missing X-Hotline-Secret"}, status=401)
            try:
                body = parse_body(request)
                call_id = sender_id(body, "call_id")
                message = message_text(body, "text")
            except BadRequest as exc:
                return response.json({"error": str(exc)}, status=400)
            # Per call, not per address: the whole gateway connects from one.
            if not await self.limiter.allow(f"call:{call_id}"):
                return response.json({"call_id": call_id, **SLOW_DOWN}, status=429)
            if not message:
                return response.json({"call_id": call_id, **to_speech([{"text": "您好，请说出您要咨询的问题。"}])})
            region = body.get("region") if isinstance(body.get("region"), str) else None
            metadata = {"region": (region or "")[:40] or None, "caller_id": str(body.get("caller_id") or "")[:32]}
            messages = await converse(on_new_message, message, call_id, self.name(), metadata)
            if messages is None:
                return response.json({"call_id": call_id, **BUSY})
            return response.json({"call_id": call_id, **to_speech(messages)})

        return hotline
