"""Answering from the knowledge base: answer, "您是想问……" choice, region, follow-ups, aspects and feedback.

Every action catches its own failures: a citizen gets a polite message and a way to
a human, never silence or a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import replies, runtime
from actions.context import cities_that_differ, follow_up_query, is_follow_up
from actions.routing import DIALOGUE_ACTS, NoAnswerReply, split_preamble, when_kb_has_nothing
from knowledge_base.plain.aspects import Aspect, follow_up_aspect

if TYPE_CHECKING:
    from rasa_sdk.types import DomainDict

    from knowledge_base.records import Entry, SearchResult

log = logging.getLogger("hotline.actions")

# A region statement ("我在深圳南山区") has few characters beyond the place name.
REGION_ONLY_SLACK = 6
# A caller keeps at most three spoken options in mind (the keypad prompt adds 都不是 and 转人工);
# the website shows up to clarify_max.
SPOKEN_CHOICES_MAX = 3


def _channel(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "unknown"


def _region(tracker: Tracker) -> str | None:
    """The citizen's region: what they told us, else what their channel says (e.g. the hotline's line)."""
    slot = tracker.get_slot("region")
    if slot:
        return str(slot)
    metadata = tracker.latest_message.get("metadata") or {}
    return metadata.get("region") or None


def _search(rt: runtime.Runtime, query: str, region: str | None) -> SearchResult:
    kb = rt.fresh_kb()
    try:
        return kb.search(query, region=region)
    except ValueError:
        # An unknown region must not cost the citizen an answer: search everywhere.
        return kb.search(query)


def _log(rt: runtime.Runtime, tracker: Tracker, query: str, result: SearchResult) -> None:
    from knowledge_base.plain.privacy import mask

    best = result.best
    rt.interactions.log_answer(
        channel=_channel(tracker),
        sender_id=tracker.sender_id,
        query=mask(query),
        decision=result.decision.value,
        entry_key=best.entry.key if best and result.decision.value == "answer" else "",
        score=best.score if best else None,
        kb_version=result.kb_version,
        thresholds=result.thresholds,
        candidates=[(h.entry.key, round(h.score, 4)) for h in result.hits],
    )
    log.info(
        "answer channel=%s sender=%s decision=%s entry=%s score=%s kb_version=%d query=%r",
        _channel(tracker),
        tracker.sender_id,
        result.decision.value,
        best.entry.key if best else "-",
        f"{best.score:.3f}" if best else "-",
        result.kb_version,
        mask(query)[:80],
    )


def utter_entry(dispatcher: CollectingDispatcher, entry: Entry, kb_version: int) -> list[EventType]:
    """Say the answer, then its source as structured data (each channel renders it its own way),
    offer feedback, and remember the entry for follow-ups."""
    dispatcher.utter_message(text=entry.answer, buttons=replies.feedback_buttons())
    dispatcher.utter_message(json_message=replies.source_of(entry))
    return [
        SlotSet("last_entry_key", entry.key),
        SlotSet("last_entry_question", entry.question),
        SlotSet("last_kb_version", float(kb_version)),
        SlotSet("candidates", None),
        SlotSet("pending_query", None),
        SlotSet("failed_attempts", 0.0),
    ]


def answer(
    dispatcher: CollectingDispatcher, tracker: Tracker, question: str, result: SearchResult | None = None
) -> list[EventType]:
    """Search (unless ``result`` is that search) and reply according to the decision. Synchronous:
    run it in a worker thread."""
    rt = runtime.get()
    region = _region(tracker)
    query = _query(tracker, question)
    if result is None:
        result = _search(rt, query, region)
    _log(rt, tracker, query, result)
    events: list[EventType] = [SlotSet("region", region)] if region and not tracker.get_slot("region") else []
    decision = result.decision.value
    if decision == "answer":
        assert result.best is not None  # an answer always has its hit
        return events + utter_entry(dispatcher, result.best.entry, result.kb_version)
    if decision == "clarify":
        offered = list(result.candidates())
        if _channel(tracker) == "hotline":
            offered = offered[:SPOKEN_CHOICES_MAX]
        cities = (
            [] if region else cities_that_differ([[(r.province, r.city) for r in h.entry.regions] for h in offered])
        )
        if cities:
            dispatcher.utter_message(
                text="这项业务各市办理方式不同，请问您在哪个城市？",
                buttons=[{"title": c, "payload": f'/inform_region{{"region": "{c}"}}'} for c in cities],
            )
            return [*events, SlotSet("pending_query", query)]
        buttons = [
            {"title": h.entry.question, "payload": f'/choose_entry{{"entry_key": "{h.entry.key}"}}'} for h in offered
        ]
        buttons.append({"title": "都不是", "payload": "/deny"})
        dispatcher.utter_message(text=replies.CHOOSE_PROMPT, buttons=buttons)
        return [*events, SlotSet("candidates", [h.entry.key for h in offered]), SlotSet("pending_query", query)]
    failures = float(tracker.get_slot("failed_attempts") or 0) + 1
    text = replies.TWO_FAILURES if failures >= 2 else replies.NO_ANSWER
    dispatcher.utter_message(text=text, buttons=replies.handoff_buttons())
    return [*events, SlotSet("failed_attempts", failures), SlotSet("pending_query", query)]


def _query(tracker: Tracker, question: str) -> str:
    """What to search for: a short follow-up ("那如果是外地户口呢") takes its topic from the entry in context."""
    previous = tracker.get_slot("last_entry_question")
    return follow_up_query(previous, question) if previous and is_follow_up(question) else question


def respond(
    dispatcher: CollectingDispatcher, tracker: Tracker, question: str, intent: str, confidence: float
) -> list[EventType]:
    """A typed message: an aspect of the entry in context, the knowledge base's reply, or else the dialogue act's."""
    aspect = follow_up_aspect(question)
    if aspect is not None:
        return answer_aspect(dispatcher, tracker, aspect)
    rt = runtime.get()
    result = _search(rt, _query(tracker, question), _region(tracker))
    if result.decision.value != "no_answer":
        return answer(dispatcher, tracker, question, result)
    from actions.intake import start_events, unsaid_request

    if intent not in DIALOGUE_ACTS and unsaid_request(intent, confidence, question):
        # A request without a request word, or "我要投诉……" the classifier missed: nothing in the knowledge base,
        # so a work order.
        return start_events(question, intent, tracker)
    best_dense = result.best.dense if result.best else None
    reply = when_kb_has_nothing(intent, confidence, question, best_dense)
    if reply is NoAnswerReply.DIALOGUE_ACT:
        return dialogue_act(dispatcher, tracker, intent)
    if reply is NoAnswerReply.OUT_OF_SCOPE:
        log.info("out of scope channel=%s sender=%s best=%s", _channel(tracker), tracker.sender_id, best_dense)
        dispatcher.utter_message(response="utter_out_of_scope")
        return []
    return answer(dispatcher, tracker, question, result)


_ACT_RESPONSES = {
    "greet": "utter_greet",
    "goodbye": "utter_goodbye",
    "thank": "utter_you_are_welcome",
    "affirm": "utter_how_can_i_help",
    "give_phone": "utter_how_can_i_help",
    "give_name": "utter_how_can_i_help",
    "deny": "utter_ask_rephrase",
    "out_of_scope": "utter_out_of_scope",
}


def dialogue_act(dispatcher: CollectingDispatcher, tracker: Tracker, intent: str) -> list[EventType]:
    """The reply to a turn of the conversation that is not a question (or to a button)."""
    if intent in ("feedback_useful", "feedback_useless"):
        return feedback(dispatcher, tracker, useful=intent == "feedback_useful")
    if intent == "show_answer":
        return show_whole_answer(dispatcher, tracker)
    response = _ACT_RESPONSES.get(intent)
    if response is None:
        dispatcher.utter_message(text=replies.ASK_REPHRASE)
    else:
        dispatcher.utter_message(response=response)
    return []


def _entry_in_context(tracker: Tracker) -> Entry | None:
    """The entry the citizen was last answered with, if it is still served."""
    from datetime import date

    from knowledge_base.errors import EntryNotFound

    key = tracker.get_slot("last_entry_key")
    if not key:
        return None
    try:
        entry = runtime.get().kb.store.get_by_key(str(key))
    except EntryNotFound:
        return None
    return entry if entry.in_effect(date.today()) else None


def answer_aspect(dispatcher: CollectingDispatcher, tracker: Tracker, aspect: Aspect) -> list[EventType]:
    """A follow-up such as "要带什么材料": that part of the service guide of the entry in context."""
    entry = _entry_in_context(tracker)
    if entry is None:
        dispatcher.utter_message(text=replies.WHICH_SERVICE.format(label=aspect.label))
        return []
    text = entry.guide.get(aspect.name)
    log.info("aspect sender=%s entry=%s aspect=%s found=%s", tracker.sender_id, entry.key, aspect.name, bool(text))
    if not text:
        dispatcher.utter_message(
            text=replies.ASPECT_MISSING.format(question=entry.question, label=aspect.label),
            buttons=replies.whole_answer_buttons(),
        )
        return []
    dispatcher.utter_message(
        text=replies.ASPECT_ANSWER.format(question=entry.question, label=aspect.label, text=text),
        buttons=replies.feedback_buttons(),
    )
    dispatcher.utter_message(json_message=replies.source_of(entry))
    return []


def show_whole_answer(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The "查看完整答复" button: the whole answer of the entry in context."""
    entry = _entry_in_context(tracker)
    if entry is None:
        dispatcher.utter_message(text=replies.ASK_REPHRASE)
        return []
    return utter_entry(dispatcher, entry, runtime.get().kb.kb_version)


