"""What the virtual users do, as pure logic: conversations, typing prefixes, the open-loop schedule, outcomes.

No Locust or gevent here: the unit tests import this module, and gevent's monkey-patching would change the
rest of the test run.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any

# In the channels' BUSY replies and the action's SORRY_BROKEN: the citizen was not answered.
NOT_ANSWERED = "系统暂时"
CHOICE_PAYLOADS = ("/choose_entry", "/inform_region")
# The chat channels share the open-loop rate; operators and the editor have their own pace.
CHAT_CHANNELS = ("web chat", "rasa direct", "hotline")

# The six conversations scripts/load_dialogue.py replayed straight to Rasa (greeting, policy questions, a
# clarification reply, follow-ups, feedback, thanks): kept word for word so the Rasa figure stays comparable.
DIALOGUE_SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("你好", "社保卡丢了怎么补办", "有用", "谢谢"),
    ("公积金提取", "都不是", "我辞职了想把公积金取出来", "那需要带什么材料？"),
    ("港澳通行证到期了怎么续签", "要多久", "没用"),
    ("我在深圳", "租房提取公积金怎么办理", "再见"),
    ("失业金每个月能领多少钱", "在哪里办？", "谢谢"),
    ("讲个笑话", "个税年度汇算怎么弄", "有用"),
)


@dataclass(frozen=True)
class Message:
    """One thing a citizen or caller sends: typed text, or the payload of a button / key pressed."""

    text: str | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.payload is None):
            raise ValueError(f"a message has text or a payload, not both or neither: {self!r}")


@dataclass(frozen=True)
class Reply:
    """What a virtual user reads in the bot's reply: the buttons or keys offered, and whether a person takes over."""

    payloads: tuple[str, ...] = ()
    handoff: bool = False


# A conversation is a generator: it yields the next message and is sent the reply (None: an error).
Conversation = Generator[Message, Reply | None, None]


def conversation(
    rng: random.Random, questions: Sequence[str], p_choose: float = 0.7, p_useful: float = 0.4
) -> Conversation:
    """One to three questions; sometimes a clarification button, sometimes 有用 (the old generator's mix).

    An error or a hand-off to a person ends it: the user starts a new conversation.
    """
    for _ in range(rng.randint(1, 3)):
        reply = yield Message(text=rng.choice(questions))
        if reply is None or reply.handoff:
            return
        choices = [p for p in reply.payloads if p.startswith(CHOICE_PAYLOADS)]
        if choices and rng.random() < p_choose:
            reply = yield Message(payload=rng.choice(choices))
            if reply is None or reply.handoff:
                return
        if "/feedback_useful" in reply.payloads and rng.random() < p_useful:
            reply = yield Message(text="有用")
            if reply is None:
                return


def scripted_conversation(number: int) -> Conversation:
    """The ``number``-th of DIALOGUE_SCRIPTS in turn, replayed whatever the replies (as load_dialogue.py did)."""
    for text in DIALOGUE_SCRIPTS[number % len(DIALOGUE_SCRIPTS)]:
        yield Message(text=text)


def typing_prefixes(question: str, rng: random.Random) -> list[str]:
    """What an operator's console searches while the question is typed: a prefix at every pause."""
    step = rng.randint(3, 6)
    return [question[:n] for n in range(max(2, step), len(question), step)] + [question]


# -- outcomes: "ok" or the kind of error ------------------------------------------------------------------


