"""The website chat box channel: JSON in, the bot's structured messages out, in one request.

POST /webhooks/web/webhook with ``{"sender": "<browser session id>", "message": "..."}`` (or
``"payload"`` for a clicked button, and optional ``"metadata": {"region": "深圳市"}``).
The reply is ``{"sender", "messages": [{"text", "buttons": [{title, payload}]} | {"custom": {...}}]}``,
where custom messages carry the answer's source and handoff / work-order data for the widget.
Rasa 3.6's socket.io channel does not deliver bot messages with the python-socketio it installs
(RasaHQ/rasa#13027); a request-response channel has no such moving part.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from channels.common import BadRequest, message_text, parse_body, sender_id
from channels.dialogue import converse
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

PLEASE_ASK = {"text": "您好，请输入您要咨询的问题。"}
BUSY = [
    {"text": "抱歉，系统暂时繁忙，没能回答您的问题。您可以稍后再试，或拨打12345由人工为您服务。"},
    {"custom": {"type": "handoff", "work_order": None}},
]


class WebInput(InputChannel):
    """Request-response channel for the embeddable chat widget."""

    @classmethod
    def name(cls) -> str:
        return "web"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        web = Blueprint("web_webhook", __name__)

        @web.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @web.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = parse_body(request)
                sender = sender_id(body, "sender")
                message = message_text(body, "message")
            except BadRequest as exc:
                return response.json({"error": str(exc)}, status=400)
            if not message:
                return response.json({"sender": sender, "messages": [PLEASE_ASK]})
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            region = metadata.get("region") if isinstance(metadata.get("region"), str) else None
            found = await converse(
                on_new_message, message, sender, self.name(), {"region": (region or "")[:40] or None}
            )
            if found is None:
                return response.json({"sender": sender, "messages": BUSY})
            messages = [{k: v for k, v in m.items() if k in ("text", "buttons", "custom", "image")} for m in found]
            return response.json({"sender": sender, "messages": messages})

        return web
