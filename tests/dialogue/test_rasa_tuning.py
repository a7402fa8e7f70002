"""bot/channels/tuning.py in Rasa's own Python: what Rasa does with each change is what it did before it."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.dialogue

PYTHON = str(REPO / ".venv-rasa" / "bin" / "python")


def in_rasa(script: str, *args: str) -> Any:
    """Run ``script`` in Rasa's Python as scripts/bot.sh does (bot/ and the root importable); its last line, as JSON."""
    done = subprocess.run(
        [PYTHON, "-c", script, *args],
        cwd=REPO / "bot",
        env={**os.environ, "PYTHONPATH": f"{REPO / 'bot'}{os.pathsep}{REPO}", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Replies an action server could send: valid ones, and malformed ones Rasa must refuse.
REPLIES = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "region", "value": "深圳"}], "responses": [{"text": "好的"}]},
    {"events": [{"event": "followup", "name": "action_listen"}], "responses": [{"custom": {"source": "x"}}]},
    {"events": [{"event": "slot"}], "responses": []},
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": "not a list", "responses": []},
    {"events": [], "responses": "not a list"},
    {"events": [], "responses": [1, 2]},
    [],
]

# Judges every reply with Rasa's own check, then with the tuned one, and prints both verdicts.
SCRIPT = """
import json, sys
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from channels.tuning import check_action_replies_with_one_validator

def verdicts(action):
    out = []
    for reply in json.loads(sys.argv[1]):
        try:
            out.append(action._validate_action_result(reply))
        except ValidationError as error:
            out.append(error.message)
    return out

action = RemoteAction("action_answer", None)
before = verdicts(action)
check_action_replies_with_one_validator()
print(json.dumps({"before": before, "after": verdicts(action)}, ensure_ascii=False))
"""


def test_tuned_check_accepts_and_refuses_the_same_replies_with_the_same_message():
    result = in_rasa(SCRIPT, json.dumps(REPLIES))
    assert result["after"] == result["before"]
    assert result["before"][:3] == [True, True, True]
    refused = result["before"][3:]
    assert all(isinstance(m, str) and "Failed to validate Action server response" in m for m in refused)


def test_rasa_serves_without_jax_once_it_is_left_out():
    script = (
        "import json, sys\n"
        "from channels.tuning import leave_out_jax\n"
        "leave_out_jax()\n"
        "import rasa.core.agent, rasa.core.run, tensorflow\n"
        "from channels.web import WebInput\n"
        "print(json.dumps(['jax' in sys.modules and sys.modules['jax'] is not None, 'tensorflow' in sys.modules]))\n"
    )
    assert in_rasa(script) == [False, True]


def test_rasa_serves_the_trained_model_without_tensorflow():
    """The shipped pipeline needs no TensorFlow: the model loads and understands messages without it."""
    script = (
        "import json, os, sys, asyncio\n"
        "from channels.tuning import components_needing_tensorflow, leave_out_tensorflow\n"
        "model = sys.argv[1]\n"
        "needing = components_needing_tensorflow(model)\n"
        "leave_out_tensorflow()\n"
        "import rasa.__main__, rasa.core.run, rasa.server\n"
        "from rasa.core.agent import load_agent\n"
        "from channels.web import WebInput\n"
        "agent = asyncio.run(load_agent(model_path=model))\n"
        "async def intents():\n"
        "    return [(await agent.parse_message(t))['intent']['name'] for t in ('你好', '我要投诉楼下噪音', '谢谢')]\n"
        "names = asyncio.run(intents())\n"
        "tf_dir = os.sep.join(('', 'site-packages', 'tensorflow', ''))\n"
        "real = sorted(n for n, m in list(sys.modules.items()) if tf_dir in (getattr(m, '__file__', None) or ''))\n"
        "print(json.dumps({'needing': needing, 'intents': names, 'real': real,\n"
        "                  'stand_in': type(sys.modules['tensorflow']).__name__}))\n"
    )
    result = in_rasa(script, str(REPO / "bot" / "models" / "hotline.tar.gz"))
    assert result["needing"] == []
    assert result["real"] == [] and result["stand_in"] == "_StandInModule"
    assert result["intents"] == ["greet", "complain", "thank"]


# Resolves every event type name (and names Rasa treats specially) with Rasa's walk, then with the table.
EVENTS_SCRIPT = """
import json
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.utils.common import all_subclasses
from channels.tuning import find_event_classes_in_one_table

names = sorted({cls.type_name for cls in all_subclasses(Event)}) + ["topic", "no_such_event"]

def resolved():
    out = []
    for name in names:
        for default in (None, UserUttered):
            try:
                found = Event.resolve_by_type(name, default)
                out.append(found.__qualname__ if found else None)
            except ValueError as error:
                out.append("ValueError: " + str(error))
    return out

stored = [{"event": "user", "text": "社保卡丢了", "parse_data": {"intent": {"name": "ask_policy"}}},
          {"event": "action", "name": "action_answer"}, {"event": "slot", "name": "region", "value": "深圳"},
          {"event": "bot", "text": "您好"}, {"event": "session_started"}]
stored = [{**event, "timestamp": 1.0} for event in stored]

def rebuilt():  # as a tracker store rebuilds a conversation
    return [(type(e).__name__, e.as_dict()) for e in (Event.from_parameters(s) for s in stored)]

before, events_before = resolved(), rebuilt()
find_event_classes_in_one_table()
after, events_after = resolved(), rebuilt()
print(json.dumps({"names": len(names), "before": before, "after": after,
                  "same_events": events_before == events_after}, ensure_ascii=False))
"""


def test_event_classes_from_the_table_are_those_rasa_finds():
    result = in_rasa(EVENTS_SCRIPT)
    assert result["names"] > 20 and result["after"] == result["before"] and result["same_events"] is True
    assert "UserUttered" in result["before"] and None in result["before"]  # "topic" resolves to nothing
    assert result["before"][-2:] == ["ValueError: Unknown event name 'no_such_event'.", "UserUttered"]
