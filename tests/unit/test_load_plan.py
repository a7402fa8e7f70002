"""The whole-system load benchmark's pure logic (scripts/load/plan.py): conversations, typing prefixes, the
open-loop schedule, outcome classification. Never imports Locust or gevent (its monkey-patching would change
the rest of the test run)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from load.plan import (
    DIALOGUE_SCRIPTS,
    Message,
    OpenLoop,
    Reply,
    Schedule,
    Targets,
    conversation,
    csrf_token,
    form_fields,
    http_outcome,
    open_loop,
    percentile,
    read_reply,
    scripted_conversation,
    typing_prefixes,
)

pytestmark = pytest.mark.unit
QUESTIONS = ["社保卡丢了怎么补办", "公积金怎么提取", "失业金能领多少"]


def play(talk, replies):
    """Drive a conversation with the given replies; the messages it sent."""
    sent = [next(talk)]
    for reply in replies:
        try:
            sent.append(talk.send(reply))
        except StopIteration:
            break
    return sent


def test_message_has_text_or_payload():
    with pytest.raises(ValueError, match="not both or neither"):
        Message()
    with pytest.raises(ValueError, match="not both or neither"):
        Message(text="a", payload="/b")


def test_conversation_ends_on_error_and_on_handoff():
    assert len(play(conversation(random.Random(1), QUESTIONS), [None, Reply()])) == 1
    assert len(play(conversation(random.Random(1), QUESTIONS), [Reply(handoff=True), Reply()])) == 1


def test_conversation_presses_an_offered_choice_and_only_choices():
    rng = random.Random(0)
    seen_payloads = set()
    for _ in range(50):
        offered = Reply(('/choose_entry{"key":"A"}', "/feedback_useful", "/human"))
        for message in play(conversation(rng, QUESTIONS, p_choose=1.0, p_useful=1.0), [offered] * 10):
            if message.payload:
                seen_payloads.add(message.payload)
            else:
                assert message.text in (*QUESTIONS, "有用")
    assert seen_payloads == {'/choose_entry{"key":"A"}'}


@pytest.mark.parametrize("seed", range(20))
def test_conversation_has_one_to_three_questions(seed):
    sent = play(conversation(random.Random(seed), QUESTIONS, p_choose=0, p_useful=0), [Reply()] * 10)
    assert 1 <= len(sent) <= 3
    assert all(m.text in QUESTIONS for m in sent)


def test_scripted_conversations_replay_the_old_dialogue_benchmark_whatever_the_replies():
    assert play(scripted_conversation(0), [None] * 10) == [Message(text=t) for t in DIALOGUE_SCRIPTS[0]]
    assert play(scripted_conversation(len(DIALOGUE_SCRIPTS) + 2), [Reply()] * 10) == [
        Message(text=t) for t in DIALOGUE_SCRIPTS[2]
    ]


@pytest.mark.parametrize("seed", range(10))
def test_typing_prefixes_grow_to_the_whole_question(seed):
    question = "我想问一下公司有没有给我交社保"
    prefixes = typing_prefixes(question, random.Random(seed))
    assert prefixes[-1] == question
    assert all(question.startswith(p) and len(p) >= 2 for p in prefixes)
    assert [len(p) for p in prefixes] == sorted({len(p) for p in prefixes})


@pytest.mark.parametrize(
    ("status", "body", "channel", "outcome"),
    [
        (200, {"messages": [{"text": "答案"}]}, "web chat", "ok"),
        (200, {"messages": [{"text": "系统暂时繁忙，请稍后再试"}]}, "web chat", "busy reply"),
        (200, {"messages": []}, "rasa direct", "no messages"),
        (200, {"error": "x"}, "web chat", "malformed reply"),
        (429, {"messages": [{"text": "慢一点"}]}, "web chat", "HTTP 429"),
        (502, None, "hotline", "HTTP 502"),
        (200, {"speech": ["您好"]}, "hotline", "ok"),
        (200, {"speech": ["系统暂时无法回答"]}, "hotline", "busy reply"),
        (200, {"speech": []}, "hotline", "no speech"),
        (200, {"hits": []}, "operator search", "ok"),
        (200, {"hits": None}, "operator search", "no hits list"),
        (200, None, "operator search", "malformed reply"),
    ],
)
def test_http_outcome(status, body, channel, outcome):
    assert http_outcome(status, body, channel) == outcome


def test_http_outcome_refuses_an_unknown_channel():
    with pytest.raises(ValueError, match="unknown channel"):
        http_outcome(200, {}, "fax")


def test_read_reply_web_buttons_and_handoff():
    body = {
        "messages": [{"text": "您是想问", "buttons": [{"payload": "/choose_entry1"}]}, {"custom": {"type": "handoff"}}]
    }
    assert read_reply(body, "web chat") == Reply(("/choose_entry1",), True)


def test_read_reply_hotline_never_presses_zero():
    body = {
        "speech": ["请按键"],
        "options": [{"digit": "1", "payload": "/choose_entry1"}, {"digit": "0", "payload": "/human"}],
    }
    assert read_reply(body, "hotline") == Reply(("/choose_entry1",), False)


def test_open_loop_splits_the_rate_by_users_and_keeps_it_exact():
    plan = open_loop(5, {"web chat": 3, "rasa direct": 0, "hotline": 2}, 3.0)
    assert plan["rasa direct"].users == 0
    assert plan["web chat"].rate == pytest.approx(3.0)
    assert plan["hotline"].rate == pytest.approx(2.0)
    assert all(p.mean_gap_s >= 3.0 for p in plan.values())
    # A share too small for one user at the gap: one user, a longer gap.
    assert open_loop(0.1, {"web chat": 1}, 3.0)["web chat"] == OpenLoop(1, pytest.approx(10.0))


@pytest.mark.parametrize(("rate", "weights"), [(0, {"web chat": 1}), (5, {"web chat": 0}), (-1, {})])
def test_open_loop_refuses_what_cannot_be_played(rate, weights):
    with pytest.raises(ValueError):
        open_loop(rate, weights, 3.0)


def test_schedule_runs_from_its_own_times_not_the_replies():
    schedule = Schedule(random.Random(7), mean_gap_s=2.0, at=100.0)
    times = [schedule.next_start() for _ in range(2000)]
    assert times == sorted(times)
    # Exponential gaps: the mean near 2 s (2,000 draws: within 10 %).
    assert (times[-1] - 100.0) / len(times) == pytest.approx(2.0, rel=0.1)


def test_schedule_counts_late_starts():
    schedule = Schedule(random.Random(7), mean_gap_s=1.0, at=0.0)
    due = schedule.next_start()
    schedule.started(due)  # on time
    due = schedule.next_start()
    schedule.started(due + 0.5)  # the reply came 0.5 s after this message was due
    assert (schedule.sent, schedule.late) == (2, 1)
    assert schedule.late_s == pytest.approx(0.5)


def targets(**changes):
    fields = dict(
        web_urls=["http://127.0.0.1:1"], rasa_urls=["http://127.0.0.1:2"], gateway_secret="s",
        operator_user="o", editor_user="e", reviewer_user="v", password="p", questions=QUESTIONS, run_id="r",
        users={"web chat": 4, "hotline": 2, "operator search": 1},
    )  # fmt: skip
    fields.update(changes)
    return Targets(**fields)


def test_targets_round_trip_through_json_with_the_open_plan():
    before = targets(open_rate=6.0)
    after = Targets.from_json(before.to_json())
    assert after == before
    assert after.user_count("web chat") == before.open_plan["web chat"].users == 12
    assert after.user_count("operator search") == 1


def test_targets_closed_loop_spawns_the_users_asked_for():
    assert targets().user_count("web chat") == 4
    assert targets().user_count("rasa direct") == 0


@pytest.mark.parametrize("changes", [{"rasa_urls": []}, {"web_urls": []}, {"users": {"fax": 1}}])
def test_targets_refuse_a_bad_layout(changes):
    with pytest.raises(ValueError):
        targets(**changes)


def test_staff_page_parsing():
    page = (
        '<meta name="csrf-token" content="tok">'
        '<form id="other"><input name="x" value="1"></form>'
        '<form id="entry-form"><input name="key" value="GD-SB-001"><textarea name="answer">第一行\n第二行</textarea>'
        '<input name="empty"></form>'
    )
    assert csrf_token(page) == "tok"
    assert csrf_token("<html></html>") is None
    assert form_fields(page, "entry-form") == {"key": "GD-SB-001", "answer": "第一行\n第二行", "empty": ""}


@pytest.mark.parametrize(("q", "value"), [(50, 2.0), (95, 4.0), (100, 4.0), (1, 1.0)])
def test_percentile_nearest_rank(q, value):
    assert percentile([1.0, 2.0, 3.0, 4.0], q) == value
    assert percentile([], q) == 0.0
