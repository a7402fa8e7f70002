"""Whole-system load benchmark: starts its own hotline-qa and plays citizens, callers, operators and an editor at once.

    .venv/bin/python scripts/load_system.py --workers 1 --seconds 60 --json var/load-1.json
    .venv/bin/python scripts/load_system.py --workers 2 --seconds 60 --citizens 20 --callers 10 --operators 5

The system under test is a fresh copy on free loopback ports with a temporary data directory
(`hotline setup` imports the sample knowledge base there; the built embedding model in
var/models is reused when present). Nothing of var/ is written.

  --workers 1   one action server, one Rasa, one web app
  --workers 2   two of each: Rasa i calls action server i, web app i relays chat to Rasa i

Every process shares one SQLite database, and Redis (--redis-url) for Rasa's conversations and
locks and for knowledge-base change announcements, in both layouts, so the two differ only in
the number of workers. An operator and an editor (role reviewer) are created with `hotline user add`.

Then, at the same time and closed-loop (each virtual user sends its next request as soon as the
last one is answered), bounded by --seconds and --max-requests:

  citizens   web chat through the web app's /api/chat relay (the widget's path): multi-turn
             conversations of the sample test questions; sometimes a clarification button, sometimes 有用
  callers    the hotline channel (POST /webhooks/hotline/webhook with X-Hotline-Secret), the same way
  operators  GET /operator/api/search, signed in, with typing-like prefixes of a question
  editor     every --publish-every seconds: open an entry's edit form, save a draft with a changed
             answer, publish it; then time how long until the OTHER worker serves the new answer,
             to an operator search and to a citizen's chat

In the two-worker layout every request goes to the next worker in turn (round-robin), so a
conversation's turns land on both Rasa workers and rely on the shared tracker.

It reports, on stdout and with --json FILE: per channel requests, requests/s, p50/p95/p99 latency
and error rate (non-2xx, timeouts, refused connections and the bot's "系统暂时…" replies count as
errors); CPU seconds and peak RSS of every server process tree (/proc); the propagation latency;
the machine and the exact command. Progress goes to stderr. Everything it started is stopped
(process groups), also on Ctrl-C or failure; it exits 1 when the system did not start.

Linux only (reads /proc). Needs .venv, .venv-rasa, bot/models/hotline.tar.gz (scripts/bot.sh train)
and a reachable Redis; its Redis keys carry the run's id and are deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import os
import platform
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
HOTLINE = ROOT / ".venv" / "bin" / "hotline"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
BOT_SH = ROOT / "scripts" / "bot.sh"
RASA_MODEL = ROOT / "bot" / "models" / "hotline.tar.gz"
BUILT_MODEL = ROOT / "var" / "models" / "multilingual-e5-small"
QUESTIONS = ROOT / "knowledge_base" / "sample" / "test_questions.jsonl"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024

# In the channels' BUSY replies and the action's SORRY_BROKEN: the citizen was not answered.
NOT_ANSWERED = "系统暂时"
CHOICE_PAYLOADS = ("/choose_entry", "/inform_region")
CHANNELS = ("web", "hotline", "operator search", "admin publish")


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"[load_system {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class StartupError(RuntimeError):
    """The system under test did not start or does not answer; the message says what, and where the logs are."""


# -- the system under test ------------------------------------------------------------------------


@dataclass
class Server:
    """One server process (started in its own process group) and how to tell it is ready."""

    name: str
    kind: str  # actions | rasa | web
    argv: list[str]
    env: dict[str, str]
    url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its children too
            )

    def ready(self) -> bool:
        path = {"actions": "/health", "rasa": "/status", "web": "/healthz"}[self.kind]
        try:
            # Rasa's /status needs its API token (HOTLINE_RASA_TOKEN of this run's environment).
            token = {"token": self.env.get("HOTLINE_RASA_TOKEN", "")} if self.kind == "rasa" else {}
            reply = requests.get(self.url + path, params=token, timeout=2)
            # Rasa answers /status before its model is loaded; model_id says it is.
            return reply.status_code == 200 and (self.kind != "rasa" or bool(reply.json().get("model_id")))
        except (requests.RequestException, ValueError):
            return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text[-lines:])


def free_ports(count: int) -> list[int]:
    """Ports free on loopback now (all held open until every one is chosen, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Worker:
    """One action server, one Rasa and one web app that talk to each other."""

    index: int
    actions: Server
    rasa: Server
    web: Server


class System:
    """hotline-qa on loopback: set up in a temporary data directory, started, and stopped without leftovers."""

    def __init__(self, args: argparse.Namespace, run_id: str, workdir: Path) -> None:
        self.workers_wanted = args.workers
        self.redis_url = args.redis_url
        self.start_timeout = args.start_timeout
        self.run_id = run_id
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_dir = workdir / "log"
        self.model_dir = BUILT_MODEL if BUILT_MODEL.is_dir() and not args.build_model else None
        self.gateway_secret = secrets.token_urlsafe(24)
        self.rasa_token = secrets.token_urlsafe(24)
        # One session key for every web app: a staff member signed in on one is signed in on all.
        self.secret_key = secrets.token_hex(32)
        self.password = secrets.token_urlsafe(16)
        self.operator_user = "load-operator"
        self.editor_user = "load-editor"
        self.workers: list[Worker] = []

    @property
    def servers(self) -> list[Server]:
        return [s for w in self.workers for s in (w.actions, w.rasa, w.web)]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process: only this run's HOTLINE_* settings (never a real database)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update(
            HOTLINE_CONFIG=str(ROOT / "config.yml"),
            HOTLINE_DATA_DIR=str(self.data_dir),
            HOTLINE_DATABASE_URL="",
            HOTLINE_REDIS_URL=self.redis_url,
            # Pub/sub channels ignore the Redis database number: a prefix of our own keeps other
            # deployments' change announcements out of this run and ours out of theirs.
            HOTLINE_REDIS_PREFIX=f"{self.run_id}:",
            HOTLINE_SECRET_KEY=self.secret_key,
            HOTLINE_GATEWAY_SECRET=self.gateway_secret,
            HOTLINE_RASA_TOKEN=self.rasa_token,
            # The load comes from one address, and its closed-loop operators search faster than people
            # type: the limits would measure themselves, not the system.
            HOTLINE_RATE_LIMIT_PER_MINUTE="0",
            HOTLINE_OPERATOR_RATE_LIMIT_PER_MINUTE="0",
            HOTLINE_WEB_HOST="127.0.0.1",
        )
        if self.model_dir is not None:
            env["HOTLINE_MODEL_DIR"] = str(self.model_dir)
        env.update(extra)
        return env

    def _hotline(self, *argv: str, what: str) -> None:
        log_path = self.log_dir / f"{argv[0]}.log"
        with open(log_path, "ab") as out:
            done = subprocess.run(
                [str(HOTLINE), *argv],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise StartupError(f"{what} failed (exit {done.returncode}); {log_path}:\n{tail}")

    def check_prerequisites(self) -> None:
        for path, fix in (
            (HOTLINE, "bash scripts/setup-env.sh"),
            (RASA, "bash scripts/setup-rasa.sh"),
            (RASA_MODEL, "bash scripts/bot.sh train"),
        ):
            if not path.exists():
                raise StartupError(f"{path.relative_to(ROOT)} is missing; run: {fix}")
        try:
            import redis

            redis.Redis.from_url(self.redis_url, socket_connect_timeout=2).ping()
        except ImportError:
            pass  # Rasa and the workers will say so
        except Exception as exc:
            raise StartupError(f"Redis at {self.redis_url} does not answer ({exc}); give --redis-url") from None

    def set_up(self) -> None:
        self.data_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True)
        model = f"model {self.model_dir}" if self.model_dir else "model built into the data directory"
        say(f"hotline setup in {self.data_dir} ({model}); log {self.log_dir}/setup.log")
        started = time.monotonic()
        self._hotline("setup", what="hotline setup")
        say(f"set up in {time.monotonic() - started:.0f} s; creating staff accounts")
        # A reviewer is an editor who may also publish: the one editor account does both.
        for user, role in ((self.operator_user, "operator"), (self.editor_user, "reviewer")):
            self._hotline("user", "add", user, "--role", role, "--password", self.password, what=f"adding {user}")

    def start(self) -> float:
        """Start every server and wait until all are ready; returns the seconds that took."""
        ports = free_ports(3 * self.workers_wanted)
        for i in range(self.workers_wanted):
            action_port, rasa_port, web_port = ports[3 * i : 3 * i + 3]
            n = i + 1
            actions = Server(
                f"actions-{n}",
                "actions",
                ["bash", str(BOT_SH), "actions"],
                self.env(HOTLINE_ACTION_PORT=str(action_port)),
                f"http://127.0.0.1:{action_port}",
                self.log_dir / f"actions-{n}.log",
            )
            rasa = Server(
                f"rasa-{n}",
                "rasa",
                ["bash", str(BOT_SH), "rasa"],
                self.env(HOTLINE_RASA_PORT=str(rasa_port), HOTLINE_ACTION_URL=f"{actions.url}/webhook"),
                f"http://127.0.0.1:{rasa_port}",
                self.log_dir / f"rasa-{n}.log",
            )
            web = Server(
                f"web-{n}",
                "web",
                [str(HOTLINE), "web", "--host", "127.0.0.1", "--port", str(web_port)],
                self.env(HOTLINE_RASA_URL=rasa.url),
                f"http://127.0.0.1:{web_port}",
                self.log_dir / f"web-{n}.log",
            )
            self.workers.append(Worker(n, actions, rasa, web))
        started = time.monotonic()
        for server in self.servers:
            server.start()
        say(f"started {', '.join(f'{s.name} {s.url}' for s in self.servers)}; waiting for health")
        pending = list(self.servers)
        last_note = started
        while pending:
            for server in list(pending):
                assert server.proc is not None
                if server.proc.poll() is not None:
                    raise StartupError(
                        f"{server.name} exited with code {server.proc.returncode} while starting; "
                        f"{server.log_path}:\n{server.log_tail()}"
                    )
                if server.ready():
                    pending.remove(server)
                    say(f"{server.name} ready after {time.monotonic() - started:.0f} s")
            if not pending:
                break
            if time.monotonic() - started > self.start_timeout:
                tails = "\n".join(f"  {s.name} ({s.log_path}):\n{s.log_tail(8)}" for s in pending)
                raise StartupError(f"not ready after {self.start_timeout:.0f} s: {[s.name for s in pending]}\n{tails}")
            if time.monotonic() - last_note > 30:
                say(f"still waiting for {', '.join(s.name for s in pending)}")
                last_note = time.monotonic()
            time.sleep(1)
        return time.monotonic() - started

    def stop(self, grace: float = 15) -> list[str]:
        """Stop every server: SIGTERM to its main process, then to what is left of its group, then SIGKILL.

        The main process goes first because it stops its own children in order (the action
        server's Sanic manager fails noisily when its helper processes die before it does).

        Returns:
            Problems worth reporting: servers that had to be killed, or processes that survived.
        """
        started = [s for s in self.servers if s.proc is not None]

        def wait_for_groups(seconds: float) -> list[Server]:
            deadline = time.monotonic() + seconds
            while True:
                for server in started:
                    assert server.proc is not None
                    server.proc.poll()  # reap the main process, or its zombie keeps the group "alive"
                alive = [s for s in started if _group_alive(s.pid)]
                if not alive or time.monotonic() >= deadline:
                    return alive
                time.sleep(0.2)

        for server in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGTERM)
        alive = wait_for_groups(grace)
        for server in alive:
            _signal_group(server.pid, signal.SIGTERM)
        problems = []
        for server in wait_for_groups(3):
            problems.append(f"{server.name} did not stop on SIGTERM within {grace + 3:.0f} s and was killed")
            _signal_group(server.pid, signal.SIGKILL)
        for server in wait_for_groups(5):
            problems.append(f"{server.name}: process group {server.pid} still has processes after SIGKILL")
        return problems

    def clean_redis(self) -> int:
        """Delete this run's keys (KB cache and events, Rasa trackers and locks: all carry the run id)."""
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            keys = list(client.scan_iter(match=f"*{self.run_id}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            return len(keys)
        except Exception as exc:  # cleaning up must not hide the results
            say(f"could not delete this run's Redis keys ({exc}); they all contain {self.run_id}")
            return 0


# -- measuring the server processes ------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds user+system, resident KiB) of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the name: state, ppid, ... utime (field 14), stime (15), ... rss in pages (24).
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK, int(int(fields[21]) * PAGE_KB)


def _peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (every core, everyone's processes)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class TreeUsage:
    """What one server's process tree used, accumulated over samples."""

    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    rss_peak_kib: int = 0  # the largest sampled sum of the tree's resident memory
    hwm_kib: int = 0  # the kernel's exact peak of the tree's largest process
    processes: set[int] = field(default_factory=set)

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_by_pid.values())


class Sampler(threading.Thread):
    """Samples CPU and memory of every server's process tree from /proc."""

    def __init__(self, servers: list[Server], interval: float) -> None:
        super().__init__(name="sampler", daemon=True)
        self.servers = servers
        self.interval = interval
        self.usage = {s.name: TreeUsage() for s in servers}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def sample(self) -> None:
        stats: dict[int, tuple[int, float, int]] = {}
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                found = _proc_stat(int(entry))
                if found is not None:
                    stats[int(entry)] = found
                    children.setdefault(found[0], []).append(int(entry))
        with self._lock:
            for server in self.servers:
                usage = self.usage[server.name]
                tree, todo = [], [server.pid]
                while todo:
                    pid = todo.pop()
                    if pid in stats:
                        tree.append(pid)
                        todo.extend(children.get(pid, []))
                rss = 0
                for pid in tree:
                    _, cpu, rss_kib = stats[pid]
                    # Kept per pid, so a child that exits still counts with its last reading.
                    usage.cpu_by_pid[pid] = max(cpu, usage.cpu_by_pid.get(pid, 0.0))
                    usage.hwm_kib = max(usage.hwm_kib, _peak_rss_kib(pid))
                    usage.processes.add(pid)
                    rss += rss_kib
                usage.rss_peak_kib = max(usage.rss_peak_kib, rss)

    def snapshot(self) -> dict[str, float]:
        """CPU seconds of every tree now."""
        self.sample()
        with self._lock:
            return {name: u.cpu_s for name, u in self.usage.items()}

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        load = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, StopIteration):
        mem_kib, load = 0, []
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average_before": [float(x) for x in load],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return ""
    return head.stdout.strip() + ("+uncommitted changes" if dirty.stdout.strip() else "")


# -- results ---------------------------------------------------------------------------------


class Recorder:
    """Every request's channel, latency and outcome ("ok", or the kind of error)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: dict[str, list[tuple[float, str]]] = {name: [] for name in CHANNELS}

    def add(self, channel: str, seconds: float, outcome: str) -> None:
        with self._lock:
            self.samples[channel].append((seconds * 1000, outcome))

    def counts(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return {c: (len(s), sum(o != "ok" for _, o in s)) for c, s in self.samples.items()}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def summarise(samples: list[tuple[float, str]], seconds: float) -> dict[str, Any]:
    latencies = sorted(ms for ms, _ in samples)
    errors: dict[str, int] = {}
    for _, outcome in samples:
        if outcome != "ok":
            errors[outcome] = errors.get(outcome, 0) + 1
    n = len(samples)
    return {
        "requests": n,
        "requests_per_s": round(n / seconds, 2) if seconds > 0 else 0.0,
        "latency_ms_p50": round(percentile(latencies, 50), 1),
        "latency_ms_p95": round(percentile(latencies, 95), 1),
        "latency_ms_p99": round(percentile(latencies, 99), 1),
        "latency_ms_max": round(latencies[-1], 1) if latencies else 0.0,
        "errors": sum(errors.values()),
        "error_rate": round(sum(errors.values()) / n, 4) if n else 0.0,
        "errors_by_kind": errors,
    }


# -- the virtual users ----------------------------------------------------------------------


@dataclass
class Reply:
    """What a virtual user reads in a bot's reply."""

    payloads: list[str]
    handoff: bool


@dataclass
class Load:
    """What every virtual user shares: where to send, when to stop, what to ask."""

    system: System
    recorder: Recorder
    questions: list[str]
    deadline: float
    stop: threading.Event
    timeout: float
    max_requests: int
    seed: int
    p_choose: float = 0.7
    p_useful: float = 0.4
    _turns: Iterator[int] = field(default_factory=itertools.count)

    def done(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline

    def next_worker(self) -> Worker:
        """The next worker in turn (round-robin over every request of every channel)."""
        workers = self.system.workers
        return workers[next(self._turns) % len(workers)]


def timed(
    load: Load,
    channel: str,
    call: Callable[[], requests.Response],
    check: Callable[[requests.Response], str] = lambda _: "ok",
) -> requests.Response | None:
    """Send one request and record its latency and outcome; the reply when it is a success, else None.

    ``check`` reads a 2xx reply and says "ok" or what is wrong with it (e.g. the bot's busy reply).
    """
    started = time.perf_counter()
    try:
        reply = call()
    except requests.Timeout:
        load.recorder.add(channel, time.perf_counter() - started, "timeout")
        return None
    except requests.RequestException as exc:
        load.recorder.add(channel, time.perf_counter() - started, type(exc).__name__)
        return None
    elapsed = time.perf_counter() - started
    try:
        outcome = check(reply) if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
    except (ValueError, KeyError, TypeError, AttributeError):
        outcome = "malformed reply"
    load.recorder.add(channel, elapsed, outcome)
    return reply if outcome == "ok" else None


@dataclass
class User:
    """One virtual user: its own connection, its own random choices, its own request budget."""

    load: Load
    index: int
    rng: random.Random
    left: int
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def finished(self) -> bool:
        return self.load.done() or self.left <= 0

    def may_send(self) -> bool:
        """True while time and budget allow one more request (and counts it)."""
        if self.finished:
            return False
        self.left -= 1
        return True


def converse(user: User, send: Callable[..., Reply | None]) -> None:
    """One conversation: one to three questions; sometimes a clarification button, sometimes 有用."""
    rng = user.rng
    for _ in range(rng.randint(1, 3)):
        reply = send(text=rng.choice(user.load.questions))
        if reply is None or reply.handoff:
            return  # an error or a hand-off to a person ends the conversation; the user starts a new one
        choices = [p for p in reply.payloads if p.startswith(CHOICE_PAYLOADS)]
        if choices and rng.random() < user.load.p_choose:
            reply = send(payload=rng.choice(choices))
            if reply is None or reply.handoff:
                return
        if "/feedback_useful" in reply.payloads and rng.random() < user.load.p_useful and send(text="有用") is None:
            return


def _web_outcome(reply: requests.Response) -> str:
    messages = reply.json()["messages"]
    if not messages:
        return "no messages"
    return "busy reply" if any(NOT_ANSWERED in (m.get("text") or "") for m in messages) else "ok"


def _hotline_outcome(reply: requests.Response) -> str:
    speech = reply.json()["speech"]
    if not speech:
        return "no speech"
    return "busy reply" if any(NOT_ANSWERED in s for s in speech) else "ok"


def web_turn(user: User, sender: str, text: str | None = None, payload: str | None = None) -> Reply | None:
    """One message of a citizen, through the next web app's /api/chat relay (the widget's path)."""
    if not user.may_send():
        return None
    body = {"sender": sender, **({"payload": payload} if payload else {"message": text})}
    url = user.load.next_worker().web.url + "/api/chat"
    post = functools.partial(user.session.post, url, json=body, timeout=user.load.timeout)
    reply = timed(user.load, "web", post, _web_outcome)
    if reply is None:
        return None
    messages = reply.json()["messages"]
    return Reply(
        [b.get("payload", "") for m in messages for b in (m.get("buttons") or [])],
        any((m.get("custom") or {}).get("type") == "handoff" for m in messages),
    )


def hotline_turn(user: User, call_id: str, text: str | None = None, payload: str | None = None) -> Reply | None:
    """One utterance or key press of a caller, as the speech gateway posts it to the next Rasa."""
    if not user.may_send():
        return None
    body = {
        "call_id": call_id,
        "caller_id": f"load{user.index}",
        **({"payload": payload} if payload else {"text": text}),
    }
    url = user.load.next_worker().rasa.url + "/webhooks/hotline/webhook"
    headers = {"X-Hotline-Secret": user.load.system.gateway_secret}
    post = functools.partial(user.session.post, url, json=body, headers=headers, timeout=user.load.timeout)
    reply = timed(user.load, "hotline", post, _hotline_outcome)
    if reply is None:
        return None
    spoken = reply.json()
    # Key 0 (a person) is always offered; pressing it would measure the operators, not the system.
    payloads = [o.get("payload", "") for o in spoken.get("options") or [] if o.get("digit") != "0"]
    return Reply(payloads, bool(spoken.get("handoff")))


def citizen(load: Load, index: int) -> None:
    """A citizen in the chat widget: conversation after conversation, each with a new sender id."""
    user = User(load, index, random.Random(load.seed * 100_003 + index), load.max_requests)
    for conversation in itertools.count():
        if user.finished:
            return
        converse(user, functools.partial(web_turn, user, f"{load.system.run_id}-web{index}-{conversation}"))


def caller(load: Load, index: int) -> None:
    """A caller on the 12345 line: call after call, each with a new call id."""
    user = User(load, index, random.Random(load.seed * 200_003 + index), load.max_requests)
    for call in itertools.count():
        if user.finished:
            return
        converse(user, functools.partial(hotline_turn, user, f"{load.system.run_id}-call{index}-{call}"))


def typing_prefixes(question: str, rng: random.Random) -> list[str]:
    """What an operator's console searches while the question is typed: a prefix at every pause."""
    step = rng.randint(3, 6)
    return [question[:n] for n in range(max(2, step), len(question), step)] + [question]


def _search_outcome(reply: requests.Response) -> str:
    return "ok" if isinstance(reply.json()["hits"], list) else "no hits list"


def operator(load: Load, index: int, staff: StaffSession) -> None:
    """An operator typing callers' questions into the console, which searches at every pause."""
    user = User(load, index, random.Random(load.seed * 300_007 + index), load.max_requests, staff.session)
    while True:
        for prefix in typing_prefixes(user.rng.choice(load.questions), user.rng):
            if not user.may_send():
                return
            url = load.next_worker().web.url + "/operator/api/search"
            get = functools.partial(user.session.get, url, params={"q": prefix}, timeout=load.timeout)
            timed(load, "operator search", get, _search_outcome)


# -- staff: sign-in, forms, the editor ---------------------------------------------------------


class _FormFields(HTMLParser):
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


class StaffSession:
    """A staff member's browser session: signed in through the sign-in form, CSRF token included."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()
        page = self.session.get(f"{base_url}/staff/login", timeout=timeout)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        if page.status_code != 200 or not found:
            raise StartupError(f"{base_url}/staff/login: HTTP {page.status_code}, no csrf-token meta tag")
        self.csrf = found.group(1)
        reply = self.session.post(
            f"{base_url}/staff/login",
            data={"username": username, "password": password, "csrf_token": self.csrf},
            allow_redirects=False,
            timeout=timeout,
        )
        if reply.status_code != 302 or "/staff/login" in reply.headers.get("Location", ""):
            raise StartupError(f"sign-in of {username} on {base_url} failed: HTTP {reply.status_code}")

    def form(self, url: str, form_id: str) -> dict[str, str]:
        page = self.session.get(url, timeout=self.timeout)
        page.raise_for_status()
        parser = _FormFields(form_id)
        parser.feed(page.text)
        if not parser.fields:
            raise ValueError(f"{url} has no form #{form_id}")
        return parser.fields


@dataclass
class Target:
    """The entry the editor keeps changing, as published before the run."""

    key: str
    entry_id: int
    question: str
    answer: str


def find_target(staff: StaffSession, key: str) -> Target:
    page = staff.session.get(f"{staff.base_url}/admin/entries", params={"q": key}, timeout=staff.timeout)
    for entry_id in dict.fromkeys(int(i) for i in re.findall(r'href="/admin/entries/(\d+)"', page.text)):
        fields = staff.form(f"{staff.base_url}/admin/entries/{entry_id}/edit", "entry-form")
        if fields.get("key") == key:
            return Target(key, entry_id, fields["question"], fields["answer"])
    raise StartupError(f"no entry {key!r} in the admin's entry list (HTTP {page.status_code}); give --edit-entry")


@dataclass
class Propagation:
    """How long until a published change is served elsewhere.

    Per probe, one (seconds or None when not seen within the timeout, requests it took) per publish.
    """

    seen: dict[str, list[tuple[float | None, int]]] = field(default_factory=dict)
    publishes: list[dict[str, Any]] = field(default_factory=list)


class Editor(threading.Thread):
    """Every ``every`` seconds: change the target's answer and publish it, then watch the other worker."""

    def __init__(self, load: Load, staff: StaffSession, target: Target, every: float, probe_timeout: float) -> None:
        super().__init__(name="editor", daemon=True)
        self.load = load
        self.staff = staff
        self.target = target
        self.every = every
        self.probe_timeout = probe_timeout
        self.result = Propagation()
        self.failure = ""

    def run(self) -> None:
        next_at = time.monotonic() + self.every / 2
        for n in itertools.count(1):
            if self.load.stop.wait(max(0.0, next_at - time.monotonic())) or self.load.done():
                return
            try:
                self.publish_and_watch(n)
            except Exception as exc:  # recorded, and the load goes on
                self.failure = f"publish {n}: {type(exc).__name__}: {exc}"
                say(f"editor: {self.failure}")
            next_at = max(next_at + self.every, time.monotonic())

    def publish_and_watch(self, n: int) -> None:
        workers = self.load.system.workers
        here = workers[(n - 1) % len(workers)]
        there = workers[n % len(workers)]  # the other worker (the same one in the one-worker layout)
        marker = f"（负载测试修订 {self.load.system.run_id}-{n}）"
        base = here.web.url
        t = self.staff.timeout
        started = time.perf_counter()
        steps: dict[str, float] = {}
        try:
            fields = self.staff.form(f"{base}/admin/entries/{self.target.entry_id}/edit", "entry-form")
            steps["form_ms"] = (time.perf_counter() - started) * 1000
            fields.update(answer=f"{self.target.answer}\n{marker}", action="save")
            saved = self.staff.session.post(f"{base}/admin/drafts", data=fields, allow_redirects=False, timeout=t)
            steps["draft_ms"] = (time.perf_counter() - started) * 1000 - steps["form_ms"]
            draft = re.search(r"/admin/drafts/(\d+)$", saved.headers.get("Location", ""))
            if saved.status_code != 302 or not draft:
                raise ValueError(f"saving the draft: HTTP {saved.status_code}")
            # A new draft is version 1; its page (quality checks) is the editor's reading, not the publish path.
            published = self.staff.session.post(
                f"{base}/admin/drafts/{draft.group(1)}/publish",
                data={"csrf_token": fields["csrf_token"], "draft_version": "1"},
                allow_redirects=False,
                timeout=t,
            )
            steps["publish_ms"] = (time.perf_counter() - started) * 1000 - steps["form_ms"] - steps["draft_ms"]
            if published.status_code != 302 or "/admin/entries/" not in published.headers.get("Location", ""):
                raise ValueError(f"publishing draft {draft.group(1)}: HTTP {published.status_code}, not published")
        except (requests.RequestException, ValueError) as exc:
            outcome = "timeout" if isinstance(exc, requests.Timeout) else f"{type(exc).__name__}: {exc}"
            self.load.recorder.add("admin publish", time.perf_counter() - started, outcome)
            say(f"editor: publish {n} failed: {outcome}")
            return
        published_at = time.monotonic()
        cycle_s = time.perf_counter() - started
        self.load.recorder.add("admin publish", cycle_s, "ok")
        other = "the other" if len(workers) > 1 else "the same"
        probes = {
            f"operator search on {other} web app": lambda: self._in_search(there, marker),
            f"citizen chat through {other} worker (web app → Rasa → action server)": (
                lambda: self._in_chat(there, marker, n)
            ),
        }
        seen: dict[str, tuple[float | None, int]] = {}
        threads = [
            threading.Thread(target=self._watch, args=(name, probe, published_at, seen))
            for name, probe in probes.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seen = {name: seen[name] for name in probes}  # in the probes' order, not the order they finished
        for name, found in seen.items():
            self.result.seen.setdefault(name, []).append(found)
        self.result.publishes.append(
            {
                "n": n,
                "published_on": here.web.name,
                "watched_on": f"worker {there.index}",
                **{k: round(v, 1) for k, v in steps.items()},
                "seen": {k: {"s": v, "requests": tries} for k, (v, tries) in seen.items()},
            }
        )
        if self.load.stop.is_set():
            return  # interrupted: the watch was cut short, not the change lost
        shown = ", ".join("never" if v is None else f"{v * 1000:.0f} ms" for v, _ in seen.values())
        say(f"editor: publish {n} on {here.web.name}: {cycle_s * 1000:.0f} ms; on worker {there.index} after {shown}")

    def _watch(
        self, name: str, probe: Callable[[], bool], since: float, seen: dict[str, tuple[float | None, int]]
    ) -> None:
        tries = 0
        deadline = since + self.probe_timeout
        while time.monotonic() < deadline and not self.load.stop.is_set():
            tries += 1
            try:
                if probe():
                    seen[name] = (time.monotonic() - since, tries)
                    return
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.02)
        seen[name] = (None, tries)

    def _in_search(self, worker: Worker, marker: str) -> bool:
        reply = self.staff.session.get(
            f"{worker.web.url}/operator/api/search", params={"q": self.target.question}, timeout=self.staff.timeout
        )
        return any(h.get("key") == self.target.key and marker in h.get("answer", "") for h in reply.json()["hits"])

    def _in_chat(self, worker: Worker, marker: str, n: int) -> bool:
        sender = f"{self.load.system.run_id}-probe{n}-{secrets.token_hex(3)}"
        url = f"{worker.web.url}/api/chat"
        messages = requests.post(
            url, json={"sender": sender, "message": self.target.question}, timeout=self.staff.timeout
        ).json()["messages"]
        # A close call offers a choice: pick the target, as the citizen would.
        choice = next(
            (
                b["payload"]
                for m in messages
                for b in (m.get("buttons") or [])
                if self.target.key in b.get("payload", "")
            ),
            None,
        )
        if choice is not None:
            messages = requests.post(
                url, json={"sender": sender, "payload": choice}, timeout=self.staff.timeout
            ).json()["messages"]
        return any(marker in (m.get("text") or "") for m in messages)


# -- the run -------------------------------------------------------------------------------


def preflight(system: System, staff: StaffSession, target: Target) -> dict[str, float]:
    """Every path answers once on every worker before the clock starts, which also warms them.

    Each asks something no cache holds, so that every action server and web app loads its
    embedding model now (it is loaded on the first search, not at start) rather than during the load.

    Returns:
        Seconds each first request took (the cold-start cost, reported beside the results).
    """
    headers = {"X-Hotline-Secret": system.gateway_secret}
    taken: dict[str, float] = {}

    def uncached() -> str:
        # Searches are cached in Redis for every process: a question no one asked makes each one embed.
        return f"{target.question} {secrets.token_hex(4)}"

    for w in system.workers:
        checks = {
            f"chat via {w.web.name}": functools.partial(
                requests.post,
                f"{w.web.url}/api/chat",
                json={"sender": f"{system.run_id}-pre{w.index}", "message": uncached()},
                timeout=120,
            ),
            f"hotline on {w.rasa.name}": functools.partial(
                requests.post,
                f"{w.rasa.url}/webhooks/hotline/webhook",
                headers=headers,
                json={"call_id": f"{system.run_id}-precall{w.index}", "text": uncached()},
                timeout=120,
            ),
            f"operator search on {w.web.name}": functools.partial(
                staff.session.get,
                f"{w.web.url}/operator/api/search",
                params={"q": uncached()},
                timeout=120,
            ),
        }
        for name, check in checks.items():
            started = time.monotonic()
            try:
                reply = check()
            except requests.RequestException as exc:
                raise StartupError(f"first request, {name}: {exc}") from None
            if reply.status_code != 200 or NOT_ANSWERED in reply.text:
                raise StartupError(f"first request, {name}: HTTP {reply.status_code} {reply.text[:300]}")
            taken[name] = round(time.monotonic() - started, 2)
            say(f"first request, {name}: ok in {taken[name]:.1f} s")
    return taken


def run_load(args: argparse.Namespace, system: System, sampler: Sampler, stop: threading.Event) -> dict[str, Any]:
    questions = [
        json.loads(line)["query"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    recorder = Recorder()
    first = system.workers[0].web.url
    say("signing in the operators and the editor")
    operators = [
        StaffSession(first, system.operator_user, system.password, args.timeout) for _ in range(args.operators)
    ]
    editor_staff = StaffSession(first, system.editor_user, system.password, args.timeout)
    target = find_target(editor_staff, args.edit_entry)
    load = Load(
        system,
        recorder,
        questions,
        deadline=math.inf,
        stop=stop,
        timeout=args.timeout,
        max_requests=args.max_requests,
        seed=args.seed,
    )
    first_requests = preflight(system, editor_staff, target)

    say(
        f"load for {args.seconds:g} s: {args.citizens} citizens, {args.callers} callers, {args.operators} operators, "
        + (f"1 editor publishing {target.key} every {args.publish_every:g} s" if args.publish_every else "no editor")
    )
    cpu_before, busy_before, own_before = sampler.snapshot(), _machine_busy_seconds(), os.times()
    started = time.monotonic()
    load.deadline = started + args.seconds
    users = [threading.Thread(target=citizen, args=(load, i), daemon=True) for i in range(args.citizens)]
    users += [threading.Thread(target=caller, args=(load, i), daemon=True) for i in range(args.callers)]
    users += [threading.Thread(target=operator, args=(load, i, s), daemon=True) for i, s in enumerate(operators)]
    editor = None
    if args.publish_every > 0:
        editor = Editor(load, editor_staff, target, args.publish_every, args.propagation_timeout)
        editor.start()
    for thread in users:
        thread.start()
    next_note = started + 5
    while any(t.is_alive() for t in users) and not stop.wait(0.1):
        if time.monotonic() >= next_note and time.monotonic() < load.deadline:
            next_note += 5
            counts = recorder.counts()
            say(
                f"{time.monotonic() - started:4.0f} s  "
                + "  ".join(f"{c}: {n} ({e} err)" for c, (n, e) in counts.items())
            )
    # The window ends when the last user's last request is answered; the editor's last watch may go on.
    elapsed = time.monotonic() - started
    cpu_after, busy_after, own_after = sampler.snapshot(), _machine_busy_seconds(), os.times()
    if editor is not None:
        editor.join()

    exited = {s.name: s.proc.returncode for s in system.servers if s.proc is not None and s.proc.poll() is not None}
    processes = []
    for server in system.servers:
        usage = sampler.usage[server.name]
        used = cpu_after[server.name] - cpu_before[server.name]
        processes.append(
            {
                "name": server.name,
                "pid": server.pid,
                "processes": len(usage.processes),
                "cpu_s_during_load": round(used, 1),
                "cpu_percent_during_load": round(100 * used / elapsed, 1),
                "cpu_s_since_start": round(usage.cpu_s, 1),
                "rss_peak_mb": round(max(usage.rss_peak_kib, usage.hwm_kib) / 1024),
                **({"exited_with": exited[server.name]} if server.name in exited else {}),
            }
        )
    own_cpu = (own_after.user + own_after.system) - (own_before.user + own_before.system)
    servers_cpu = sum(cpu_after[s.name] - cpu_before[s.name] for s in system.servers)
    busy = busy_after - busy_before
    propagation: dict[str, Any] = {}
    if editor is not None:
        for name, seen in editor.result.seen.items():
            found = sorted(s * 1000 for s, _ in seen if s is not None)
            propagation[name] = {
                "publishes": len(seen),
                "never_seen": sum(s is None for s, _ in seen),
                "ms_p50": round(percentile(found, 50), 1),
                "ms_max": round(found[-1], 1) if found else None,
                "ms_each": [None if s is None else round(s * 1000, 1) for s, _ in seen],
                # 1: the first request after the publish already had it, so the time is that request's latency.
                "requests_each": [tries for _, tries in seen],
            }
    return {
        "seconds": round(elapsed, 1),
        "first_requests_s": first_requests,
        "channels": {c: summarise(recorder.samples[c], elapsed) for c in CHANNELS},
        "propagation": propagation,
        "publishes": editor.result.publishes if editor else [],
        "editor_failure": editor.failure if editor else "",
        "edited_entry": {"key": target.key, "question": target.question},
        "processes": processes,
        "cpu_during_load": {
            "machine_busy_core_s": round(busy, 1),
            "machine_capacity_core_s": round(elapsed * (os.cpu_count() or 1), 1),
            "servers_core_s": round(servers_cpu, 1),
            "load_generator_core_s": round(own_cpu, 1),
            "everything_else_core_s": round(max(0.0, busy - servers_cpu - own_cpu), 1),
        },
    }


def print_report(report: dict[str, Any]) -> None:
    out: list[str] = []
    m = report["machine"]
    out.append(f"hotline-qa whole-system load, {report['layout']}")
    out.append(f"  command: {report['command']}")
    out.append(f"  code:    {report['git'] or 'unknown'}; started {report['started_at']}")
    out.append(
        f"  machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, load average before "
        f"{'/'.join(str(x) for x in m['load_average_before'])}; {m['platform']}"
    )
    out.append(
        f"  virtual users: {report['users']}; measured {report['seconds']} s; servers ready in {report['startup_s']} s"
    )
    out.append(
        "  first request of each path (cold, before the clock starts): "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["first_requests_s"].items())
    )
    out.append("")
    out.append(
        f"{'channel':16} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'errors':>7} {'err %':>6}"
    )
    for name, c in report["channels"].items():
        out.append(
            f"{name:16} {c['requests']:8d} {c['requests_per_s']:7.2f} {c['latency_ms_p50']:8.0f} "
            f"{c['latency_ms_p95']:8.0f} {c['latency_ms_p99']:8.0f} {c['latency_ms_max']:8.0f} {c['errors']:7d} "
            f"{100 * c['error_rate']:6.1f}"
        )
    errors = {n: c["errors_by_kind"] for n, c in report["channels"].items() if c["errors_by_kind"]}
    if errors:
        out.append(
            "  errors: " + "; ".join(f"{n}: {', '.join(f'{k} ×{v}' for k, v in e.items())}" for n, e in errors.items())
        )
    out.append("  admin publish = open the edit form + save a draft + publish (three requests, one editor action)")
    if report["propagation"]:
        out.append("")
        out.append(
            "published change → served there (from the publish reply until a reply carries the new answer; "
            "a change already there at the first request counts that request's latency)"
        )
        for name, p in report["propagation"].items():
            each = ", ".join(
                ("never" if ms is None else f"{ms:.0f} ms") + f" ({tries} req)"
                for ms, tries in zip(p["ms_each"], p["requests_each"], strict=True)
            )
            out.append(
                f"  {name}: p50 {p['ms_p50']:.0f} ms, max {p['ms_max'] or 0:.0f} ms over {p['publishes']} publishes, "
                f"{p['never_seen']} not seen within the timeout; each: {each}"
            )
    out.append("")
    out.append(
        f"{'process tree':12} {'pid':>7} {'procs':>5} {'CPU s load':>10} {'CPU % load':>10} {'CPU s total':>11} "
        f"{'peak RSS MB':>11}"
    )
    for p in report["processes"]:
        note = f"  exited with {p['exited_with']}" if "exited_with" in p else ""
        out.append(
            f"{p['name']:12} {p['pid']:7d} {p['processes']:5d} {p['cpu_s_during_load']:10.1f} "
            f"{p['cpu_percent_during_load']:10.1f} {p['cpu_s_since_start']:11.1f} {p['rss_peak_mb']:11d}{note}"
        )
    cpu = report["cpu_during_load"]
    out.append(
        f"  CPU core-seconds during the load: machine busy {cpu['machine_busy_core_s']} "
        f"of {cpu['machine_capacity_core_s']}; servers {cpu['servers_core_s']}, "
        f"load generator {cpu['load_generator_core_s']}, "
        f"everything else on the machine {cpu['everything_else_core_s']}"
    )
    print("\n".join(out), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else "",
        epilog="Details: the docstring at the top of scripts/load_system.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--workers",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: one action server, Rasa and web app; 2: two of each, requests spread round-robin",
    )
    parser.add_argument("--seconds", type=float, default=60, help="how long the load runs (1-3600)")
    parser.add_argument(
        "--citizens", type=int, default=10, help="virtual citizens chatting through the web app (0-500)"
    )
    parser.add_argument("--callers", type=int, default=5, help="virtual callers on the hotline channel (0-500)")
    parser.add_argument("--operators", type=int, default=3, help="virtual operators searching in the console (0-200)")
    parser.add_argument(
        "--publish-every", type=float, default=10, help="seconds between the editor's publishes; 0: no editor"
    )
    parser.add_argument("--edit-entry", default="GD-SB-001", help="key of the entry the editor changes")
    parser.add_argument("--max-requests", type=int, default=100_000, help="requests per virtual user at most")
    parser.add_argument("--timeout", type=float, default=30, help="seconds one request may take before it is an error")
    parser.add_argument(
        "--propagation-timeout",
        type=float,
        default=30,
        help="seconds to wait for a published change on the other worker",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/9",
        help="Redis for Rasa's tracker and lock store and the KB's change announcements",
    )
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds the servers may take to become ready")
    parser.add_argument("--sample-interval", type=float, default=0.5, help="seconds between CPU/memory samples")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the virtual users' choices")
    parser.add_argument(
        "--build-model",
        action="store_true",
        help="build the embedding model into the temporary data directory instead of reusing var/models",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs) afterwards")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    limits = {
        "seconds": (1, 3600),
        "citizens": (0, 500),
        "callers": (0, 500),
        "operators": (0, 200),
        "publish_every": (0, 3600),
        "max_requests": (1, 10**7),
        "timeout": (0.1, 600),
        "propagation_timeout": (0.1, 600),
        "start_timeout": (10, 3600),
        "sample_interval": (0.05, 60),
    }
    for name, (low, high) in limits.items():
        value = getattr(args, name)
        if not low <= value <= high:
            parser.error(f"--{name.replace('_', '-')} must be between {low} and {high}, got {value}")
    if args.citizens + args.callers + args.operators == 0 and not args.publish_every:
        parser.error("nothing to play: give --citizens, --callers, --operators or --publish-every")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv])
    run_id = f"loadsys-{os.getpid()}-{secrets.token_hex(2)}"
    workdir = Path(tempfile.mkdtemp(prefix="hotline-load-"))
    system = System(args, run_id, workdir)
    stop = threading.Event()
    sampler: Sampler | None = None
    started_at = datetime.now().isoformat(timespec="seconds")
    info = {"machine": machine(), "git": git_revision()}

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    status, keep = 0, args.keep
    try:
        system.check_prerequisites()
        system.set_up()
        startup_s = system.start()
        sampler = Sampler(system.servers, args.sample_interval)
        sampler.start()
        result = run_load(args, system, sampler, stop)
        report = {
            "started_at": started_at,
            "command": command,
            **info,
            "layout": f"{args.workers} worker(s): {args.workers} action server, {args.workers} Rasa, "
            f"{args.workers} web app; one SQLite database; Redis {args.redis_url}",
            "users": f"{args.citizens} citizens (web relay), {args.callers} callers (hotline), "
            f"{args.operators} operators, "
            + (f"1 editor every {args.publish_every:g} s" if args.publish_every else "no editor"),
            "startup_s": round(startup_s, 1),
            **result,
        }
        print_report(report)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            say(f"report written to {args.json}")
    except StartupError as exc:
        say(f"the system did not start: {exc}")
        status, keep = 1, True
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave servers behind
        stop.set()
        if sampler is not None:
            sampler.stop()
        if system.servers:
            say(f"stopping {len(system.servers)} servers")
            for problem in system.stop():
                say(problem)
        if system.data_dir.exists():  # set-up began: the run may have written to Redis
            deleted = system.clean_redis()
            if deleted:
                say(f"deleted {deleted} Redis keys of this run")
        if keep and any(system.log_dir.glob("*.log")):
            say(f"kept {workdir} (database in data/, server logs in log/)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
