"""The website chat box channel: JSON in, the bot's structured messages out, in one request.

POST /webhooks/web/webhook with ``{"sender": "<browser session id>", "message": "..."}`` (or
``"payload"`` for a clicked button, and optional ``"metadata": {"region": "深圳市"}``).
The reply is ``{"sender", "messages": [{"text", "buttons": [{title, payload}]} | {"custom": {...}}]}``,
where custom messages carry the answer's source and handoff / work-order data for the widget.
Each client address may send ``rate_limit_per_minute`` messages a minute (then HTTP 429 with a polite
reply); the web app's relay sends its own limit's survivors with the header ``X-Hotline-Relay-Secret``,
and those are not counted again as one client.
Rasa 3.6's socket.io channel does not deliver bot messages with the python-socketio it installs
(RasaHQ/rasa#13027); a request-response channel has no such moving part.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.common import BadRequest, message_text, parse_body, sender_id
from channels.dialogue import converse
from channels.limits import ChannelLimiter, client_address, setting
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

log = logging.getLogger("hotline.channel")

RELAY_HEADER = "X-Hotline-Relay-Secret"
PLEASE_ASK = {"text": "您好，请输入您要咨询的问题。"}
SLOW_DOWN = "您发送得太快了，请稍等一分钟再试；紧急情况请直接拨打12345。"
BUSY = [
    {"text": "抱歉，系统暂时繁忙，没能回答您的问题。您可以稍后再试，或拨打12345由人工为您服务。"},
    {"custom": {"type": "handoff", "work_order": None}},
]


class WebInput(InputChannel):
    """Request-response channel for the embeddable chat widget."""

    @classmethod
    def name(cls) -> str:
        return "web"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WebInput:
        credentials = credentials or {}
        return cls(
            ChannelLimiter.from_credentials(credentials),
            relay_secret=str(credentials.get("relay_secret") or ""),
            trusted_proxies=setting(credentials, "trusted_proxies", 0),
        )

    def __init__(
        self, limiter: ChannelLimiter | None = None, *, relay_secret: str = "", trusted_proxies: int = 0
    ) -> None:
        self.limiter = limiter or ChannelLimiter(0)
        self.relay_secret = relay_secret
        self.trusted_proxies = trusted_proxies

    async def over_limit(self, request: Request) -> HTTPResponse | None:
        """None when the message may go on; else the reply refusing it (401 wrong relay secret, 429 too many)."""
        given = request.headers.get(RELAY_HEADER)
        if given is not None:
            if self.relay_secret and hmac.compare_digest(given.encode(), self.relay_secret.encode()):
                return None  # the web app counted this citizen already
            log.warning("web channel: refused a message from %s with a wrong %s", request.ip, RELAY_HEADER)
            return response.json({"error": f"wrong {RELAY_HEADER} (relay_secret of the web app and Rasa)"}, status=401)
        address = client_address(request, self.trusted_proxies)
        if await self.limiter.allow(f"chat:{address}"):
            return None
        log.warning("web channel: %s is over %d messages a minute", address, self.limiter.per_minute)
        return response.json({"error": SLOW_DOWN, "messages": [{"text": SLOW_DOWN}]}, status=429)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        web = Blueprint("web_webhook", __name__)

        @web.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @web.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            refused = await self.over_limit(request)
            if refused is not None:
                return refused
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
