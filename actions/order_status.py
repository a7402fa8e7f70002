""" "我的工单处理到哪了": the state, department and reply of a work order, for its number and phone digits.

Nothing is said without both the number and the last four digits of the phone left on the
order; a wrong pair gets exactly the words a missing order gets, and after
``order_lookup_attempts`` wrong pairs in an hour the citizen is sent to a person at 12345.
Callers may say the number with pauses or in words (一二三 / 幺): it is read as digits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import TYPE_CHECKING, Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import replies, runtime
from knowledge_base.plain import request_text as rt_text

if TYPE_CHECKING:
    from rasa_sdk.types import DomainDict

log = logging.getLogger("hotline.actions")

FORM = "order_status_form"
NOT_GIVEN = "未提供"
_ASKS_HOW = re.compile(r"怎么查|怎样查|如何查|在哪查|哪里查|去哪查|怎么回事|为什么|为何|点解|點解")


@functools.cache
def _attempts() -> int:
    """``order_lookup_attempts`` from the deployment's settings (read once per worker)."""
    from knowledge_base.settings import load_settings

    return load_settings().order_lookup_attempts


def start_events(text: str) -> list[EventType]:
    said = rt_text.parse_status_query(text)
    return [
        SlotSet("order_number", said.number or None),
        SlotSet("order_last4", said.last4 or None),
        FollowupAction(FORM),
    ]


class ActionStartStatus(Action):
    """ "查询工单进度": take what the message already says, then ask for the rest."""

    def name(self) -> str:
        return "action_start_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = (tracker.latest_message.get("text") or "").strip()
        if text.startswith("/"):
            return start_events("")
        said = rt_text.parse_status_query(text)
        if _ASKS_HOW.search(text) and not said.number:  # "工单号查不到是怎么回事", "怎么查工单": questions
            from actions.answer import ActionAnswer

            return await ActionAnswer().run(dispatcher, tracker, domain)
        return start_events(text)


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_number(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "")
        if rt_text.declined(text):
            return {"order_number": NOT_GIVEN, "order_last4": NOT_GIVEN}
        number = rt_text.parse_status_query(text).number
        if not number:
            dispatcher.utter_message(text=replies.STATUS_NUMBER_AGAIN)
            return {"order_number": None}
        return {"order_number": number}

    def validate_order_last4(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "")
        if rt_text.declined(text):
            return {"order_last4": NOT_GIVEN}
        said = rt_text.parse_status_query(text)
        if not said.last4:
            dispatcher.utter_message(text=replies.STATUS_LAST4_AGAIN)
            return {"order_last4": None}
        return {"order_last4": said.last4}


def status_reply(outcome: str, order: Any) -> str:
    """What the citizen is told: the same words for a wrong pair and a missing order."""
    if outcome == "limited":
        return replies.STATUS_LIMITED
    if outcome != "found" or order is None:
        return replies.STATUS_NOT_FOUND
    text = replies.STATUS_FOUND.format(
        number=order.number,
        kind=order.kind_name,
        state=order.state_name,
        department=order.department or replies.STATUS_NO_DEPARTMENT,
    )
    if order.status in ("done", "visited") and order.reply:
        text += replies.STATUS_REPLY.format(reply=order.reply)
    elif order.status in ("done", "visited"):
        text += replies.STATUS_CLOSED
    return text


class ActionOrderStatus(Action):
    """Both given: look the order up (counted, limited) and say where it stands."""

    def name(self) -> str:
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        number = str(tracker.get_slot("order_number") or "")
        last4 = str(tracker.get_slot("order_last4") or "")
        reset: list[EventType] = [SlotSet("order_number", None), SlotSet("order_last4", None)]
        if NOT_GIVEN in (number, last4) or not number or not last4:
            dispatcher.utter_message(text=replies.STATUS_NEEDS_BOTH)
            return reset
        try:
            rt = runtime.get()
            found = await asyncio.to_thread(
                rt.interactions.orders.lookup, number, last4, sender_id=tracker.sender_id, attempts=_attempts()
            )
        except Exception:
            log.exception("status query failed for sender %s", tracker.sender_id)
            dispatcher.utter_message(text=replies.STATUS_BROKEN)
            return reset
        log.info("status query sender=%s outcome=%s", tracker.sender_id, found.outcome)
        dispatcher.utter_message(text=status_reply(found.outcome, found.order))
        return reset
