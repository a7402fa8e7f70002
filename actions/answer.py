"""Answering from the knowledge base: answer, "您是想问……" choice, region, follow-ups and feedback.

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

if TYPE_CHECKING:
    from rasa_sdk.types import DomainDict

    from knowledge_base.records import Entry, SearchResult

log = logging.getLogger("hotline.actions")

# A region statement ("我在深圳南山区") has few characters beyond the place name.
REGION_ONLY_SLACK = 6


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


def answer(dispatcher: CollectingDispatcher, tracker: Tracker, question: str) -> list[EventType]:
    """Search and reply according to the decision. Synchronous: run it in a worker thread."""
    rt = runtime.get()
    previous = tracker.get_slot("last_entry_question")
    query = follow_up_query(previous, question) if previous and is_follow_up(question) else question
    region = _region(tracker)
    result = _search(rt, query, region)
    _log(rt, tracker, query, result)
    events: list[EventType] = [SlotSet("region", region)] if region and not tracker.get_slot("region") else []
    decision = result.decision.value
    if decision == "answer":
        assert result.best is not None  # an answer always has its hit
        return events + utter_entry(dispatcher, result.best.entry, result.kb_version)
    if decision == "clarify":
        offered = list(result.candidates())
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


class ActionAnswer(Action):
    """Answer the citizen's question from the knowledge base."""

    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        question = (tracker.latest_message.get("text") or "").strip()
        if not question or question.startswith("/"):
            dispatcher.utter_message(text=replies.ASK_REPHRASE)
            return []
        try:
            return await asyncio.to_thread(answer, dispatcher, tracker, question)
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


class ActionFeedback(Action):
    """有用 / 没用 after an answer, recorded against the entry and the KB version."""

    def name(self) -> str:
        return "action_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        useful = tracker.latest_message.get("intent", {}).get("name") == "feedback_useful"
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
