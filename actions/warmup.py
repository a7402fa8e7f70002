"""``action_warm_up``: builds this worker's knowledge base and model before the first citizen asks.

Not in the domain, so no conversation ever runs it; ``scripts/bot.sh actions`` calls it once the
server answers, because loading the model inside the request of the first caller costs seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime

if TYPE_CHECKING:
    from rasa_sdk.events import EventType
    from rasa_sdk.types import DomainDict

log = logging.getLogger("hotline.actions")


class ActionWarmUp(Action):
    def name(self) -> str:
        return "action_warm_up"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        try:
            rt = await asyncio.to_thread(runtime.get)
            log.info("action worker warm: knowledge base at KB version %d", rt.kb.kb_version)
        except Exception:
            log.exception("warm-up failed; the first question will try again")
        return []
