"""Judging the bot's replies in `hotline bench dialogue`: pure logic on made-up reply lists.

The replies below are invented to exercise each rule; their wording is the made-up ``TEXTS``,
not the bot's. One test reads the real wording from this checkout, to catch a rename that
would leave the benchmark blind to no-answers.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hotline.bench_dialogue import (
    BenchError,
    Outcome,
    ReplyTexts,
    Result,
    Server,
    Verdict,
    classify,
    format_report,
    offered_key,
    settings_environment,
    summarise,
    wait_ready,
)
from knowledge_base.settings import Settings, load_settings
from tests.conftest import REPO

pytestmark = pytest.mark.unit

TEXTS = ReplyTexts(
    no_answer=frozenset({"（假）没有找到答案", "（假）两次没找到"}),
    action_failed=frozenset({"（假）出错了"}),
    busy=frozenset({"（假）系统繁忙"}),
    responses={
        "utter_greet": frozenset({"（假）您好"}),
        "utter_out_of_scope": frozenset({"（假）不在范围内"}),
        "utter_how_can_i_help": frozenset({"（假）还有什么可以帮您"}),
        "replies.GREET_BY_NAME": frozenset({"{name}（假）您好"}),
    },
)


def source(key: str) -> dict:
    return {"custom": {"type": "source", "entry_key": key, "department": "（假）某局"}}


def choice(*keys: str) -> dict:
    buttons = [{"title": f"问题{k}", "payload": f'/choose_entry{{"entry_key": "{k}"}}'} for k in keys]
    return {"text": "（假）您是想问", "buttons": [*buttons, {"title": "都不是", "payload": "/deny"}]}


@pytest.mark.parametrize(
    ("messages", "gold", "outcome", "kind"),
    [
        (
            [{"text": "答案", "buttons": [{"payload": "/feedback_useful"}]}, source("A")],
            "A",
            Outcome.ANSWERED_RIGHT,
            "",
        ),
        ([{"text": "答案"}, source("B")], "A", Outcome.ANSWERED_WRONG, ""),
        ([{"text": "答案"}, source("A")], None, Outcome.ANSWERED_WRONG, ""),
        ([choice("B", "A", "C")], "A", Outcome.OFFERED_RIGHT, ""),
        ([choice("B", "C")], "A", Outcome.OFFERED_WRONG, ""),
        ([choice("A")], None, Outcome.OFFERED_WRONG, ""),
        (
            [{"text": "（假）哪个城市", "buttons": [{"title": "深圳", "payload": '/inform_region{"region": "深圳"}'}]}],
            "A",
            Outcome.ASKED_REGION,
            "",
        ),
        ([{"text": "（假）没有找到答案", "buttons": [{"payload": "/request_human"}]}], "A", Outcome.KB_NO_ANSWER, ""),
        ([{"text": "（假）两次没找到"}], None, Outcome.KB_NO_ANSWER, ""),
        ([{"text": "（假）不在范围内"}], "A", Outcome.TURNED_AWAY, "out_of_scope"),
        ([{"text": "（假）您好"}], "A", Outcome.TURNED_AWAY, "greeting"),
        ([{"text": "王女士（假）您好"}], "A", Outcome.TURNED_AWAY, "greeting"),
        ([{"text": "（假）还有什么可以帮您"}], "A", Outcome.TURNED_AWAY, "other"),
        ([{"text": "从没见过的一句话"}], "A", Outcome.TURNED_AWAY, "other"),
        ([{"text": "（假）系统繁忙"}, {"custom": {"type": "handoff", "work_order": None}}], "A", Outcome.ERROR, "busy"),
        ([{"text": "改过的繁忙说法"}, {"custom": {"type": "handoff", "work_order": None}}], "A", Outcome.ERROR, "busy"),
        ([{"text": "（假）出错了", "buttons": [{"payload": "/request_human"}]}], "A", Outcome.ERROR, "action_failed"),
        ([], "A", Outcome.ERROR, "empty"),
    ],
    ids=[
        "source-is-gold",
        "source-is-other",
        "answer-where-none-is-right",
        "choice-with-gold",
        "choice-without-gold",
        "choice-where-none-is-right",
        "city-question",
        "no-answer",
        "two-failures",
        "out-of-scope",
        "greeting",
        "greeting-template",
        "other-response",
        "unknown-text",
        "busy-text",
        "busy-shape",
        "action-failed",
        "no-messages",
    ],
)
def test_classify(messages, gold, outcome, kind):
    verdict = classify(messages, gold, TEXTS)
    assert (verdict.outcome, verdict.kind) == (outcome, kind)


def test_structure_wins_over_wording():
    """An answer is known by its source even when its text reads like the no-answer sentence."""
    verdict = classify([{"text": "（假）没有找到答案"}, source("A")], "A", TEXTS)
    assert verdict == Verdict(Outcome.ANSWERED_RIGHT, entry_key="A")


def test_a_choice_records_every_offered_key_in_order():
    assert classify([choice("C", "B", "A")], "A", TEXTS).offered == ("C", "B", "A")


def test_a_turned_away_reply_names_the_response_it_matched():
    assert classify([{"text": "（假）还有什么可以帮您"}], "A", TEXTS).response == "utter_how_can_i_help"


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ('/choose_entry{"entry_key": "GD-1"}', "GD-1"),
        ('/choose_entry{"entry_key":"covid-0001"}', "covid-0001"),
        ("/choose_entry{not json}", None),
        ('/choose_entry{"entry_key": ""}', None),
        ('/inform_region{"region": "深圳"}', None),
        ("/deny", None),
    ],
)
def test_offered_key(payload, key):
    assert offered_key(payload) == key


def result(outcome: Outcome, kind: str = "", ms: float = 100.0) -> Result:
    return Result("问题", "A", Verdict(outcome, kind), (), ms)


def test_summary_counts_add_up_and_errors_are_left_out_of_latency():
    results = [
        result(Outcome.ANSWERED_RIGHT, ms=100),
        result(Outcome.OFFERED_RIGHT, ms=200),
        result(Outcome.ANSWERED_WRONG, ms=300),
        result(Outcome.TURNED_AWAY, "out_of_scope", ms=400),
        result(Outcome.TURNED_AWAY, "other", ms=500),
        result(Outcome.ERROR, "timeout", ms=60_000),
    ]
    s = summarise(results)
    parts = [s[o.value] for o in Outcome if o is not Outcome.ERROR] + [s["errors"]]
    assert sum(parts) == s["questions"] == 6
    assert s["turned_away"] == sum(s["turned_away_kinds"].values()) == 2
    assert s["turned_away_kinds"] == {"out_of_scope": 1, "greeting": 0, "other": 1}
    assert s["error_kinds"] == {"timeout": 1}
    assert s["right_answered_or_offered"] == 2
    assert s["p50_ms"] == 300.0 and s["p99_ms"] < 1000


def test_the_table_shows_every_outcome_and_the_machine():
    report = {
        **summarise([result(Outcome.ANSWERED_RIGHT), result(Outcome.KB_NO_ANSWER)]),
        "n_entries": 5,
        "concurrency": 4,
        "wall_s": 2.0,
        "questions_per_s": 1.0,
        "start_s": 30.0,
        "machine": {"cpu": "（假）CPU", "cores": 2, "memory_gib": 4.0},
        "commit": "abc1234",
        "command": "hotline bench dialogue --kb kb.jsonl --queries q.jsonl",
    }
    table = format_report(report)
    assert "answered, right entry" in table and "50.0 %" in table
    assert "（假）CPU, 2 cores" in table and "--queries q.jsonl" in table


def test_the_servers_get_exactly_the_given_settings(tmp_path):
    settings = Settings(data_dir=str(tmp_path), answer_threshold=0.97, redis_url="")
    assert load_settings(None, environ=settings_environment(settings)) == settings


def test_the_checkouts_wording_is_found():
    """The real files: without the no-answer texts every no-answer would count as turned away."""
    texts = ReplyTexts.load(REPO)
    assert texts.no_answer and texts.busy and texts.action_failed
    assert "utter_out_of_scope" in texts.responses and "utter_greet" in texts.responses


def test_a_server_that_dies_while_starting_is_reported_with_its_log(tmp_path):
    """A real short-lived process standing in for a server that fails to start."""
    server = Server.start(
        "fake server", ["bash", "-c", "echo 'cannot bind port'; exit 3"], cwd=tmp_path, env={}, log=tmp_path / "s.log"
    )
    with pytest.raises(BenchError, match=r"(?s)fake server exited with status 3.*cannot bind port"):
        wait_ready({server: lambda: False}, seconds=30)


def test_a_server_that_never_gets_ready_times_out_and_is_stopped_with_its_children(tmp_path):
    server = Server.start(
        "slow server",
        ["bash", "-c", "sleep 300 & echo $! > child.pid; wait"],
        cwd=tmp_path,
        env={},
        log=tmp_path / "s.log",
    )
    with pytest.raises(BenchError, match="did not pass its health check within 1 s"):
        wait_ready({server: lambda: False}, seconds=1)
    child = int((tmp_path / "child.pid").read_text())
    server.stop(timeout=5)
    assert server.proc.poll() is not None
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running, not merely a zombie that its new parent has yet to reap."""
    for _ in range(50):
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state == "Z":
            return False
        time.sleep(0.1)
    return True
