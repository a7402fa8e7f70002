"""Dialogue benchmark: labelled questions through the real bot, not just the search.

Each question goes in a conversation of its own through Rasa's website channel, so what
is measured is what a citizen would get: Rasa's NLU and rules, the action server and the
knowledge base behind it. The run builds everything it talks to in a temporary folder:

    knowledge-base file ─► fresh SQLite database + index (temporary data_dir)
    scripts/bot.sh actions  (.venv, rasa-sdk)   on a free port ─┐
    scripts/bot.sh rasa     (.venv-rasa, trained bot model)     ◄┘ on a free port
    every query ─► POST /webhooks/web/webhook ─► classify(reply) ─► counts, latency

A reply is judged by its structure first (the answer's ``source`` message names the entry;
"您是想问" buttons carry ``/choose_entry{"entry_key": ...}``), and by its wording second, read
at run time from ``bot/domain.yml``, ``actions/replies.py`` and ``bot/channels/web.py``, so the
benchmark follows the dialogue as it changes instead of freezing today's sentences.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import enum
import functools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from hotline.bench import machine
from hotline.evaluation import LabelledQuery, percentile, read_queries
from knowledge_base.settings import ENV_PREFIX, Settings

# -- judging one reply (pure) -----------------------------------------------------------


class Outcome(enum.StrEnum):
    """What one question got, from the citizen's point of view."""

    ANSWERED_RIGHT = "answered_right"  # an answer whose source is the gold entry
    ANSWERED_WRONG = "answered_wrong"  # an answer from another entry
    OFFERED_RIGHT = "offered_right"  # a "您是想问" choice that includes the gold entry
    OFFERED_WRONG = "offered_wrong"  # a choice without it
    ASKED_REGION = "asked_region"  # the knowledge base needs the city before it can choose
    KB_NO_ANSWER = "kb_no_answer"  # the knowledge base was asked and found nothing
    TURNED_AWAY = "turned_away"  # the dialogue replied without the knowledge base (kind: what it said)
    ERROR = "error"  # no usable reply (kind: http, timeout, busy, action_failed, empty)


# Report order; every question lands in exactly one.
OUTCOMES = tuple(Outcome)
TURNED_AWAY_KINDS = ("out_of_scope", "greeting", "other")

