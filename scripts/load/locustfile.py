"""The Locust users of the whole-system load benchmark.

scripts/load_system.py starts the system and then this file in a Locust subprocess (so that gevent never
patches the launcher), with PYTHONPATH=scripts and the run's targets as JSON in LOAD_SYSTEM_TARGETS
(load.plan.Targets). One user class per channel; their counts come from the targets:

  WebCitizen    the widget's path: the web app's /api/chat relay (web app → Rasa → action server)
  RasaCitizen   straight to Rasa's web channel, the conversations scripts/load_dialogue.py replayed
  Caller        the hotline channel, as the speech gateway posts it
  Operator      the console's search at every pause while a question is typed
  Editor        every publish_every_s: an editor changes an entry, a reviewer publishes it; then a PROPAGATION
                event per worker and path, and one for "served by every worker" (the time until the last one did)

Closed loop (open_rate 0): each user sends its next message as soon as the last is answered. Open loop: each
chat user's messages start at exponential gaps (load.plan.Schedule), operators search at operator_rate each.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import time
from collections import Counter
from typing import Any

import gevent
import requests
from locust import HttpUser, User, constant, events, task
from locust.env import Environment

from load.plan import (
    Conversation,
    Message,
    Reply,
    Schedule,
    Targets,
    conversation,
    http_outcome,
    read_reply,
    scripted_conversation,
    typing_prefixes,
)
from load.staff import StaffError, Target, find_target, publish, served_in_chat, served_in_search, sign_in

PROPAGATION = "PROPAGATION"


@functools.cache
def targets() -> Targets:
    return Targets.from_json(os.environ["LOAD_SYSTEM_TARGETS"])


_turns = itertools.count()  # round-robin over every request of every channel, as in the two-worker layout
_user_numbers = itertools.count()
# Open loop, per channel: messages started, and those that started late because their user still waited.
_paced: Counter[str] = Counter()
_window: dict[str, float] = {}


def _fire(**request: Any) -> None:
    """One request in Locust's figures, also those that are not HTTP requests (a publish cycle, PROPAGATION)."""
    events.request.fire(**request)  # type: ignore[no-untyped-call]  # Locust's EventHook is not annotated


def next_worker() -> int:
    return next(_turns) % len(targets().web_urls)


class Paced:
    """Mixin: in the open loop, wait until the next scheduled start; count the late ones."""

    channel: str
    schedule: Schedule | None = None

    def pace(self) -> None:
        if self.schedule is None:
            return
        at = self.schedule.next_start()
        delay = at - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        late_before = self.schedule.late
        self.schedule.started(time.monotonic())
        _paced[f"{self.channel}: started"] += 1
        if self.schedule.late > late_before:
            _paced[f"{self.channel}: late"] += 1
            _paced[f"{self.channel}: late ms"] += round((time.monotonic() - at) * 1000)


class ChatUser(Paced, HttpUser):
    """A citizen or caller: conversation after conversation, each with a new sender id."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        t = targets()
        self.number = next(_user_numbers)
        self.rng = random.Random(t.seed * 100_003 + self.number)
        self.conversations = itertools.count()
        if self.channel in t.open_plan:
            self.schedule = Schedule(self.rng, t.open_plan[self.channel].mean_gap_s, at=time.monotonic())

    def conversation(self) -> Conversation:
        return conversation(self.rng, targets().questions)

    def request(self, message: Message, sender: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        """URL, JSON body and headers of one message on this channel."""
        raise NotImplementedError

    @task
    def converse(self) -> None:
        sender = f"{targets().run_id}-{self.channel.replace(' ', '')}{self.number}-{next(self.conversations)}"
        talk = self.conversation()
        message = next(talk)
        while True:
            self.pace()
            try:
                message = talk.send(self.send(message, sender))
            except StopIteration:
                return

    def send(self, message: Message, sender: str) -> Reply | None:
        url, body, headers = self.request(message, sender)
        with self.client.post(
            url, json=body, headers=headers, name=self.channel, timeout=targets().timeout_s, catch_response=True
        ) as reply:
            if reply.status_code == 0:
                reply.failure(f"no reply: {type(reply.error).__name__}")
                return None
            try:
                data = reply.json()
            except ValueError:
                data = None
            outcome = http_outcome(reply.status_code, data, self.channel)
            if outcome != "ok":
                reply.failure(outcome)
                return None
            reply.success()
            return read_reply(data, self.channel)


class WebCitizen(ChatUser):
    channel = "web chat"

    def request(self, message: Message, sender: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        said = {"payload": message.payload} if message.payload else {"message": message.text}
        return f"{targets().web_urls[next_worker()]}/api/chat", {"sender": sender, **said}, {}


class RasaCitizen(ChatUser):
    channel = "rasa direct"

    def conversation(self) -> Conversation:
        return scripted_conversation(self.number + next(self.conversations))

    def request(self, message: Message, sender: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        said = {"message": message.payload or message.text}
        return f"{targets().rasa_urls[next_worker()]}/webhooks/web/webhook", {"sender": sender, **said}, {}


class Caller(ChatUser):
    channel = "hotline"

    def request(self, message: Message, sender: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        t = targets()
        said = {"payload": message.payload} if message.payload else {"text": message.text}
        body = {"call_id": sender, "caller_id": f"load{self.number}", **said}
        return f"{t.rasa_urls[next_worker()]}/webhooks/hotline/webhook", body, {"X-Hotline-Secret": t.gateway_secret}


class Operator(Paced, HttpUser):
    """An operator typing callers' questions into the console, which searches at every pause."""

    channel = "operator search"
    wait_time = constant(0)

    def on_start(self) -> None:
        t = targets()
        self.rng = random.Random(t.seed * 300_007 + next(_user_numbers))
        # Signed in outside self.client, so that the sign-in pages are not counted as searches.
        staff = requests.Session()
        sign_in(staff, t.web_urls[0], t.operator_user, t.password, t.timeout_s)
        self.client.cookies.update(staff.cookies)
        if t.open_rate > 0:
            self.schedule = Schedule(self.rng, 1 / t.operator_rate, at=time.monotonic())

    @task
    def type_question(self) -> None:
        t = targets()
        for prefix in typing_prefixes(self.rng.choice(t.questions), self.rng):
            self.pace()
            url = f"{t.web_urls[next_worker()]}/operator/api/search"
            with self.client.get(
                url, params={"q": prefix}, name=self.channel, timeout=t.timeout_s, catch_response=True
            ) as reply:
                try:
                    outcome = http_outcome(reply.status_code, reply.json(), self.channel)
                except ValueError:
                    outcome = f"HTTP {reply.status_code}" if reply.status_code else "no reply"
                if outcome == "ok":
                    reply.success()
                else:
                    reply.failure(outcome)


