"""``hotline supervise`` and ``hotline doctor`` on real stand-in servers: a killed server is restarted with
backoff, a stopped (SIGSTOP, i.e. hung) one is noticed, killed and restarted, stopping ends every process
group, and the doctor reports a hung server as failed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline import doctor
from hotline.doctor import Level
from hotline.supervise import Server, Supervisor, _describe
from tests.unit.test_doctor import free_port

pytestmark = pytest.mark.unit

# A stand-in action server: {"status": "ok"} on every GET, one process.
HEALTH = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def stand_in(tmp_path: Path, name: str) -> tuple[Server, int]:
    port = free_port()
    server = Server(
        name,
        [sys.executable, "-c", HEALTH, str(port)],
        dict(os.environ),
        tmp_path / f"{name}.log",
        f"http://127.0.0.1:{port}/health",
        start_seconds=20,
        warm_seconds=0,
    )
    return server, port


@pytest.fixture
def supervised(tmp_path) -> Iterator[tuple[Supervisor, io.StringIO, dict[str, int]]]:
    servers = dict(stand_in(tmp_path, name) for name in ("a", "b"))
    out = io.StringIO()
    sup = Supervisor(list(servers), hung_after=3, probe_timeout=1, state_file=tmp_path / "state.json", say=out)
    thread = threading.Thread(target=sup.run)
    thread.start()
    yield sup, out, {s.name: port for s, port in servers.items()}
    sup.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def state(sup: Supervisor) -> dict:
    assert sup.state_file is not None
    until(sup.state_file.exists, 10)  # written once every server has been started
    return json.loads(sup.state_file.read_text())


def until(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_server_is_restarted_and_the_other_keeps_serving(supervised):
    sup, out, _ = supervised
    until(lambda: all(s["ready"] for s in state(sup).values()), 20)
    a, b = state(sup)["a"]["pid"], state(sup)["b"]["pid"]
    os.kill(a, signal.SIGKILL)
    until(lambda: state(sup)["a"]["restarts"] == 1 and state(sup)["a"]["ready"], 20)
    assert state(sup)["a"]["pid"] != a and state(sup)["b"] == {**state(sup)["b"], "pid": b, "restarts": 0}
    assert "a exited (killed by SIGKILL); restart 1 in 1 s" in out.getvalue()
    # Killed again at once: the wait doubles.
    os.kill(state(sup)["a"]["pid"], signal.SIGKILL)
    until(lambda: "restart 2 in 2 s" in out.getvalue(), 10)


def test_a_hung_server_is_killed_and_restarted(supervised):
    sup, out, ports = supervised
    until(lambda: all(s["ready"] for s in state(sup).values()), 20)
    hung = state(sup)["b"]["pid"]
    os.kill(hung, signal.SIGSTOP)  # the port stays open, nothing answers
    # doctor sees it as failed, not as "something else on the port"
    check = doctor.check_action_port(ports["b"], timeout=1)
    assert check.level is Level.FAIL and "hung" in check.detail, check
    until(lambda: state(sup)["b"]["restarts"] == 1 and state(sup)["b"]["ready"], 25)
    assert "b did not answer its health check for" in out.getvalue()
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)
    assert doctor.check_action_port(ports["b"], timeout=1).level is Level.OK


def test_stopping_ends_every_server(tmp_path):
    server, _ = stand_in(tmp_path, "only")
    sup = Supervisor([server], state_file=tmp_path / "state.json", say=io.StringIO())
    thread = threading.Thread(target=sup.run)
    thread.start()
    until(lambda: state(sup)["only"]["ready"], 20)
    pid = state(sup)["only"]["pid"]
    sup.stop()
    thread.join(timeout=20)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert state(sup)["only"]["pid"] is None


def test_doctor_reports_hung_rasa_and_web_as_failed(tmp_path):
    server, port = stand_in(tmp_path, "x")
    proc = subprocess.Popen(server.command)
    try:
        until(lambda: "is running" in doctor.check_action_port(port, timeout=1).detail, 20)
        os.kill(proc.pid, signal.SIGSTOP)
        for check in (
            doctor.check_rasa_port("127.0.0.1", port, timeout=1),
            doctor.check_web_port("127.0.0.1", port, timeout=1),
        ):
            assert check.level is Level.FAIL and "did not answer within 1 s: the server is hung" in check.detail
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("code", "said"),
    [(-9, "killed by SIGKILL"), (137, "exit status 137: its server was killed by SIGKILL"), (1, "exit status 1")],
)
def test_exits_are_described_in_plain_words(code, said):
    assert _describe(code) == said
