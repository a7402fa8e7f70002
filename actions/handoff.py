"""Handoff to a human: the work-order (工单) form and its creation.

The citizen may decline to leave a name or phone number; the work order is created
anyway, and says so. Phone numbers are checked; logs only ever show them masked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime

if TYPE_CHECKING:
    from rasa_sdk.types import DomainDict

log = logging.getLogger("hotline.actions")

DECLINED = "未提供"
_FORM_SLOTS = ("description", "contact_name", "contact_phone")


def _declined(tracker: Tracker) -> bool:
    intent: dict[str, object] = tracker.latest_message.get("intent", {})
    return intent.get("name") == "deny"


class ValidateHandoffForm(FormValidationAction):
    def name(self) -> str:
        return "validate_handoff_form"

    def validate_description(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, str | None]:
        text = str(value or "").strip()
        if len(text) < 2 or text.startswith("/"):
            dispatcher.utter_message(text="请用一两句话说明您要办的事或遇到的问题。")
            return {"description": None}
        return {"description": text[:2000]}

    def validate_contact_name(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, str | None]:
        if _declined(tracker):
            return {"contact_name": DECLINED}
        name = next(tracker.get_latest_entity_values("name"), None) or str(value or "")
        name = name.strip().removeprefix("我叫").removeprefix("我姓").strip("。，,. ")
        if not name or len(name) > 20 or name.startswith("/"):
            dispatcher.utter_message(text="请告诉我怎么称呼您（可以只说姓氏），不方便的话请说“不方便”。")
            return {"contact_name": None}
        return {"contact_name": name}

    def validate_contact_phone(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, str | None]:
        from knowledge_base.plain.privacy import normalise_phone

        if _declined(tracker):
            return {"contact_phone": DECLINED}
        said = next(tracker.get_latest_entity_values("phone"), None) or str(value or "")
        phone = normalise_phone(said)
        if phone is None:
            dispatcher.utter_message(
                text="这个号码好像不完整，请说11位手机号或带区号的固定电话；不方便留电话请说“不方便”。"
            )
            return {"contact_phone": None}
        return {"contact_phone": phone}


def _transcript(tracker: Tracker) -> list[dict[str, str]]:
    lines = []
    for event in tracker.events:
        if event.get("event") in ("user", "bot") and event.get("text"):
            lines.append({"who": "citizen" if event["event"] == "user" else "bot", "text": event["text"]})
    return lines[-50:]


class ActionCreateWorkOrder(Action):
    """Create the work order with the transcript, the entries the bot considered and the region."""

    def name(self) -> str:
        return "action_create_work_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        from knowledge_base.plain.privacy import mask

        phone = tracker.get_slot("contact_phone")
        name = tracker.get_slot("contact_name")
        entries = list(tracker.get_slot("candidates") or [])
        if tracker.get_slot("last_entry_key") and tracker.get_slot("last_entry_key") not in entries:
            entries.append(tracker.get_slot("last_entry_key"))
        reset: list[EventType] = [SlotSet(slot, None) for slot in _FORM_SLOTS] + [SlotSet("failed_attempts", 0.0)]
        try:
            rt = runtime.get()
            order = await asyncio.to_thread(
                rt.interactions.create_work_order,
                channel=tracker.get_latest_input_channel() or "unknown",
                sender_id=tracker.sender_id,
                description=tracker.get_slot("description") or "（未描述）",
                name="" if name in (None, DECLINED) else name,
                phone="" if phone in (None, DECLINED) else phone,
                region=tracker.get_slot("region") or "",
                transcript=_transcript(tracker),
                entries=entries,
            )
        except Exception:
            log.exception("work order could not be created for sender %s", tracker.sender_id)
            dispatcher.utter_message(text="抱歉，工单暂时没能登记成功。请直接拨打12345热线，由人工为您登记。")
            dispatcher.utter_message(json_message={"type": "handoff", "work_order": None})
            return reset
        log.info(
            "work order %s created: channel=%s sender=%s phone=%s",
            order.number,
            order.channel,
            tracker.sender_id,
            mask(order.phone) or "-",
        )
        contact = "工作人员会通过您留的电话联系您。" if order.phone else "您没有留电话，可凭工单号拨打12345查询进度。"
        dispatcher.utter_message(text=f"已为您登记工单，工单号：{order.number}。{contact}")
        dispatcher.utter_message(json_message={"type": "handoff", "work_order": order.number})
        return reset
