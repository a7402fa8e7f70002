"""The citizens' chat: the embeddable widget, its page, a demo site, and the relay to Rasa's web channel.

The browser talks only to this app (same origin, strict CSP); the app relays to Rasa.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from flask import Blueprint, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from knowledge_base.plain.chat_request import BadRequest, payload_of, sender_id, text_of
from web_widget.security import client_address

log = logging.getLogger("hotline.web")

chat = Blueprint("chat", __name__)

MAX_BODY_BYTES = 64 * 1024
BUSY: list[dict[str, Any]] = [
    {"text": "抱歉，系统暂时繁忙，没能回答您的问题。您可以稍后再试，或拨打12345由人工为您服务。"},
    {"custom": {"type": "handoff", "work_order": None}},
]


class Relay(Protocol):
    def send(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...


class RasaRelay:
    """Forwards a message to Rasa's web channel and returns the bot's messages.

    Every message says, with ``relay_secret``, that this app's rate limit let it through: the web
    channel limits clients by address, and all of this app's messages come from one.
    """

    def __init__(self, rasa_url: str, timeout: float = 15, *, relay_secret: str = "") -> None:
        self.url = rasa_url.rstrip("/") + "/webhooks/web/webhook"
        # (connect, read): a Rasa worker that is down refuses at once, a hung one is given ``timeout``
        # seconds (relay_timeout), after which the citizen gets BUSY.
        self.timeout = (min(3.0, timeout), timeout)
        self.headers = {"X-Hotline-Relay-Secret": relay_secret} if relay_secret else {}

    def send(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        import requests

        reply = requests.post(self.url, json=body, timeout=self.timeout, headers=self.headers)
        reply.raise_for_status()
        messages = reply.json().get("messages")
        if not isinstance(messages, list):
            raise ValueError("the dialogue answered without messages")
        return messages


@chat.get("/chat")
def chat_page() -> str:
    """The chat itself: opened in the widget's frame, or directly (the iframe fallback)."""
    return render_template("chat.html")


@chat.get("/demo")
def demo_page() -> str:
    """A mock government website with the widget embedded by one script tag."""
    return render_template("demo.html")


SLOW_DOWN = "您发送得太快了，请稍等一分钟再试；紧急情况请直接拨打12345。"


@chat.post("/api/chat")
def relay_message() -> ResponseReturnValue:
    if not current_app.config["HOTLINE_LIMITER"].allow(f"chat:{client_address()}"):
        return jsonify(error=SLOW_DOWN, messages=[{"text": SLOW_DOWN}]), 429
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return jsonify(error=f"the body is larger than {MAX_BODY_BYTES // 1024} KB"), 413
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="the body must be a JSON object"), 400
    try:
        sender = sender_id(body, "sender")
        payload = payload_of(body)
        forward: dict[str, Any] = {"sender": sender}
        if payload is not None:
            forward["payload"] = payload
        else:
            forward["message"] = text_of(body, "message")
    except BadRequest as exc:
        return jsonify(error=str(exc)), 400
    region = body.get("region")
    if isinstance(region, str) and region.strip():
        forward["metadata"] = {"region": region.strip()[:40]}
    relay: Relay = current_app.config["HOTLINE_RELAY"]
    try:
        messages = relay.send(forward)
    except Exception as exc:  # the citizen gets a polite reply whatever broke behind us
        log.error("chat relay failed for sender %s: %s", sender, exc)
        messages = BUSY
    return jsonify(sender=sender, messages=messages)
