"""A fresh hotline-qa on loopback: set up in a temporary data directory, started, warmed up, stopped without leftovers.

  --workers 1   one action server, one Rasa, one web app
  --workers 2   two of each: Rasa i calls action server i, web app i relays chat to Rasa i

Every process shares one SQLite database, and Redis for Rasa's conversations and locks and for the knowledge
base's change announcements, under a key prefix of this run's own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from load.plan import NOT_ANSWERED
from load.staff import sign_in

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = ROOT / ".venv" / "bin" / "hotline"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
BOT_SH = ROOT / "scripts" / "bot.sh"
RASA_MODEL = ROOT / "bot" / "models" / "hotline.tar.gz"
BUILT_MODEL = ROOT / "var" / "models" / "multilingual-e5-small"


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"[load_system {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class StartupError(RuntimeError):
    """The system under test did not start or does not answer; the message says what, and where the logs are."""


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


@dataclass
class Worker:
    """One action server, one Rasa and one web app that talk to each other."""

    index: int
    actions: Server
    rasa: Server
    web: Server


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


class System:
    """hotline-qa on loopback in ``workdir``; ``run_id`` prefixes its Redis keys."""

    def __init__(
        self, workers: int, redis_url: str, run_id: str, workdir: Path, *, start_timeout: float, build_model: bool
    ) -> None:
        if workers not in (1, 2):
            raise ValueError(f"workers must be 1 or 2, got {workers}")
        self.workers_wanted = workers
        self.redis_url = redis_url
        self.start_timeout = start_timeout
        self.run_id = run_id
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_dir = workdir / "log"
        self.model_dir = BUILT_MODEL if BUILT_MODEL.is_dir() and not build_model else None
        self.gateway_secret = secrets.token_urlsafe(24)
        self.rasa_token = secrets.token_urlsafe(24)
        # One session key for every web app: a staff member signed in on one is signed in on all.
        self.secret_key = secrets.token_hex(32)
        self.password = secrets.token_urlsafe(16)
        self.operator_user = "load-operator"
        self.editor_user = "load-editor"
        self.reviewer_user = "load-reviewer"
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
            # The load comes from one address, and closed-loop operators search faster than people type:
            # the limits would measure themselves, not the system.
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
                [str(HOTLINE), *argv], cwd=ROOT, env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
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
        import redis

        try:
            redis.Redis.from_url(self.redis_url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            raise StartupError(f"Redis at {self.redis_url} does not answer ({exc}); give --redis-url") from None

    def set_up(self) -> None:
        self.data_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True)
        model = f"model {self.model_dir}" if self.model_dir else "model built into the data directory"
        say(f"hotline setup in {self.data_dir} ({model}); log {self.log_dir}/setup.log")
        started = time.monotonic()
        self._hotline("setup", what="hotline setup")
        say(f"set up in {time.monotonic() - started:.0f} s; creating staff accounts")
        # Four eyes (allow_self_publish is off by default): the editor saves the draft, a reviewer publishes it.
        accounts = ((self.operator_user, "operator"), (self.editor_user, "editor"), (self.reviewer_user, "reviewer"))
        for user, role in accounts:
            self._hotline("user", "add", user, "--role", role, "--password", self.password, what=f"adding {user}")

    def start(self) -> float:
        """Start every server and wait until all are ready; returns the seconds that took."""
        ports = free_ports(3 * self.workers_wanted)
        for i in range(self.workers_wanted):
            action_port, rasa_port, web_port = ports[3 * i : 3 * i + 3]
            n = i + 1
            actions = Server(
                f"actions-{n}", "actions", ["bash", str(BOT_SH), "actions"],
                self.env(HOTLINE_ACTION_PORT=str(action_port)),
                f"http://127.0.0.1:{action_port}", self.log_dir / f"actions-{n}.log",
            )  # fmt: skip
            rasa = Server(
                f"rasa-{n}", "rasa", ["bash", str(BOT_SH), "rasa"],
                self.env(HOTLINE_RASA_PORT=str(rasa_port), HOTLINE_ACTION_URL=f"{actions.url}/webhook"),
                f"http://127.0.0.1:{rasa_port}", self.log_dir / f"rasa-{n}.log",
            )  # fmt: skip
            web = Server(
                f"web-{n}", "web", [str(HOTLINE), "web", "--host", "127.0.0.1", "--port", str(web_port)],
                self.env(HOTLINE_RASA_URL=rasa.url), f"http://127.0.0.1:{web_port}", self.log_dir / f"web-{n}.log",
            )  # fmt: skip
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

    def warm_up(self, messages: int, question: str, timeout: float = 120) -> dict[str, float]:
        """Every path answers ``messages`` times on every worker before the clock starts (unmeasured).

        Each asks something no cache holds, so that every action server and web app loads its embedding
        model now (it is loaded on the first search, not at start) rather than during the load.

        Returns:
            Seconds each path's first request took (the cold-start cost, reported beside the results).
        """
        staff = requests.Session()
        sign_in(staff, self.workers[0].web.url, self.operator_user, self.password, timeout)
        plain = requests.Session()
        headers = {"X-Hotline-Secret": self.gateway_secret}
        first: dict[str, float] = {}
        for w in self.workers:
            for n in range(messages):
                # Searches are cached in Redis for every process: a question no one asked makes each one embed.
                asked = f"{question} {secrets.token_hex(4)}"
                calls: list[tuple[str, requests.Session, str, dict[str, Any]]] = [
                    (f"chat via {w.web.name}", plain, f"{w.web.url}/api/chat",
                     {"json": {"sender": f"{self.run_id}-warm{w.index}", "message": asked}}),
                    (f"web channel on {w.rasa.name}", plain, f"{w.rasa.url}/webhooks/web/webhook",
                     {"json": {"sender": f"{self.run_id}-warmr{w.index}", "message": asked}}),
                    (f"hotline on {w.rasa.name}", plain, f"{w.rasa.url}/webhooks/hotline/webhook",
                     {"headers": headers, "json": {"call_id": f"{self.run_id}-warmcall{w.index}", "text": asked}}),
                    (f"operator search on {w.web.name}", staff, f"{w.web.url}/operator/api/search",
                     {"params": {"q": asked}}),
                ]  # fmt: skip
                for name, session, url, kwargs in calls:
                    started = time.monotonic()
                    try:
                        method = session.get if "params" in kwargs else session.post
                        reply = method(url, timeout=timeout, **kwargs)
                    except requests.RequestException as exc:
                        raise StartupError(f"warm-up, {name}: {exc}") from None
                    if reply.status_code != 200 or NOT_ANSWERED in reply.text:
                        raise StartupError(f"warm-up, {name}: HTTP {reply.status_code} {reply.text[:300]}")
                    if n == 0:
                        first[name] = round(time.monotonic() - started, 2)
                        say(f"warm-up, {name}: first answer in {first[name]:.1f} s")
        return first

    def stop(self, grace: float = 15) -> list[str]:
        """Stop every server: SIGTERM to its main process, then to what is left of its group, then SIGKILL.

        The main process goes first because it stops its own children in order (the action server's
        Sanic manager fails noisily when its helper processes die before it does).

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
        for server in wait_for_groups(grace):
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
        import redis

        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            keys = list(client.scan_iter(match=f"*{self.run_id}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            return len(keys)
        except redis.RedisError as exc:  # cleaning up must not hide the results
            say(f"could not delete this run's Redis keys ({exc}); they all contain {self.run_id}")
            return 0