_CHOOSE_ENTRY = re.compile(r"^/choose_entry\s*(\{.*\})\s*$", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def turned_away_kind(response: str | None) -> str:
    """The turned-away kind a response's name tells, by the names' convention (``utter_greet``,
    ``utter_out_of_scope``, ``replies.GREET_BY_NAME``); anything else is ``other``.

    >>> turned_away_kind("utter_greet"), turned_away_kind("utter_out_of_scope"), turned_away_kind(None)
    ('greeting', 'out_of_scope', 'other')
    """
    name = (response or "").lower()
    if "out_of_scope" in name:
        return "out_of_scope"
    if "greet" in name:
        return "greeting"
    return "other"


@functools.lru_cache(maxsize=512)
def _template(variant: str) -> re.Pattern[str]:
    """A wording with ``{placeholders}`` (Rasa slots, str.format fields) as a pattern any filling matches."""
    return re.compile("(?s:.+?)".join(re.escape(part) for part in _PLACEHOLDER.split(variant)))


def says(text: str, variants: frozenset[str]) -> bool:
    """Whether ``text`` is one of ``variants``, placeholders filled in any way.

    >>> says("张先生您好！请问", frozenset({"{name}您好！请问"})), says("您好", frozenset({"再见"}))
    (True, False)
    """
    text = text.strip()
    return text in variants or any(
        "{" in v and _PLACEHOLDER.sub("", v).strip() and _template(v).fullmatch(text) for v in variants
    )


@dataclasses.dataclass(frozen=True)
class ReplyTexts:
    """The bot's wordings that :func:`classify` recognises when a reply carries no structure.

    Attributes:
        no_answer: the knowledge base found nothing (first time, and after two failures).
        action_failed: an action caught its own error.
        busy: the web channel's reply when the dialogue failed or said nothing.
        responses: every domain response's name and its text variants, then each text constant of
            actions/replies.py as ``replies.NAME``.
    """

    no_answer: frozenset[str]
    action_failed: frozenset[str] = frozenset()
    busy: frozenset[str] = frozenset()
    responses: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def response_of(self, text: str) -> str | None:
        """The domain response whose wording ``text`` is, if any."""
        return next((name for name, variants in self.responses.items() if says(text, variants)), None)

    @classmethod
    def load(cls, root: Path) -> ReplyTexts:
        """Read the wordings from the checkout at ``root``, as they are now.

        Raises:
            ValueError: ``bot/domain.yml`` is unreadable or has no responses, or actions/replies.py lacks
                both no-answer texts (without them a no-answer could not be told from a turned-away reply).
        """
        import yaml

        domain_file = root / "bot" / "domain.yml"
        try:
            domain = yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read the bot's responses from {domain_file}: {exc}") from None
        responses = {
            str(name): frozenset(str(v["text"]).strip() for v in variants or () if isinstance(v, dict) and "text" in v)
            for name, variants in (domain.get("responses") or {}).items()
        }
        if not responses:
            raise ValueError(f"{domain_file} has no responses")

        # Read from the checkout's files rather than imported: --root may name another checkout than
        # the one this process runs from, and bot/channels needs Rasa's environment to import.
        replies_file = root / "actions" / "replies.py"
        replies = module_strings(replies_file)

        def constants(*names: str) -> frozenset[str]:
            return frozenset(replies[name] for name in names if name in replies)

        no_answer = constants("NO_ANSWER", "TWO_FAILURES")
        if not no_answer:
            raise ValueError(f"{replies_file} has neither NO_ANSWER nor TWO_FAILURES: cannot recognise no-answers")
        busy = module_constant(root / "bot" / "channels" / "web.py", "BUSY")
        busy_texts = (
            frozenset(str(m["text"]).strip() for m in busy if isinstance(m, dict) and m.get("text"))
            if isinstance(busy, list)
            else frozenset()
        )
        for name, value in replies.items():
            responses.setdefault(f"replies.{name}", frozenset({value}))
        return cls(no_answer, constants("SORRY_BROKEN"), busy_texts, responses)


def module_strings(path: Path) -> dict[str, str]:
    """The non-empty text constants (``NAME = "..."``) at the top of the Python file ``path``, stripped."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    return {
        target.id: node.value.value.strip()
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and node.value.value.strip()
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    }


def module_constant(path: Path, name: str) -> Any:
    """The literal value assigned to ``name`` at the top of the Python file ``path``; None when absent.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "m.py").write_text("import x\\nBUSY = [{'text': 'busy'}]\\n")
    ...     module_constant(Path(d) / "m.py", "BUSY")
    [{'text': 'busy'}]
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                return ast.literal_eval(node.value)
    return None


@dataclasses.dataclass(frozen=True)
class Verdict:
    """How one reply was judged.

    Attributes:
        outcome: the class the question counts in.
        kind: for turned-away replies ``out_of_scope``, ``greeting`` or ``other``; for errors ``http``,
            ``timeout``, ``busy``, ``action_failed`` or ``empty``; otherwise empty.
        entry_key: the answered entry (from the source message), if any.
        offered: the entry keys of a "您是想问" choice, in button order.
        response: the domain response the reply's wording matched, if any (e.g. ``utter_how_can_i_help``).
    """

    outcome: Outcome
    kind: str = ""
    entry_key: str | None = None
    offered: tuple[str, ...] = ()
    response: str | None = None


def offered_key(payload: str) -> str | None:
    """The entry a "您是想问" button chooses, or None for any other button.

    >>> offered_key('/choose_entry{"entry_key": "GD-SB-001"}')
    'GD-SB-001'
    >>> offered_key("/deny") is None
    True
    """
    match = _CHOOSE_ENTRY.match(payload.strip())
    if not match:
        return None
    try:
        key = json.loads(match.group(1)).get("entry_key")
    except (ValueError, AttributeError):
        return None
    return str(key) if key not in (None, "") else None