def feedback(dispatcher: CollectingDispatcher, tracker: Tracker, *, useful: bool) -> list[EventType]:
    """有用 / 没用 after an answer, recorded against the entry and the KB version."""
    key = tracker.get_slot("last_entry_key")
    if not key:
        dispatcher.utter_message(text="请先告诉我您想咨询的问题。")
        return []
    try:
        rt = runtime.get()
        rt.interactions.record_feedback(
            channel=_channel(tracker),
            sender_id=tracker.sender_id,
            entry_key=key,
            kb_version=int(tracker.get_slot("last_kb_version") or rt.kb.kb_version),
            useful=useful,
        )
        log.info("feedback sender=%s entry=%s useful=%s", tracker.sender_id, key, useful)
    except Exception:
        log.exception("feedback could not be recorded for sender %s", tracker.sender_id)
    if useful:
        dispatcher.utter_message(text=replies.FEEDBACK_THANKS)
    else:
        dispatcher.utter_message(text=replies.FEEDBACK_SORRY, buttons=replies.handoff_buttons())
    return []


class ActionAnswer(Action):
    """Every typed message and every button outside a form: the knowledge base first, then the dialogue act.

    The rules send every intent but 转人工, a region, and a choice here: the intent
    classifier only chooses the reply when the knowledge base has nothing (see
    :mod:`actions.routing`).
    """

    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = (tracker.latest_message.get("text") or "").strip()
        intent = tracker.latest_message.get("intent") or {}
        intent_name = str(intent.get("name") or "")
        confidence = float(intent.get("confidence") or 0.0)
        try:
            if text.startswith("/"):  # a button: its payload names the intent exactly
                return await asyncio.to_thread(dialogue_act, dispatcher, tracker, intent_name)
            said = split_preamble(text)
            events: list[EventType] = [SlotSet("contact_name", said.name)] if said.name else []
            if not said.question:
                if said.name:
                    dispatcher.utter_message(text=replies.GREET_BY_NAME.format(name=said.name))
                elif said.greeted:
                    dispatcher.utter_message(response="utter_greet")
                else:
                    dispatcher.utter_message(text=replies.ASK_QUESTION)
                return events
            return events + await asyncio.to_thread(
                respond, dispatcher, tracker, said.question, intent_name, confidence
            )
        except Exception:
            log.exception("action_answer failed for sender %s", tracker.sender_id)
            dispatcher.utter_message(text=replies.SORRY_BROKEN, buttons=replies.handoff_buttons())
            return []


