"""hotline doctor's exposure checks: where each server listens and whether its secret is in force."""

from __future__ import annotations

import dataclasses

import pytest

from hotline import doctor
from hotline.doctor import Level, Ports
from knowledge_base.settings import Settings
from tests.unit.test_doctor import ACTIONS, RASA, serve  # noqa: F401  (serve is a fixture)

pytestmark = pytest.mark.unit


def exposure(settings: Settings, *, rasa: int = 1, actions: int = 1) -> dict[str, doctor.Check]:
    ports = Ports("127.0.0.1", rasa, actions, settings.web_host, settings.web_port)
    return {c.name: c for c in doctor.check_exposure(settings, ports, timeout=0.5)}


def test_defaults_listen_on_loopback_only(tmp_path):
    checks = exposure(Settings(data_dir=str(tmp_path)))
    assert {name: c.level for name, c in checks.items()} == {
        "rasa listens": Level.OK,
        "action server listens": Level.OK,
        "web listens": Level.OK,
    }
    assert "127.0.0.1:1" in checks["rasa listens"].detail


def test_every_address_is_a_warning_with_the_setting_to_change(tmp_path):
    settings = Settings(data_dir=str(tmp_path), rasa_host="0.0.0.0", action_host="10.1.2.3", web_host="0.0.0.0")
    checks = exposure(settings)
    assert checks["rasa listens"].level is Level.WARN and "rasa_host" in checks["rasa listens"].fix
    assert checks["action server listens"].level is Level.WARN and "action_host" in checks["action server listens"].fix
    assert checks["web listens"].level is Level.WARN and "trusted_proxies" in checks["web listens"].fix
    assert exposure(dataclasses.replace(settings, trusted_proxies=1))["web listens"].level is Level.OK


def test_secret_source_is_named_never_shown(tmp_path):
    (tmp_path / "action_secret").write_text("a-secret-in-the-data-folder")
    settings = Settings(data_dir=str(tmp_path), rasa_token="a-configured-token-0123")
    checks = exposure(settings)
    assert "rasa_token (setting" in checks["rasa listens"].detail
    assert str(tmp_path / "action_secret") in checks["action server listens"].detail
    assert not any("a-secret-in" in c.detail or "a-configured" in c.detail for c in checks.values())


def test_servers_answering_without_their_secret_are_warned_about(tmp_path, serve):  # noqa: F811
    checks = exposure(Settings(data_dir=str(tmp_path)), rasa=serve(RASA), actions=serve(ACTIONS))
    assert checks["rasa token"].level is Level.WARN and "scripts/bot.sh rasa" in checks["rasa token"].fix
    assert checks["action server secret"].level is Level.WARN