def classify(messages: Sequence[Mapping[str, Any]], gold: str | None, texts: ReplyTexts) -> Verdict:
    """Judge the bot's reply to one question whose right entry is ``gold`` (None: nothing is right).

    Structure first: a ``source`` message is an answer, ``/choose_entry`` buttons are a choice,
    ``/inform_region`` buttons ask for the city. Then wording: the channel's busy reply and an
    action's apology are errors, the knowledge base's no-answer texts are a no-answer, anything
    else never reached the knowledge base (out of scope, a greeting, or other).

    Args:
        messages: the web channel's ``messages`` (``{"text", "buttons"}`` or ``{"custom": {...}}``).
        gold: the key of the entry that answers the question.
        texts: the wordings to recognise (:meth:`ReplyTexts.load`).

    >>> t = ReplyTexts(no_answer=frozenset({"没有找到"}))
    >>> classify([{"text": "答案"}, {"custom": {"type": "source", "entry_key": "A"}}], "A", t).outcome
    <Outcome.ANSWERED_RIGHT: 'answered_right'>
    """
    if not messages:
        return Verdict(Outcome.ERROR, "empty")
    customs = [m["custom"] for m in messages if isinstance(m.get("custom"), Mapping)]
    sources = [str(c.get("entry_key")) for c in customs if c.get("type") == "source" and c.get("entry_key")]
    if sources:
        outcome = Outcome.ANSWERED_RIGHT if gold is not None and sources[0] == gold else Outcome.ANSWERED_WRONG
        return Verdict(outcome, entry_key=sources[0])
    payloads = [
        str(b.get("payload") or "") for m in messages for b in (m.get("buttons") or ()) if isinstance(b, Mapping)
    ]
    offered = tuple(key for key in map(offered_key, payloads) if key is not None)
    if offered:
        outcome = Outcome.OFFERED_RIGHT if gold is not None and gold in offered else Outcome.OFFERED_WRONG
        return Verdict(outcome, offered=offered)
    if any(p.startswith("/inform_region") for p in payloads):
        return Verdict(Outcome.ASKED_REGION)
    said = [text for text in (str(m.get("text") or "").strip() for m in messages) if text]
    # The channel's busy reply ends with a handoff that has no work order: known by that shape too.
    if any(says(s, texts.busy) for s in said) or any(
        c.get("type") == "handoff" and not c.get("work_order") for c in customs
    ):
        return Verdict(Outcome.ERROR, "busy")
    if any(says(s, texts.action_failed) for s in said):
        return Verdict(Outcome.ERROR, "action_failed")
    if any(says(s, texts.no_answer) for s in said):
        return Verdict(Outcome.KB_NO_ANSWER)
    responses = [r for r in map(texts.response_of, said) if r is not None]
    kind = next((k for k in map(turned_away_kind, responses) if k != "other"), "other")
    return Verdict(Outcome.TURNED_AWAY, kind, response=responses[0] if responses else None)


# -- counting (pure) -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Result:
    """One question's run: what was asked, what came back, how it was judged and how long it took."""

    query: str
    gold: str | None
    verdict: Verdict
    texts: tuple[str, ...]
    ms: float
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "query": self.query,
            "gold": self.gold,
            "outcome": v.outcome.value,
            "kind": v.kind,
            "entry_key": v.entry_key,
            "offered": list(v.offered),
            "response": v.response,
            "texts": list(self.texts),
            "ms": round(self.ms, 1),
            **({"error": self.error} if self.error else {}),
        }


