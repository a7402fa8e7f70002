"""Keeps hotline-qa's servers running: each one that exits or stops answering is restarted, with backoff.

``bash scripts/run.sh`` runs ``hotline supervise``: the action servers, the Rasa workers and the web
workers, each one process in its own process group. Every second the supervisor looks at each:

- a server that exited (crashed, killed by the out-of-memory killer) is started again after 1 s, then
  2, 4 … up to 30 s while it keeps failing (back to 1 s once it has served for a minute);
- a server whose health check has not answered for ``hung_after`` seconds (a hung process, or one
  stopped with SIGSTOP) is killed with its process group and started again the same way; except in
  its first ``warm_seconds`` of service, while it loads its model (an action server answers /health
  first and is then warmed up: on a busy host the loading may starve its event loop for a while);
- the others keep serving meanwhile. Every event is one plain line on stderr with the restart count,
  and ``state.json`` in the log folder says which process serves what (``hotline doctor``, tests).

SIGINT (Ctrl-C) or SIGTERM stops every server's process group, then the supervisor.

Example::

    hotline supervise --workers 2     # two of each on 5055/5056, 5005/5006 and web_port, web_port + 1
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
READY_FOR_RESET = 60.0  # seconds of service after which the backoff starts again at 1 s


@dataclass(frozen=True, eq=False)
class Server:
    """One server to keep running.

    Args:
        name: how the logs call it, e.g. ``rasa-0``.
        command: the program and its arguments.
        env: its whole environment.
        log: file its output is appended to.
        health: URL of its health check; any HTTP answer means alive (a 503 about Redis is not cured
            by a restart).
        start_seconds: how long it may take to answer for the first time after a (re)start.
        warm_seconds: how long after its first answer a silence is taken for loading, not a hang.
    """

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    log: Path
    health: str
    start_seconds: float = 120.0
    warm_seconds: float = 10.0


@dataclass
class _Running:
    server: Server
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready_at: float | None = None
    last_answer: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    start_at: float = 0.0  # when a stopped server is due to start
    history: list[dict[str, Any]] = field(default_factory=list)


def answers(url: str, timeout: float) -> bool:
    """Whether ``url`` gives any HTTP answer within ``timeout`` seconds."""
    import requests

    try:
        requests.get(url, timeout=timeout)
    except requests.RequestException:
        return False
    return True


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode > 128:  # a shell whose server was killed
        try:
            return f"exit status {returncode}: its server was killed by {signal.Signals(returncode - 128).name}"
        except ValueError:
            pass
    return f"exit status {returncode}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The child gets SIGTERM should the supervisor itself be killed: no orphans holding ports."""
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    """Runs ``servers`` until :meth:`stop`; see the module's description.

    Args:
        servers: what to run.
        hung_after: seconds without an answer to the health check after which a server is restarted.
        probe_timeout: seconds one health check may take.
        max_backoff: longest wait before a restart.
        state_file: where the current processes are written as JSON (None: nowhere).
        say: where the log lines go.
        probe: the health check (replaced in tests).
    """

    def __init__(
        self,
        servers: Sequence[Server],
        *,
        hung_after: float = 6.0,
        probe_timeout: float = 2.0,
        max_backoff: float = 30.0,
        state_file: Path | None = None,
        say: IO[str] | None = None,
        probe: Callable[[str, float], bool] = answers,
    ) -> None:
        if hung_after <= probe_timeout:
            raise ValueError(f"hung_after ({hung_after}) must be longer than probe_timeout ({probe_timeout})")
        self.running = [_Running(s) for s in servers]
        self.hung_after = hung_after
        self.probe_timeout = probe_timeout
        self.max_backoff = max_backoff
        self.state_file = state_file
        self.out = say or sys.stderr
        self.probe = probe
        self._stop = threading.Event()

    def log(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervise: {text}", file=self.out, flush=True)

    def stop(self) -> None:
        """Ask :meth:`run` to stop every server and return."""
        self._stop.set()

    # -- one server --------------------------------------------------------------

    def _start(self, r: _Running) -> None:
        s = r.server
        s.log.parent.mkdir(parents=True, exist_ok=True)
        with s.log.open("ab") as out:
            r.proc = subprocess.Popen(
                list(s.command),
                env=dict(s.env),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # setsid + parent-death signal, nothing else
            )
        r.started = r.last_answer = time.monotonic()
        r.ready_at = None
        again = f" (restart {r.restarts})" if r.restarts else ""
        self.log(f"started {s.name}{again}, pid {r.proc.pid}, log {s.log}")

    def _kill(self, r: _Running, sig: int = signal.SIGKILL) -> None:
        if r.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.proc.pid, sig)

    def _restart_later(self, r: _Running, why: str) -> None:
        now = time.monotonic()
        if r.ready_at is not None and now - r.ready_at >= READY_FOR_RESET:
            r.backoff = 1.0
        r.restarts += 1
        r.history.append({"at": time.time(), "why": why})
        self.log(f"{r.server.name} {why}; restart {r.restarts} in {r.backoff:g} s (the other servers keep serving)")
        r.proc, r.ready_at, r.start_at = None, None, now + r.backoff
        r.backoff = min(r.backoff * 2, self.max_backoff)

    def _check(self, r: _Running, answered: bool) -> None:
        assert r.proc is not None
        now = time.monotonic()
        code = r.proc.poll()
        if code is not None:
            self._kill(r)  # whatever it left behind in its group
            self._restart_later(r, f"exited ({_describe(code)})")
            return
        if answered:
            r.last_answer = now
            if r.ready_at is None:
                r.ready_at = now
                self.log(f"{r.server.name} is serving (pid {r.proc.pid}, ready {now - r.started:.0f} s after start)")
            return
        warming = r.ready_at is not None and now - r.ready_at < r.server.warm_seconds
        if r.ready_at is not None and now - r.last_answer >= self.hung_after and not warming:
            why = f"did not answer its health check for {now - r.last_answer:.0f} s (hung)"
        elif r.ready_at is None and now - r.started >= r.server.start_seconds:
            why = f"did not become ready within {r.server.start_seconds:.0f} s"
        else:
            return
        self._kill(r)
        with contextlib.suppress(subprocess.TimeoutExpired):
            r.proc.wait(timeout=5)
        self._restart_later(r, f"{why}: killed")

    # -- the loop ----------------------------------------------------------------

    def run(self) -> None:
        """Start every server, watch them until :meth:`stop`, then stop them all."""
        for r in self.running:
            self._start(r)
        self._write_state()
        with ThreadPoolExecutor(max_workers=max(1, len(self.running)), thread_name_prefix="probe") as pool:
            while not self._stop.wait(1.0):
                alive = [r for r in self.running if r.proc is not None]
                results = pool.map(lambda r: self.probe(r.server.health, self.probe_timeout), alive)
                for r, answered in zip(alive, results, strict=True):
                    self._check(r, answered)
                now = time.monotonic()
                for r in self.running:
                    if r.proc is None and now >= r.start_at and not self._stop.is_set():
                        self._start(r)
                self._write_state()
        self._stop_all()

    def _stop_all(self, grace: float = 10.0) -> None:
        running = [r for r in self.running if r.proc is not None and r.proc.poll() is None]
        self.log(f"stopping {len(running)} server(s)")
        for r in running:
            self._kill(r, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for r in running:
            assert r.proc is not None
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{r.server.name} did not stop within {grace:g} s: killed")
            self._kill(r)  # the rest of its group (bash's children), if any
            r.proc = None
        self._write_state()
        self.log("all servers stopped")

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = {
            r.server.name: {
                "pid": r.proc.pid if r.proc is not None and r.proc.poll() is None else None,
                "ready": r.ready_at is not None,
                "restarts": r.restarts,
                "health": r.server.health,
                "log": str(r.server.log),
            }
            for r in self.running
        }
        aside = self.state_file.with_suffix(".tmp")
        aside.write_text(json.dumps(state, indent=1))
        aside.replace(self.state_file)


def local_address(host: str) -> str:
    """Where a client on this host reaches a server listening on ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def standard_servers(
    *,
    workers: int,
    environ: Mapping[str, str],
    rasa_host: str,
    action_host: str,
    action_port: int,
    rasa_port: int,
    web_port: int,
    log_dir: Path,
) -> list[Server]:
    """The servers ``scripts/run.sh`` runs: per worker i an action server, a Rasa worker calling it and a
    web worker relaying to that Rasa, on consecutive ports."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    rasa_at, action_at = local_address(rasa_host), local_address(action_host)
    hotline = str(Path(sys.executable).with_name("hotline"))
    servers = []
    for i in range(workers):
        a, r, w = action_port + i, rasa_port + i, web_port + i
        servers += [
            Server(
                f"actions-{i}",
                ["bash", str(ROOT / "scripts" / "bot.sh"), "actions"],
                {**environ, "HOTLINE_ACTION_PORT": str(a)},
                log_dir / f"actions-{i}.log",
                f"http://{action_at}:{a}/health",
            ),
            Server(
                f"rasa-{i}",
                ["bash", str(ROOT / "scripts" / "bot.sh"), "rasa"],
                {**environ, "HOTLINE_RASA_PORT": str(r), "HOTLINE_ACTION_URL": f"http://{action_at}:{a}/webhook"},
                log_dir / f"rasa-{i}.log",
                f"http://{rasa_at}:{r}/webhooks/web/",  # our channel's open health route
                start_seconds=300.0,  # Rasa loads its model before it listens
            ),
            Server(
                f"web-{i}",
                [hotline, "web", "--port", str(w)],
                {**environ, "HOTLINE_RASA_URL": f"http://{rasa_at}:{r}"},
                log_dir / f"web-{i}.log",
                f"http://127.0.0.1:{w}/healthz",
            ),
        ]
    return servers


def serve_forever(supervisor: Supervisor) -> None:
    """Run ``supervisor`` in this thread until SIGINT or SIGTERM."""

    def on_signal(signum: int, _frame: object) -> None:
        supervisor.log(f"{signal.Signals(signum).name} received")
        supervisor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor.run()
