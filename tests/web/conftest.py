"""Fixtures of the web app's tests: the app on a FAKE embedder and FAKE dialogue relay, and signed-in staff."""

from __future__ import annotations

import re

import pytest

from web_widget import create_app

PASSWORD = "correct-horse-battery"


class FakeRelay:
    """Records what would go to Rasa and answers like its web channel."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict] = []
        self.fail = fail

    def send(self, body):
        if self.fail:
            raise ConnectionError("Rasa is down")
        self.sent.append(body)
        return [
            {"text": "<script>alert(1)</script>答案", "buttons": [{"title": "有用", "payload": "/feedback_useful"}]}
        ]


@pytest.fixture
def relay():
    return FakeRelay()


@pytest.fixture
def app(settings, fake_kb, relay):
    """The whole web app over the fake knowledge base of tests/conftest.py (its SQLite database)."""
    return create_app(settings, kb=fake_kb, relay=relay)


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(client, path: str = "/staff/login") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    html = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(app, role: str, username: str | None = None):
    """A new test client signed in as a new user with ``role``; its CSRF token is ``client.csrf``."""
    from web_widget.services import Services

    services: Services = app.extensions["hotline"]
    username = username or f"{role}1"
    try:
        services.accounts.user(username)
    except Exception:
        services.accounts.create_user(username, PASSWORD, role, display_name=f"测试{role}", actor="test")
    client = app.test_client()
    token = csrf_of(client)
    reply = client.post("/staff/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    client.csrf = token  # type: ignore[attr-defined]
    return client


@pytest.fixture
def operator_client(app):
    return sign_in(app, "operator")


@pytest.fixture
def editor_client(app):
    return sign_in(app, "editor")


@pytest.fixture
def reviewer_client(app):
    return sign_in(app, "reviewer")


@pytest.fixture
def admin_client(app):
    return sign_in(app, "admin")
