"""The chat widget's routes with Flask's test client; the dialogue behind is a FAKE relay (named as such)."""

from __future__ import annotations

import pytest

from tests.web.conftest import FakeRelay
from web_widget import create_app

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("path", ["/chat", "/demo", "/static/hotline-widget.js", "/static/chat.js", "/static/chat.css"])
def test_pages_and_assets_are_served_by_the_app_with_a_csp(client, path):
    reply = client.get(path)
    assert reply.status_code == 200
    assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
    assert "cdn" not in reply.get_data(as_text=True).lower()


def test_demo_embeds_the_widget_with_one_script_tag(client):
    html = client.get("/demo").get_data(as_text=True)
    assert '<script src="/static/hotline-widget.js"' in html and "&lt;iframe src=" in html  # tag, iframe fallback


def test_chat_page_is_accessible(client):
    html = client.get("/chat").get_data(as_text=True)
    assert 'lang="zh-CN"' in html and 'role="log"' in html and 'aria-live="polite"' in html
    assert '<label for="question"' in html and 'aria-pressed="false"' in html


def test_message_is_relayed_with_region_and_answer_passed_through(client, relay):
    reply = client.post("/api/chat", json={"sender": "s-1", "message": "  社保卡  丢了 ", "region": "深圳"})
    assert reply.status_code == 200
    assert relay.sent == [{"sender": "s-1", "message": "社保卡 丢了", "metadata": {"region": "深圳"}}]
    assert reply.json["messages"][0]["buttons"][0]["title"] == "有用"


def test_long_message_is_cut(client, relay):
    client.post("/api/chat", json={"sender": "s-1", "message": "问" * 10_000})
    assert len(relay.sent[0]["message"]) == 2000


@pytest.mark.parametrize(
    "body",
    [
        None,
        [1],
        {"message": "hi"},
        {"sender": "a b", "message": "hi"},
        {"sender": "s", "message": 5},
        {"sender": "s", "payload": "javascript:alert(1)"},
        {"sender": "s"},
    ],
)
def test_bad_requests_get_400_with_a_reason(client, relay, body):
    reply = client.post("/api/chat", json=body) if body is not None else client.post("/api/chat", data="{x")
    assert reply.status_code == 400 and reply.json["error"]
    assert relay.sent == []


def test_oversized_body_is_refused(client):
    assert client.post("/api/chat", data="x" * 100_000, content_type="application/json").status_code == 413


def test_dialogue_down_gives_a_polite_reply(settings):
    client = create_app(settings, relay=FakeRelay(fail=True)).test_client()
    reply = client.post("/api/chat", json={"sender": "s-1", "message": "社保"})
    assert reply.status_code == 200 and "12345" in reply.json["messages"][0]["text"]
