"""A live dialogue stack for the tests: the real action server (Python 3.11) and the real Rasa 3.6
server (Python 3.10, trained model), sharing a real Redis tracker store, answering from the sample KB."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO

SECRET = "test-gateway-secret-0123456789"
REDIS_DB = 13
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


@pytest.fixture(scope="session")
def redis_client():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.ping()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def stack(model_dir, tmp_path_factory, redis_client) -> Iterator[dict]:
    """Start the action server and Rasa; yield their URLs, the data folder and the action server's log."""
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `bash scripts/setup-rasa.sh` (tests/README: scripts/test.sh does)")
    data = tmp_path_factory.mktemp("dialogue-data")
    env = {
        **os.environ,
        "HOTLINE_CONFIG": str(REPO / "config.yml"),
        "HOTLINE_DATA_DIR": str(data),
        "HOTLINE_MODEL_DIR": str(model_dir),
        "HOTLINE_GATEWAY_SECRET": SECRET,
        "HOTLINE_REDIS_HOST": "127.0.0.1",
        "HOTLINE_REDIS_PORT": "6379",
        "HOTLINE_REDIS_DB": str(REDIS_DB),
    }
    # The knowledge base and its index are made before the servers start, as `hotline setup` does.
    subprocess.run([str(REPO / ".venv" / "bin" / "hotline"), "setup"], env=env, check=True, capture_output=True)
    action_port, rasa_port, rasa2_port = free_port(), free_port(), free_port()
    env["HOTLINE_ACTION_PORT"] = str(action_port)
    env["HOTLINE_RASA_PORT"] = str(rasa_port)
    env["HOTLINE_ACTION_URL"] = f"http://127.0.0.1:{action_port}/webhook"
    # A second Rasa worker on the same Redis: conversations must continue across workers.
    commands = {
        "actions": ("actions", env),
        "rasa": ("rasa", env),
        "rasa2": ("rasa", {**env, "HOTLINE_RASA_PORT": str(rasa2_port)}),
    }
    logs = {name: data / f"{name}.log" for name in commands}
    procs = {
        name: subprocess.Popen(
            ["bash", str(REPO / "scripts" / "bot.sh"), command],
            env=proc_env,
            cwd=REPO,
            stdout=logs[name].open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, (command, proc_env) in commands.items()
    }
    try:
        action_url = f"http://127.0.0.1:{action_port}"
        rasa_url, rasa2_url = f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{rasa2_port}"
        wait_until(
            lambda: requests.get(f"{action_url}/health", timeout=2).ok,
            120,
            "action server",
            procs["actions"],
            logs["actions"],
        )
        for url, name in ((rasa_url, "rasa"), (rasa2_url, "rasa2")):
            wait_until(
                lambda url=url: requests.get(f"{url}/status", timeout=2).json().get("model_id"),
                300,
                f"Rasa server {name}",
                procs[name],
                logs[name],
            )
        yield {
            "rasa": rasa_url,
            "rasa2": rasa2_url,
            "actions": action_url,
            "data": data,
            "logs": logs,
            "env": env,
            "procs": procs,
        }
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


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
