"""Requests (求助 / 投诉 / 举报 / 建议) become work orders: a form that asks only what is still missing.

The message that starts a request is parsed first (:mod:`knowledge_base.plain.request_text`):
what it already says is not asked again, so a request told in one sentence goes straight to the
summary. The summary is read back; "修改" asks which part and re-asks only that. A question
*about* requests ("怎么投诉物业") is the knowledge base's, as every question is.
"""

from __future__ import annotations

import asyncio
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

FORM = "intake_form"
DECLINED = "未提供"
SLOTS = ("description", "address", "happened", "contact_name", "contact_phone")
REQUEST_INTENTS = frozenset({"request_help", "complain", "report_issue", "suggest"})
_KIND_NAMES = {"help": "求助", "complaint": "投诉", "report": "举报", "suggestion": "建议"}
_PART_NAMES = {
    "description": "事项",
    "address": "地点",
    "happened": "时间",
    "contact_name": "称呼",
    "contact_phone": "电话",
}
# Shown in the summary: the citizen confirms the gist, the order keeps all of it.
SUMMARY_DESCRIPTION = 80
# An answer to "在哪里" / "什么时候" up to this long is kept whole; from a longer one the place or time is taken.
SHORT_ANSWER = 30


def start_events(text: str, intent: str, tracker: Tracker) -> list[EventType]:
    """Slots from what the request already says, then the form (which asks the rest)."""
    said = rt_text.parse_request(text, intent)
    kind = said.kind or "help"
    events: list[EventType] = [
        SlotSet("request_kind", _KIND_NAMES[kind]),
        SlotSet("intake_confirm", None),
        SlotSet("intake_editing", None),
    ]
    known = {
        "description": said.description,
        "address": said.address,
        "happened": said.happened,
        "contact_name": said.name or tracker.get_slot("contact_name") or "",
        "contact_phone": said.phone,
    }
    events += [SlotSet(slot, value or None) for slot, value in known.items()]
    region = (tracker.latest_message.get("metadata") or {}).get("region")
    if region and not tracker.get_slot("region"):  # the hotline's line says where; later turns may not
        events.append(SlotSet("region", str(region)))
    log.info("intake start sender=%s kind=%s known=%s", tracker.sender_id, kind, [k for k, v in known.items() if v])
    return [*events, FollowupAction(FORM)]


# A request intent without a request word asks the knowledge base first; with nothing there, this sure it is a request.
SURE_REQUEST = 0.7
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
# Words that make a message a request; "停水" or "太吵" alone may be a question ("停水了怎么办").
_REQUEST_WORD = re.compile(r"投诉|投訴|举报|舉報|检举|檢舉|求助|求救|建议|建議|提意见|提个意见|反映|帮帮|幫幫|救命")


def names_a_request(text: str) -> bool:
    """Whether a message says it is a request ("投诉", "举报", "帮帮忙"...): "<script>…" or "？？" is not,
    whatever the classifier said, and neither is a question without such a word (the knowledge base is asked first)."""
    return bool(_CHINESE.search(text)) and bool(_REQUEST_WORD.search(text))


def unsaid_request(intent: str, confidence: float, text: str) -> bool:
    """A message the knowledge base had nothing for that is a request all the same: the classifier is sure,
    or the citizen says "我要投诉……"."""
    sure = (
        intent in REQUEST_INTENTS
        and confidence >= SURE_REQUEST
        and bool(_CHINESE.search(text))
        and not rt_text.asks_how(text)
    )
    return sure or rt_text.is_request(text)


class ActionStartIntake(Action):
    """A request intent: the work-order form, unless the message asks *how* to complain (a question)."""

    def name(self) -> str:
        return "action_start_intake"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        from actions.answer import ActionAnswer
        from actions.routing import split_preamble

        text = (tracker.latest_message.get("text") or "").strip()
        intent = str((tracker.latest_message.get("intent") or {}).get("name") or "")
        try:
            if text.startswith("/"):  # a button: "我要投诉" and the like
                return start_events("", intent, tracker)
            said = split_preamble(text)
            if not said.question or rt_text.asks_how(said.question) or not names_a_request(said.question):
                return await ActionAnswer().run(dispatcher, tracker, domain)  # a question, a greeting, or noise
            return start_events(text, intent, tracker)
        except Exception:
            log.exception("action_start_intake failed for sender %s", tracker.sender_id)
            dispatcher.utter_message(text=replies.SORRY_BROKEN, buttons=replies.handoff_buttons())
            return []


