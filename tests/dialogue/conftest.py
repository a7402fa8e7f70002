"""A live dialogue stack for the tests: the real action server (Python 3.11) and the real Rasa 3.6
server (Python 3.10, trained model), sharing a real Redis tracker store, answering from the sample KB."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO

SECRET = "test-gateway-secret-0123456789"
# Rasa's HTTP API (/status, trackers) needs its token. The action secret is in the environment too, for
# `rasa test core --endpoints endpoints.yml`; the relay secret is made in the stack's data folder by
# scripts/bot.sh, as on a fresh installation, and read from there by the web app.
RASA_TOKEN = "test-rasa-api-token-0123456789"
ACTION_SECRET = "test-action-secret-0123456789"
MODEL = REPO / "bot" / "models" / "hotline.tar.gz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, seconds: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"{what} not ready after {seconds}s:\n{log.read_text()[-3000:]}")


class PrivateRedis:
    """A redis-server of the tests' own on a free port, so a test may stop and restart it."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        server = shutil.which("redis-server")
        if server is None:
            pytest.fail("redis-server is needed for the dialogue tests (Debian package redis-server)")
        self.proc = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_client(private_redis):
    import redis

    return redis.Redis(port=private_redis.port)


def start_server(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, cwd=REPO, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


@pytest.fixture(scope="session")
def stack(model_dir, tmp_path_factory, private_redis) -> Iterator[dict]:
    """Two action servers and two Rasa workers (each on its own action server) sharing one Redis.

    Yields their URLs, the data folder, the environment, the processes and their logs.
    """
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `bash scripts/setup-rasa.sh` (tests/README: scripts/test.sh does)")
    data = tmp_path_factory.mktemp("dialogue-data")
    env = {
        **os.environ,
        "HOTLINE_CONFIG": str(REPO / "config.yml"),
        "HOTLINE_DATA_DIR": str(data),
        "HOTLINE_MODEL_DIR": str(model_dir),
        "HOTLINE_GATEWAY_SECRET": SECRET,
        "HOTLINE_RASA_TOKEN": RASA_TOKEN,
        "HOTLINE_ACTION_SECRET": ACTION_SECRET,
        "HOTLINE_REDIS_URL": private_redis.url,
        "HOTLINE_RATE_LIMIT_PER_MINUTE": "0",
    }
    env.pop("HOTLINE_REDIS_HOST", None)
    # The knowledge base and its index are made before the servers start, as `hotline setup` does.
    subprocess.run([str(REPO / ".venv" / "bin" / "hotline"), "setup"], env=env, check=True, capture_output=True)
    ports = {name: free_port() for name in ("actions", "actions2", "rasa", "rasa2")}
    env_of = {
        "actions": {**env, "HOTLINE_ACTION_PORT": str(ports["actions"])},
        "actions2": {**env, "HOTLINE_ACTION_PORT": str(ports["actions2"])},
        "rasa": {
            **env,
            "HOTLINE_RASA_PORT": str(ports["rasa"]),
            "HOTLINE_ACTION_URL": f"http://127.0.0.1:{ports['actions']}/webhook",
        },
        "rasa2": {
            **env,
            "HOTLINE_RASA_PORT": str(ports["rasa2"]),
            "HOTLINE_ACTION_URL": f"http://127.0.0.1:{ports['actions2']}/webhook",
        },
    }
    logs = {name: data / f"{name}.log" for name in env_of}
    procs = {
        name: start_server(["bash", str(REPO / "scripts" / "bot.sh"), name.rstrip("2")], proc_env, logs[name])
        for name, proc_env in env_of.items()
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        for name in ("actions", "actions2"):
            wait_until(
                lambda name=name: requests.get(f"{urls[name]}/health", timeout=2).ok,
                120,
                f"action server {name}",
                procs[name],
                logs[name],
            )
        for name in ("rasa", "rasa2"):
            wait_until(
                lambda name=name: (
                    requests.get(f"{urls[name]}/status", params={"token": RASA_TOKEN}, timeout=2).json().get("model_id")
                ),
                300,
                f"Rasa server {name}",
                procs[name],
                logs[name],
            )
        yield {**urls, "data": data, "logs": logs, "env": env, "env_of": env_of, "procs": procs}
    finally:
        for proc in procs.values():
            stop_server(proc)


class Chat:
    """One citizen on the web channel."""

    def __init__(self, base: str, sender: str, region: str | None = None) -> None:
        self.url = f"{base}/webhooks/web/webhook"
        self.sender = sender
        self.region = region

    def say(self, text: str | None = None, *, payload: str | None = None) -> list[dict]:
        body: dict = {"sender": self.sender}
        if payload is not None:
            body["payload"] = payload
        else:
            body["message"] = text
        if self.region:
            body["metadata"] = {"region": self.region}
        reply = requests.post(self.url, json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()["messages"]


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def buttons(messages: list[dict]) -> list[dict]:
    return [b for m in messages for b in m.get("buttons", [])]


def customs(messages: list[dict]) -> list[dict]:
    return [m["custom"] for m in messages if "custom" in m]


@pytest.fixture(scope="module")
def web(stack, model_dir):
    """The web app (widget, console, admin) on the stack's data, relaying to its first Rasa worker."""
    from knowledge_base.settings import load_settings
    from tests.browser import serve
    from web_widget import create_app

    settings = load_settings(
        REPO / "config.yml",
        environ={},
        rasa_url=stack["rasa"],
        data_dir=str(stack["data"]),
        model_dir=str(model_dir),
        rate_limit_per_minute=0,
    )
    app = create_app(settings)
    yield from serve(app)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from tests.browser import start_chromium

    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()