class Editor(User):
    """Every publish_every_s: publish a changed answer on the next worker, then watch every worker serve it."""

    fixed_count = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        t = targets()
        self.session = requests.Session()
        sign_in(self.session, t.web_urls[0], t.editor_user, t.password, t.timeout_s)
        self.reviewer = requests.Session()
        sign_in(self.reviewer, t.web_urls[0], t.reviewer_user, t.password, t.timeout_s)
        self.target: Target = find_target(self.session, t.web_urls[0], t.edit_entry, t.timeout_s)
        self.publishes = itertools.count(1)
        self.next_at = time.monotonic() + t.publish_every_s / 2

    @task
    def publish_and_watch(self) -> None:
        t = targets()
        gevent.sleep(max(0.0, self.next_at - time.monotonic()))
        self.next_at += t.publish_every_s
        n = next(self.publishes)
        base = t.web_urls[(n - 1) % len(t.web_urls)]
        marker = f"（负载测试修订 {t.run_id}-{n}）"
        started = time.perf_counter()
        failure: Exception | None = None
        try:
            publish(self.session, self.reviewer, base, self.target, marker, t.timeout_s)
        except (requests.RequestException, StaffError) as exc:
            failure = exc
        _fire(
            request_type="POST", name="admin publish", response_time=(time.perf_counter() - started) * 1000,
            response_length=0, exception=failure, context={},
        )  # fmt: skip
        if failure is not None:
            return
        published_at = time.monotonic()
        watches = {
            f"{path} on worker {i + 1}": gevent.spawn(self.watch, path, url, marker, published_at)
            for i, url in enumerate(t.web_urls)
            for path in ("operator search", "chat")
        }
        gevent.joinall(list(watches.values()))
        seen = {name: g.value for name, g in watches.items()}
        for name, seconds in seen.items():
            self.report(name, seconds)
        times = list(seen.values())
        self.report("served by every worker", None if None in times else max(t for t in times if t is not None))
        self.next_at = max(self.next_at, time.monotonic())

    def watch(self, path: str, base_url: str, marker: str, since: float) -> float | None:
        """Seconds from the publish reply until this worker's ``path`` serves the change; None if never."""
        t = targets()
        session = requests.Session()
        session.cookies.update(self.reviewer.cookies)
        probe = served_in_search if path == "operator search" else served_in_chat
        while time.monotonic() < since + t.propagation_timeout_s:
            try:
                if probe(session, base_url, self.target, marker, t.timeout_s):
                    return time.monotonic() - since
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            gevent.sleep(0.02)
        return None

    def report(self, name: str, seconds: float | None) -> None:
        _fire(
            request_type=PROPAGATION, name=name,
            response_time=(seconds if seconds is not None else targets().propagation_timeout_s) * 1000,
            response_length=0, context={},
            exception=None if seconds is not None else TimeoutError("not served within the propagation timeout"),
        )  # fmt: skip


USER_CLASSES: dict[str, type[User]] = {
    "web chat": WebCitizen,
    "rasa direct": RasaCitizen,
    "hotline": Caller,
    "operator search": Operator,
}


@events.init.add_listener  # type: ignore[untyped-decorator]
def _counts(environment: Environment, **_: Any) -> None:
    """Spawn exactly the targets' number of users per channel."""
    t = targets()
    for channel, cls in USER_CLASSES.items():
        cls.fixed_count = t.user_count(channel)
        cls.host = t.web_urls[0]
    Editor.host = t.web_urls[0]


@events.spawning_complete.add_listener  # type: ignore[untyped-decorator]
def _window_opens(user_count: int, **_: Any) -> None:
    # --reset-stats clears Locust's figures at this moment: the measured window starts here.
    _window["start"] = time.time()
    _paced.clear()


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _window_closes(environment: Environment, **_: Any) -> None:
    _window["end"] = time.time()
    path = targets().results_path
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"window": _window, "paced": dict(_paced)}, f)