class ActionChooseEntry(Action):
    """The citizen picked one of the offered questions: answer exactly that entry."""

    def name(self) -> str:
        return "action_choose_entry"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        key = next(tracker.get_latest_entity_values("entry_key"), None)
        offered = tracker.get_slot("candidates") or []
        try:
            if not key or key not in offered:
                dispatcher.utter_message(text=replies.NOT_A_CANDIDATE)
                return []
            rt = runtime.get()
            entry = await asyncio.to_thread(rt.kb.store.get_by_key, key)
            from datetime import date

            if not entry.in_effect(date.today()):
                dispatcher.utter_message(text=replies.NOT_A_CANDIDATE)
                return []
            log.info("choice channel=%s sender=%s entry=%s", _channel(tracker), tracker.sender_id, key)
            # Logged so the curation queue can tell a resolved "您是想问" from one nobody answered.
            await asyncio.to_thread(
                rt.interactions.log_answer,
                channel=_channel(tracker),
                sender_id=tracker.sender_id,
                query=entry.question,
                decision="chosen",
                entry_key=key,
                score=None,
                kb_version=rt.kb.kb_version,
                thresholds={},
                candidates=[],
            )
            return utter_entry(dispatcher, entry, rt.kb.kb_version)
        except Exception:
            log.exception("action_choose_entry failed for sender %s", tracker.sender_id)
            dispatcher.utter_message(text=replies.SORRY_BROKEN, buttons=replies.handoff_buttons())
            return []


class ActionSetRegion(Action):
    """Remember where the citizen is; answer the question that waited for it."""

    def name(self) -> str:
        return "action_set_region"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        said = next(tracker.get_latest_entity_values("region"), None) or tracker.latest_message.get("text") or ""
        try:
            rt = runtime.get()
            found = rt.kb.normaliser.extract_region(said)
            if found is None:
                dispatcher.utter_message(text="抱歉，没听清您所在的城市，请说一下城市名，比如“深圳”。")
                return []
            region = str(found)
            dispatcher.utter_message(text=f"好的，已为您按{region}查询。")
            events: list[EventType] = [SlotSet("region", region)]
            text = (tracker.latest_message.get("text") or "").strip()
            # "深圳公积金怎么取" may be read as a region statement: it is a question too.
            question = text if len(text) - len(said) > REGION_ONLY_SLACK else tracker.get_slot("pending_query")
            if question:
                tracker.slots["region"] = region
                events += await asyncio.to_thread(answer, dispatcher, tracker, question)
            return events
        except Exception:
            log.exception("action_set_region failed for sender %s", tracker.sender_id)
            dispatcher.utter_message(text=replies.SORRY_BROKEN, buttons=replies.handoff_buttons())
            return []
