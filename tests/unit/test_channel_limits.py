"""The Rasa channels' rate limit and client address (bot/channels/limits.py: standard library only)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from bot.channels.limits import ChannelLimiter, client_address, setting

pytestmark = pytest.mark.unit


def allowed(limiter: ChannelLimiter, key: str, times: int) -> list[bool]:
    return [asyncio.run(limiter.allow(key)) for _ in range(times)]


def test_each_key_gets_its_limit_per_minute():
    now = [120.0]
    limiter = ChannelLimiter(2, clock=lambda: now[0])
    assert allowed(limiter, "chat:1.2.3.4", 3) == [True, True, False]
    assert allowed(limiter, "chat:5.6.7.8", 1) == [True]
    now[0] += 60  # the next minute starts afresh
    assert allowed(limiter, "chat:1.2.3.4", 1) == [True]


def test_zero_is_no_limit():
    assert all(allowed(ChannelLimiter(0), "chat:x", 100))


def test_redis_down_counts_in_this_worker():
    limiter = ChannelLimiter(1, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert allowed(limiter, "chat:x", 2) == [True, False]


def request(ip: str, forwarded: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(ip=ip, headers={"X-Forwarded-For": forwarded} if forwarded is not None else {})


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "10.0.0.2"),  # not believed without trusted proxies
        (1, "9.9.9.9, 203.0.113.7", "203.0.113.7"),  # the nearest proxy's entry, not the client's own
        (2, "203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.7", "10.0.0.2"),  # fewer entries than proxies: not believed
        (1, None, "10.0.0.2"),
    ],
)
def test_client_address(hops, forwarded, expected):
    assert client_address(request("10.0.0.2", forwarded), hops) == expected


@pytest.mark.parametrize(("raw", "expected"), [(None, 30), ("", 30), ("0", 0), (" 12 ", 12), (5, 5)])
def test_setting_from_credentials(raw, expected):
    assert setting({"rate_limit_per_minute": raw}, "rate_limit_per_minute", 30) == expected


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5"])
def test_bad_setting_is_refused_with_its_name(raw):
    with pytest.raises(ValueError, match="rate_limit_per_minute"):
        setting({"rate_limit_per_minute": raw}, "rate_limit_per_minute", 30)