def summarise(results: Sequence[Result]) -> dict[str, Any]:
    """Counts per outcome (turned-away and errors broken down by kind), the right-entry rate and latency.

    >>> r = Result("q", "A", Verdict(Outcome.ANSWERED_RIGHT, entry_key="A"), (), 100.0)
    >>> s = summarise([r])
    >>> s["questions"], s["answered_right"], s["right_answered_or_offered"], s["p50_ms"]
    (1, 1, 1, 100.0)
    """
    counts = Counter(r.verdict.outcome for r in results)
    turned = Counter(r.verdict.kind for r in results if r.verdict.outcome is Outcome.TURNED_AWAY)
    errors = Counter(r.verdict.kind for r in results if r.verdict.outcome is Outcome.ERROR)
    said = Counter(r.verdict.response or "(unrecognised)" for r in results if r.verdict.outcome is Outcome.TURNED_AWAY)
    latencies = [r.ms for r in results if r.verdict.outcome is not Outcome.ERROR]
    n = len(results)
    right = counts[Outcome.ANSWERED_RIGHT] + counts[Outcome.OFFERED_RIGHT]
    return {
        "questions": n,
        **{o.value: counts[o] for o in OUTCOMES if o is not Outcome.ERROR},
        "turned_away_kinds": {kind: turned[kind] for kind in TURNED_AWAY_KINDS},
        "turned_away_responses": dict(said.most_common()),
        "errors": counts[Outcome.ERROR],
        "error_kinds": dict(errors.most_common()),
        "right_answered_or_offered": right,
        "right_answered_or_offered_rate": right / n if n else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a table for people (``--json`` gives the same numbers to programs)."""
    n = report["questions"] or 1

    def row(label: str, count: int) -> str:
        return f"{label:38} {count:6d} {100 * count / n:6.1f} %"

    lines = [
        f"{report['questions']} questions through the bot (web channel → Rasa → action server → knowledge base), "
        f"{report['n_entries']} entries, concurrency {report['concurrency']}",
        f"{'outcome':38} {'count':>6} {'share':>8}",
        row("answered, right entry", report["answered_right"]),
        row("answered, wrong entry", report["answered_wrong"]),
        row("offered, right entry among them", report["offered_right"]),
        row("offered, without the right entry", report["offered_wrong"]),
        row("asked for the city", report["asked_region"]),
        row("knowledge base: no answer", report["kb_no_answer"]),
        row("turned away before the knowledge base", report["turned_away"]),
        *(row(f"  {kind.replace('_', ' ')}", count) for kind, count in report["turned_away_kinds"].items()),
        row("errors", report["errors"]),
        *(row(f"  {kind.replace('_', ' ')}", count) for kind, count in report["error_kinds"].items()),
        row("right entry answered or offered", report["right_answered_or_offered"]),
        f"latency p50 / p95 / p99: {report['p50_ms']:,.0f} / {report['p95_ms']:,.0f} / {report['p99_ms']:,.0f} ms; "
        f"{report['wall_s']:.0f} s for the questions ({report['questions_per_s']:.1f}/s), "
        f"{report['start_s']:.0f} s to import, index and start the servers",
    ]
    if report.get("turned_away_responses"):
        said = ", ".join(f"{name} {count}" for name, count in report["turned_away_responses"].items())
        lines.append(f"turned away with: {said}")
    m = report["machine"]
    lines += [
        f"machine: {m['cpu'] or 'unknown CPU'}, {m['cores']} cores, {m['memory_gib']} GiB; commit {report['commit']}",
        f"command: {report['command']}",
    ]
    return "\n".join(lines)


# -- the servers ------------------------------------------------------------------


class BenchError(RuntimeError):
    """The benchmark could not run (a server did not start, the Rasa model could not be trained ...)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass(eq=False)  # one per process: compared and hashed by identity
class Server:
    """One server process in a process group of its own, so stopping it stops its children too."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, command: list[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> Server:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(name, proc, log)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def failure(self, what: str) -> BenchError:
        return BenchError(f"{self.name} {what}; the last lines of its log ({self.log}):\n{self.tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """TERM the whole group, then KILL what is left after ``timeout`` seconds.

        A short grace: the servers hold nothing worth draining (conversations in memory, the data
        folder thrown away), and Sanic would wait 15 s for requests still in flight after a Ctrl-C.
        """
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if sig is signal.SIGTERM:
                # The group's leader is gone; a child it left behind goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            return


def wait_ready(servers: Mapping[Server, Callable[[], bool]], seconds: float) -> None:
    """Poll each server's health check until all pass.

    Raises:
        BenchError: a server exited, or was not ready after ``seconds`` (with its log's last lines).
    """
    import requests

    pending = dict(servers)
    deadline = time.monotonic() + seconds
    while pending:
        for server, ready in list(pending.items()):
            if server.proc.poll() is not None:
                raise server.failure(f"exited with status {server.proc.returncode} while starting")
            with contextlib.suppress(requests.RequestException, ValueError):
                if ready():
                    del pending[server]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise next(iter(pending)).failure(f"did not pass its health check within {seconds:.0f} s")
        time.sleep(0.5)


def ensure_rasa_model(root: Path, log: Callable[[str], None]) -> None:
    """Train the bot's Rasa model when it is missing or older than what it is trained from.

    ``scripts/bot.sh train`` skips the training itself when the inputs' content did not change.

    Raises:
        BenchError: training failed (with its output's last lines).
    """
    from hotline.doctor import check_rasa_model

    check = check_rasa_model(root)
    if check.ok:
        return
    log(f"{check.detail}: training the Rasa model first (bash scripts/bot.sh train, about a minute)")
    done = subprocess.run(
        ["bash", str(root / "scripts" / "bot.sh"), "train"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise BenchError(f"training the Rasa model failed (scripts/bot.sh train, status {done.returncode}):\n{tail}")


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``HOTLINE_*`` variables that give a child process exactly these settings."""
    return {ENV_PREFIX + f.name.upper(): str(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """A SIGTERM ends the run like Ctrl-C, through the ``finally`` that stops the servers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclasses.dataclass(frozen=True)
class Stack:
    """Where the benchmark's own servers listen."""

    rasa_url: str
    rasa_port: int
    action_port: int
    servers: tuple[Server, ...] = ()

    def check_alive(self) -> None:
        """Raises BenchError (with the log's last lines) when a server has stopped: its errors are not the bot's."""
        for server in self.servers:
            if server.proc.poll() is not None:
                raise server.failure(f"stopped during the run (status {server.proc.returncode})")


@contextlib.contextmanager
def bot_stack(
    root: Path,
    data_settings: Settings,
    environ: Mapping[str, str],
    folder: Path,
    *,
    start_timeout: float = 300.0,
    log: Callable[[str], None] = lambda _: None,
) -> Iterator[Stack]:
    """Run an action server and Rasa on free ports over ``data_settings``; yield where; stop both.

    Both are started as ``scripts/bot.sh`` starts them in production, in process groups of their
    own, and stopped (TERM, then KILL) on leaving, whatever the reason.

    Raises:
        BenchError: a server did not become ready within ``start_timeout`` seconds.
    """
    import requests

    action_port, rasa_port = free_port(), free_port()
    rasa_token = secrets.token_urlsafe(24)  # Rasa's /status needs its API token
    env = {
        **environ,
        **settings_environment(data_settings),
        "HOTLINE_ACTION_PORT": str(action_port),
        "HOTLINE_ACTION_URL": f"http://127.0.0.1:{action_port}/webhook",
        "HOTLINE_RASA_PORT": str(rasa_port),
        "HOTLINE_GATEWAY_SECRET": secrets.token_urlsafe(24),
        "HOTLINE_RASA_TOKEN": rasa_token,
        # Every question comes from this one address: the web channel's limit per address would
        # measure itself, not the bot.
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "0",
        "RASA_TELEMETRY_ENABLED": "false",
    }
    env.pop("HOTLINE_REDIS_HOST", None)  # the older way to ask for Redis; conversations stay in memory
    bot_sh = str(root / "scripts" / "bot.sh")
    servers: list[Server] = []
    try:
        actions = Server.start(
            "action server", ["bash", bot_sh, "actions"], cwd=root, env=env, log=folder / "actions.log"
        )
        servers.append(actions)
        rasa = Server.start("Rasa", ["bash", bot_sh, "rasa"], cwd=root, env=env, log=folder / "rasa.log")
        servers.append(rasa)
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        log(f"starting the action server on port {action_port} and Rasa on port {rasa_port} (logs in {folder})")
        wait_ready(
            {
                actions: lambda: requests.get(f"http://127.0.0.1:{action_port}/health", timeout=2).ok,
                rasa: lambda: (
                    bool(
                        requests.get(f"{rasa_url}/status", params={"token": rasa_token}, timeout=2)
                        .json()
                        .get("model_id")
                    )
                    and requests.get(f"{rasa_url}/webhooks/web/", timeout=2).ok
                ),
            },
            start_timeout,
        )
        yield Stack(rasa_url, rasa_port, action_port, (actions, rasa))
    finally:
        for server in reversed(servers):
            server.stop()


# -- the run ------------------------------------------------------------------------


def ask(session: Any, url: str, sender: str, query: LabelledQuery, texts: ReplyTexts, timeout: float) -> Result:
    """Send one question in a conversation of its own and judge the reply."""
    import requests

    started = time.perf_counter()
    try:
        reply = session.post(url, json={"sender": sender, "message": query.query}, timeout=timeout)
        ms = (time.perf_counter() - started) * 1000
        if reply.status_code != 200:
            error = f"HTTP {reply.status_code}: {reply.text[:200]}"
            return Result(query.query, query.gold, Verdict(Outcome.ERROR, "http"), (), ms, error)
        messages = reply.json().get("messages")
        if not isinstance(messages, list):
            raise ValueError("no 'messages' list in the reply")
    except requests.Timeout:
        ms = (time.perf_counter() - started) * 1000
        return Result(query.query, query.gold, Verdict(Outcome.ERROR, "timeout"), (), ms, f"no reply in {timeout} s")
    except (requests.RequestException, ValueError) as exc:
        ms = (time.perf_counter() - started) * 1000
        return Result(query.query, query.gold, Verdict(Outcome.ERROR, "http"), (), ms, str(exc)[:200])
    messages = [m for m in messages if isinstance(m, dict)]
    said = tuple(str(m["text"]) for m in messages if m.get("text"))
    return Result(query.query, query.gold, classify(messages, query.gold, texts), said, ms)


def run_dialogue(
    kb_file: Path,
    queries_file: Path,
    *,
    settings: Settings,
    root: Path,
    environ: Mapping[str, str],
    limit: int | None = None,
    concurrency: int = 4,
    details: Path | None = None,
    timeout: float = 60.0,
    start_timeout: float = 300.0,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Import ``kb_file`` into a temporary database, start the bot on it, ask every query once, stop the bot.

    Args:
        kb_file: the knowledge base (any import format; every entry is imported, distractors too).
        queries_file: labelled queries (JSON Lines ``query``, ``gold_id``).
        settings: the deployment's settings; the run uses them with its own data folder, SQLite
            database and no Redis.
        root: the checkout (``scripts/bot.sh``, ``bot/``, ``actions/``, ``.venv``, ``.venv-rasa``).
        environ: the environment the servers inherit (PATH and the like).
        limit: only the first ``limit`` queries.
        concurrency: questions in flight at once.
        details: write one JSON line per question here.
        timeout: seconds to wait for one reply.
        start_timeout: seconds the servers may take to pass their health checks.

    Returns:
        :func:`summarise`'s counts plus the run's context (files, machine, command, timings).

    Raises:
        ValueError: a bad argument or an unreadable queries file (the message says which).
        ImportRejected: the knowledge-base file has bad rows.
        BenchError: the Rasa model could not be trained or a server did not start.
    """
    if not 1 <= concurrency <= 64:
        raise ValueError(f"concurrency must be 1-64, got {concurrency}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    for needed in ("scripts/bot.sh", "bot/domain.yml", ".venv-rasa/bin/rasa"):
        if not (root / needed).exists():
            raise BenchError(f"{root / needed} is missing: --root must be the hotline-qa checkout, set up")
    queries = read_queries(queries_file, limit=limit)
    texts = ReplyTexts.load(root)
    ensure_rasa_model(root, log)
    with contextlib.ExitStack() as cleanup, _terminate_as_interrupt():
        folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="hotline-bench-dialogue-")))
        data_settings = dataclasses.replace(
            settings,
            data_dir=str(folder / "data"),
            database_url="",
            model_dir=str(settings.model_path.resolve()),
            redis_url="",
        )
        started = time.perf_counter()
        n_entries = import_knowledge_base(kb_file, data_settings, progress=progress, log=log)
        stack = cleanup.enter_context(
            bot_stack(root, data_settings, environ, folder, start_timeout=start_timeout, log=log)
        )
        url = f"{stack.rasa_url}/webhooks/web/webhook"
        warm_up(url, timeout)
        start_s = time.perf_counter() - started
        log(f"ready after {start_s:.0f} s; asking {len(queries)} questions, {concurrency} at a time")
        started = time.perf_counter()
        results = ask_all(url, queries, texts, concurrency, timeout, progress)
        wall_s = time.perf_counter() - started
        stack.check_alive()
        failed = sum(r.verdict.outcome is Outcome.ERROR for r in results)
        if failed:
            # The logs go with the temporary folder: show what the servers said while it is still there.
            for server in stack.servers:
                log(f"{failed} question(s) failed; the last lines of the {server.name}'s log:\n{server.tail(20)}")
    if details is not None:
        with details.open("w", encoding="utf-8") as out:
            for result in results:
                out.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
    return {
        **summarise(results),
        "wall_s": round(wall_s, 1),
        "questions_per_s": round(len(results) / wall_s, 2) if wall_s else 0.0,
        "start_s": round(start_s, 1),
        "concurrency": concurrency,
        "kb_file": str(kb_file),
        "queries_file": str(queries_file),
        "n_entries": n_entries,
        "ports": {"rasa": stack.rasa_port, "actions": stack.action_port},
        "thresholds": settings.thresholds(),
        "machine": machine(),
        "commit": _commit(root),
        "command": " ".join(["hotline", *sys.argv[1:]]),
    }


def import_knowledge_base(kb_file: Path, data_settings: Settings, *, progress: bool, log: Callable[[str], None]) -> int:
    """``hotline setup`` + ``hotline import`` on an empty data folder: schema, entries, saved index.

    Returns:
        How many entries the file held.
    """
    import gc

    from knowledge_base import factory
    from knowledge_base.storage.migrate import upgrade
    from knowledge_base.transfer import read_entries

    entries = read_entries(kb_file)
    log(f"importing {len(entries)} entries from {kb_file} into {data_settings.data_dir} and indexing them")
    db = factory.open_database(data_settings)
    try:
        upgrade(db)
        # Embedding may use every core here: nothing else runs yet, and the threads are not in the index's manifest.
        indexing = dataclasses.replace(data_settings, embed_threads=os.cpu_count() or 1)
        kb = factory.open_knowledge_base(indexing, db=db, progress=progress)
        kb.import_entries(entries, author="bench-dialogue")
        del kb  # the model and the index: the action server loads its own
        gc.collect()
    finally:
        db.close()
    return len(entries)


def warm_up(url: str, timeout: float) -> None:
    """Two untimed conversations, so the first measured question does not pay Rasa's and the model's
    first-use costs (one a greeting, one that reaches the knowledge base); their replies do not matter."""
    import requests

    for i, text in enumerate(("你好", "请问这项业务怎么办理，需要什么材料")):
        with contextlib.suppress(requests.RequestException):
            requests.post(url, json={"sender": f"bench-warm-up-{i}", "message": text}, timeout=timeout)


def ask_all(
    url: str, queries: Sequence[LabelledQuery], texts: ReplyTexts, concurrency: int, timeout: float, progress: bool
) -> list[Result]:
    """Every query once, ``concurrency`` at a time, each in a conversation of its own; results in query order."""
    import requests

    run_id = secrets.token_hex(4)
    local = threading.local()

    def one(i: int) -> Result:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return ask(local.session, url, f"bench-{run_id}-{i}", queries[i], texts, timeout)

    results: list[Result | None] = [None] * len(queries)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(queries), desc="questions", unit="q", file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-dialogue")
    try:
        futures = {pool.submit(one, i): i for i in range(len(queries))}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if bar is not None:
                bar.update()
    finally:
        # On Ctrl-C, questions not yet sent are dropped; those in flight end when the servers stop.
        pool.shutdown(wait=False, cancel_futures=True)
        if bar is not None:
            bar.close()
    return [r for r in results if r is not None]


def _commit(root: Path) -> str:
    """The checkout's commit (with ``+changes`` when files differ from it), for tracing a figure to its code."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")