def _declined(tracker: Tracker, value: object) -> bool:
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    return (intent == "deny" and len(str(value or "")) <= 6) or rt_text.declined(str(value or ""))


def _said(value: object) -> str:
    return rt_text.plain_text(str(value or ""))


class ValidateIntakeForm(FormValidationAction):
    """Checks each answer; bad ones get a polite question back, never an error."""

    def name(self) -> str:
        return "validate_intake_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return [*SLOTS, "intake_confirm"]

    def validate_description(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = _said(value)
        if str(value or "").startswith("/") or len(text) < 2 or not rt_text.has_words(text):
            dispatcher.utter_message(text=replies.INTAKE_DESCRIPTION_AGAIN)
            return {"description": None}
        if len(text) > rt_text.MAX_DESCRIPTION:
            dispatcher.utter_message(text=replies.INTAKE_DESCRIPTION_CUT.format(limit=rt_text.MAX_DESCRIPTION))
            return {"description": text[: rt_text.MAX_DESCRIPTION]}
        return {"description": text}

    def validate_address(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _declined(tracker, value):
            return {"address": DECLINED}
        text = _said(value)
        found = rt_text.parse_request(text).address
        if not rt_text.has_words(text) or str(value or "").startswith("/"):
            dispatcher.utter_message(text=replies.INTAKE_ADDRESS_AGAIN)
            return {"address": None}
        short = text.strip("，,。. ")
        return {"address": short if len(short) <= SHORT_ANSWER else (found or short[:200])}

    def validate_happened(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _declined(tracker, value):
            return {"happened": DECLINED}
        text = _said(value)
        if not rt_text.has_words(text) or str(value or "").startswith("/"):
            dispatcher.utter_message(text=replies.INTAKE_TIME_AGAIN)
            return {"happened": None}
        # A short answer is the answer ("上周五开始"); from a long one only the time is kept.
        short = text.strip("，,。. ")
        return {
            "happened": short if len(short) <= SHORT_ANSWER else (rt_text.parse_request(text).happened or short[:200])
        }

    def validate_contact_name(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _declined(tracker, value):
            return {"contact_name": DECLINED}
        text = _said(value)
        name = rt_text.parse_request(text).name or text
        name = name.removeprefix("我叫").removeprefix("我姓").strip("。，,. ")
        if not rt_text.has_words(name) or len(name) > 20 or name.startswith("/"):
            dispatcher.utter_message(text=replies.INTAKE_NAME_AGAIN)
            return {"contact_name": None}
        return {"contact_name": name}

    def validate_contact_phone(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        from knowledge_base.plain.privacy import normalise_phone

        if _declined(tracker, value):
            return {"contact_phone": DECLINED}
        said = rt_text.spoken_digits(str(value or ""))
        phone = rt_text.parse_request(said).phone or normalise_phone(said)
        if phone is None or not phone:
            dispatcher.utter_message(text=replies.INTAKE_PHONE_AGAIN)
            return {"contact_phone": None}
        return {"contact_phone": phone}

    def validate_intake_confirm(
        self, value: object, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        picked = _PICKED.search(text)
        part = picked[1] if picked and picked[1] in SLOTS else rt_text.which_part(text)
        if picked or tracker.get_slot("intake_editing") or rt_text.confirmation(text) == "change":
            if part:  # re-ask only that part; the summary comes again after it
                return {part: None, "intake_confirm": None, "intake_editing": None}
            return {"intake_confirm": None, "intake_editing": True}
        if _CANCEL.search(text):
            return {"intake_confirm": "cancel"}
        if rt_text.confirmation(text) == "yes" or intent == "affirm" or text == "/affirm":
            return {"intake_confirm": "yes"}
        if intent == "deny" or text == "/deny":
            return {"intake_confirm": None, "intake_editing": True}
        dispatcher.utter_message(text=replies.INTAKE_CONFIRM_AGAIN)
        return {"intake_confirm": None}


_CANCEL = re.compile(r"^(?:取消|不登记了|不登記了|不用登记|不要了|算了|不提交)")
_PICKED = re.compile(r'^/deny\{"part": ?"(\w+)"\}$')


def summary(tracker: Tracker) -> str:
    """The order as it will be registered, read back to the citizen."""
    description = str(tracker.get_slot("description") or "")
    if len(description) > SUMMARY_DESCRIPTION:
        description = description[:SUMMARY_DESCRIPTION] + "……"
    parts = [
        f"类型：{tracker.get_slot('request_kind') or '求助'}",
        f"事项：{description}",
        f"地点：{tracker.get_slot('address') or DECLINED}",
        f"时间：{tracker.get_slot('happened') or DECLINED}",
        f"称呼：{tracker.get_slot('contact_name') or DECLINED}",
        f"电话：{tracker.get_slot('contact_phone') or DECLINED}",
    ]
    return replies.INTAKE_SUMMARY.format(parts="；\n".join(parts))


class ActionAskIntakeConfirm(Action):
    """The form's last question: the summary and 确认 / 修改, or which part to change."""

    def name(self) -> str:
        return "action_ask_intake_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if tracker.get_slot("intake_editing"):
            dispatcher.utter_message(
                text=replies.INTAKE_WHICH_PART,
                buttons=[
                    {"title": name, "payload": f'/deny{{"part": "{slot}"}}'} for slot, name in _PART_NAMES.items()
                ],
            )
            return []
        dispatcher.utter_message(
            text=summary(tracker),
            buttons=[{"title": "确认", "payload": "/affirm"}, {"title": "修改", "payload": "/deny"}],
        )
        return []


def _transcript(tracker: Tracker) -> list[dict[str, str]]:
    lines = []
    for event in tracker.events:
        if event.get("event") in ("user", "bot") and event.get("text"):
            lines.append({"who": "citizen" if event["event"] == "user" else "bot", "text": event["text"][:2000]})
    return lines[-50:]


_CODES = {name: code for code, name in _KIND_NAMES.items()}


def _given(tracker: Tracker, slot: str) -> str:
    value = tracker.get_slot(slot)
    return "" if value in (None, DECLINED) else str(value)


class ActionSubmitIntake(Action):
    """The citizen confirmed: create the work order and tell its number (read digit by digit on the phone)."""

    def name(self) -> str:
        return "action_submit_intake"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        from knowledge_base.plain.privacy import mask

        reset: list[EventType] = [
            SlotSet(slot, None) for slot in (*SLOTS, "intake_confirm", "intake_editing", "request_kind")
        ]
        if tracker.get_slot("intake_confirm") == "cancel":
            dispatcher.utter_message(text=replies.INTAKE_CANCELLED)
            return reset
        try:
            rt = runtime.get()
            order = await asyncio.to_thread(
                rt.interactions.orders.create,
                channel=tracker.get_latest_input_channel() or "unknown",
                sender_id=tracker.sender_id,
                description=_given(tracker, "description") or "（未描述）",
                kind=_CODES.get(str(tracker.get_slot("request_kind")), "help"),
                name=_given(tracker, "contact_name"),
                phone=_given(tracker, "contact_phone"),
                region=str(
                    tracker.get_slot("region") or (tracker.latest_message.get("metadata") or {}).get("region") or ""
                ),
                address=_given(tracker, "address"),
                happened=_given(tracker, "happened"),
                transcript=_transcript(tracker),
                entries=[str(tracker.get_slot("last_entry_key"))] if tracker.get_slot("last_entry_key") else [],
            )
        except Exception:
            log.exception("request could not be registered for sender %s", tracker.sender_id)
            dispatcher.utter_message(text=replies.INTAKE_FAILED)
            dispatcher.utter_message(json_message={"type": "handoff", "work_order": None})
            return reset
        log.info(
            "request %s registered: kind=%s channel=%s sender=%s phone=%s",
            order.number,
            order.kind,
            order.channel,
            tracker.sender_id,
            mask(order.phone) or "-",
        )
        contact = replies.INTAKE_CONTACT if order.phone else replies.INTAKE_NO_CONTACT
        dispatcher.utter_message(
            text=replies.INTAKE_DONE.format(number=order.number, kind=order.kind_name, contact=contact)
        )
        dispatcher.utter_message(json_message={"type": "work_order", "work_order": order.number, "kind": order.kind})
        return reset
