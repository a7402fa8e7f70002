"""One turn of the dialogue for our channels: hand the message to Rasa and collect the bot's replies.

A failure, no reply at all (what Rasa gives when the action server is down or an action timed out),
or a turn that takes longer than ``dialogue_timeout`` comes back as None, so every channel answers the
citizen politely instead of with silence or a wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

log = logging.getLogger("hotline.channel")

# Seconds one message may take (dialogue_timeout); configure_timeouts sets it when Rasa starts.
TURN_SECONDS = 10.0


def configure_timeouts(action_seconds: float, turn_seconds: float) -> None:
    """Rasa's wait for the action server, and our channels' wait for one turn, in seconds.

    Called by ``scripts/bot.sh rasa`` before Rasa starts, from ``action_timeout`` and ``dialogue_timeout``.
    Rasa 3.6 waits 5 minutes for an action and reads no setting for it (``endpoints.yml`` has no timeout):
    the module constant its remote action passes to aiohttp is the one place to shorten the wait.
    """
    global TURN_SECONDS
    if not (0 < action_seconds <= 600 and 0 < turn_seconds <= 600):
        raise ValueError(f"timeouts must be 0-600 seconds, got action {action_seconds}, turn {turn_seconds}")
    import rasa.core.actions.action

    rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT = action_seconds  # type: ignore[attr-defined]
    TURN_SECONDS = turn_seconds


async def converse(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    text: str,
    sender: str,
    channel: str,
    metadata: dict[str, Any],
) -> list[dict[str, Any]] | None:
    """The bot's messages for ``text``, or None when the dialogue failed, said nothing or took too long."""
    collector = CollectingOutputChannel()
    message = UserMessage(text, collector, sender, input_channel=channel, metadata=metadata)
    try:
        await asyncio.wait_for(on_new_message(message), TURN_SECONDS)
    except asyncio.TimeoutError:  # noqa: UP041  # Rasa runs on Python 3.10, where it is not the builtin yet
        log.error("%s sender %s: no reply within dialogue_timeout (%g s); busy reply", channel, sender, TURN_SECONDS)
        return None
    except Exception:
        log.exception("%s sender %s: the dialogue failed", channel, sender)
        return None
    if not collector.messages:
        log.error("%s sender %s: no reply from the dialogue (action server down?)", channel, sender)
        return None
    return collector.messages
