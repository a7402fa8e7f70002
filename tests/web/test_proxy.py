"""Behind reverse proxies (trusted_proxies): whose address the rate limit and the audit log see."""

from __future__ import annotations

import dataclasses

import pytest

from tests.web.conftest import PASSWORD, FakeRelay, csrf_of
from web_widget import create_app

pytestmark = pytest.mark.unit


def make_app(settings, fake_kb, hops: int):
    settings = dataclasses.replace(settings, trusted_proxies=hops, rate_limit_per_minute=2)
    return create_app(settings, kb=fake_kb, relay=FakeRelay())


def chat(client, forwarded_for: str) -> int:
    reply = client.post(
        "/api/chat",
        json={"sender": "s1", "message": "你好"},
        headers={"X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},  # the proxy
    )
    return reply.status_code


def test_one_trusted_hop_limits_each_forwarded_client(settings, fake_kb):
    client = make_app(settings, fake_kb, 1).test_client()
    # The proxy appends the address it saw; what the client wrote before it is not believed.
    assert [chat(client, "1.1.1.1, 203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert chat(client, "203.0.113.8") == 200  # another citizen behind the same proxy
    assert chat(client, "9.9.9.9, 203.0.113.7") == 429  # a forged first hop does not escape the limit


def test_without_trusted_proxies_the_header_is_ignored(settings, fake_kb):
    client = make_app(settings, fake_kb, 0).test_client()
    assert [chat(client, f"203.0.113.{i}") for i in range(3)] == [200, 200, 429]


@pytest.mark.parametrize(("hops", "expected"), [(1, "203.0.113.7"), (0, "10.0.0.2")])
def test_audit_log_records_the_address_trusted_proxies_allow(settings, fake_kb, hops, expected):
    app = make_app(settings, fake_kb, hops)
    accounts = app.extensions["hotline"].accounts
    accounts.create_user("proxy-admin", PASSWORD, "admin", display_name="测试", actor="test")
    client = app.test_client()
    token = csrf_of(client)
    reply = client.post(
        "/staff/login",
        data={"username": "proxy-admin", "password": PASSWORD, "csrf_token": token},
        headers={"X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert reply.status_code == 302
    logins = [row for row in accounts.audit_log(actor="proxy-admin") if row["action"] == "login"]
    assert logins and logins[0]["ip"] == expected