def http_outcome(status: int, body: Any, channel: str) -> str:
    """Classify one reply of ``channel``: "ok", or what is wrong (non-2xx, the bot's "系统暂时" reply, ...)."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    try:
        if channel in ("web chat", "rasa direct"):
            texts = [m.get("text") or "" for m in body["messages"]]
            if not texts:
                return "no messages"
        elif channel == "hotline":
            texts = list(body["speech"])
            if not texts:
                return "no speech"
        elif channel == "operator search":
            return "ok" if isinstance(body["hits"], list) else "no hits list"
        else:
            raise ValueError(f"unknown channel {channel!r}; one of {(*CHAT_CHANNELS, 'operator search')}")
    except (KeyError, TypeError, AttributeError):
        return "malformed reply"
    return "busy reply" if any(NOT_ANSWERED in t for t in texts) else "ok"


def read_reply(body: Any, channel: str) -> Reply:
    """The buttons (web) or keys (hotline) offered, and the hand-off flag, of a reply already judged "ok"."""
    if channel == "hotline":
        # Key 0 (a person) is always offered; pressing it would measure the operators, not the system.
        options = [o.get("payload", "") for o in body.get("options") or [] if o.get("digit") != "0"]
        return Reply(tuple(options), bool(body.get("handoff")))
    messages = body["messages"]
    return Reply(
        tuple(b.get("payload", "") for m in messages for b in (m.get("buttons") or [])),
        any((m.get("custom") or {}).get("type") == "handoff" for m in messages),
    )


# -- the open loop --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenLoop:
    """How many users a channel needs and each one's mean gap, for its share of a Poisson message rate.

    Each user sends its messages (conversation after conversation) with exponential gaps measured start to
    start, so each is a Poisson process of rate 1/gap and the channel's users together one of rate users/gap.
    """

    users: int
    mean_gap_s: float

    @property
    def rate(self) -> float:
        return self.users / self.mean_gap_s if self.users else 0.0


def open_loop(rate: float, weights: Mapping[str, int], gap_s: float) -> dict[str, OpenLoop]:
    """Split ``rate`` messages/s over the channels in proportion to ``weights`` (the users asked for).

    Each channel gets enough users that one user's mean gap is at least ``gap_s``, and its gap is then
    stretched so that the channel's rate is exact.

    >>> open_loop(30, {"web chat": 14, "hotline": 6}, 3.0)
    {'web chat': OpenLoop(users=63, mean_gap_s=3.0), 'hotline': OpenLoop(users=27, mean_gap_s=3.0)}
    """
    if rate <= 0 or gap_s <= 0:
        raise ValueError(f"rate and gap must be > 0, got rate={rate} gap={gap_s}")
    total = sum(w for w in weights.values() if w > 0)
    if total == 0:
        raise ValueError(f"no chat channel has users: {dict(weights)}")
    plan = {}
    for channel, weight in weights.items():
        if weight <= 0:
            plan[channel] = OpenLoop(0, gap_s)
            continue
        share = rate * weight / total
        users = max(1, math.ceil(share * gap_s - 1e-9))
        plan[channel] = OpenLoop(users, users / share)
    return plan


@dataclass
class Schedule:
    """One open-loop user's send times: start to start, independent of how long the replies take.

    ``next_start`` draws the next time from the previous *scheduled* time, not from when the reply came, so
    slow replies do not slow the rate; a message whose time passed while its user still waited is late.
    """

    rng: random.Random
    mean_gap_s: float
    at: float
    late: int = 0
    late_s: float = 0.0
    sent: int = 0

    def next_start(self) -> float:
        self.at += self.rng.expovariate(1 / self.mean_gap_s)
        return self.at

    def started(self, now: float) -> None:
        """Count a message started at ``now`` (late when its scheduled time had passed by more than 10 ms)."""
        self.sent += 1
        if now - self.at > 0.01:
            self.late += 1
            self.late_s += now - self.at


# -- the run's settings, handed to the Locust process in one environment variable -------------------------


@dataclass
class Targets:
    """Where the Locust users send and what they play; JSON in the environment variable LOAD_SYSTEM_TARGETS."""

    web_urls: list[str]
    rasa_urls: list[str]
    gateway_secret: str
    operator_user: str
    editor_user: str
    reviewer_user: str
    password: str
    questions: list[str]
    run_id: str
    users: dict[str, int]  # per channel: web chat, rasa direct, hotline, operator search
    edit_entry: str = "GD-SB-001"
    publish_every_s: float = 10.0
    propagation_timeout_s: float = 30.0
    timeout_s: float = 30.0
    open_rate: float = 0.0  # 0: closed loop
    gap_s: float = 3.0
    operator_rate: float = 1.0
    seed: int = 12345
    results_path: str = ""  # where the Locust process writes the window and the open loop's counters
    open_plan: dict[str, OpenLoop] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.web_urls or len(self.web_urls) != len(self.rasa_urls):
            raise ValueError(f"one Rasa per web app, at least one: {self.web_urls} / {self.rasa_urls}")
        unknown = set(self.users) - {*CHAT_CHANNELS, "operator search"}
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")
        if self.open_rate > 0 and not self.open_plan:
            weights = {c: self.users.get(c, 0) for c in CHAT_CHANNELS}
            self.open_plan = open_loop(self.open_rate, weights, self.gap_s)
        self.open_plan = {k: v if isinstance(v, OpenLoop) else OpenLoop(**v) for k, v in self.open_plan.items()}

    def user_count(self, channel: str) -> int:
        """Users to spawn for ``channel``: the open loop's count for chat channels in open mode, else as asked."""
        if channel in self.open_plan:
            return self.open_plan[channel].users
        return self.users.get(channel, 0)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Targets:
        return cls(**json.loads(text))


# -- staff pages --------------------------------------------------------------------------------------------

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(html: str) -> str | None:
    """The page's CSRF token (the sign-in page carries it in a meta tag)."""
    found = _CSRF.search(html)
    return found.group(1) if found else None


class FormFields(HTMLParser):
    """The named fields of one form: inputs' values and textareas' text, as a browser would post them."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.fields: dict[str, str] = {}
        self._inside = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._inside = a.get("id") == self.form_id
        elif self._inside and tag == "input" and a.get("name"):
            self.fields[str(a["name"])] = a.get("value") or ""
        elif self._inside and tag == "textarea" and a.get("name"):
            self._textarea = str(a["name"])
            self.fields[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def form_fields(html: str, form_id: str) -> dict[str, str]:
    parser = FormFields(form_id)
    parser.feed(html)
    return parser.fields


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]
