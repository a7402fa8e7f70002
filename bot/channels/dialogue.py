"""One turn of the dialogue for our channels: hand the message to Rasa and collect the bot's replies.

A failure, or no reply at all (what Rasa gives when the action server is down), comes back as
None so every channel answers the citizen politely instead of with silence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

log = logging.getLogger("hotline.channel")


async def converse(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    text: str,
    sender: str,
    channel: str,
    metadata: dict[str, Any],
) -> list[dict[str, Any]] | None:
    """The bot's messages for ``text``, or None when the dialogue failed or said nothing."""
    collector = CollectingOutputChannel()
    try:
        await on_new_message(UserMessage(text, collector, sender, input_channel=channel, metadata=metadata))
    except Exception:
        log.exception("%s sender %s: the dialogue failed", channel, sender)
        return None
    if not collector.messages:
        log.error("%s sender %s: no reply from the dialogue (action server down?)", channel, sender)
        return None
    return collector.messages
