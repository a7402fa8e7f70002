"""``hotline config --get``: one effective value, as scripts/bot.sh reads redis_url."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hotline.cli import main

pytestmark = pytest.mark.unit


def test_get_prints_the_effective_value(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("redis_url: redis://127.0.0.1:6379/3\n")
    run = CliRunner().invoke
    assert run(
        main, ["--config", str(config), "config", "--get", "redis_url"], env={"HOTLINE_REDIS_URL": None}
    ).output == ("redis://127.0.0.1:6379/3\n")
    overridden = run(main, ["--config", str(config), "config", "--get", "redis_url"], env={"HOTLINE_REDIS_URL": ""})
    assert overridden.output == "\n"


def test_get_an_unknown_setting_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "none.yml"), "config", "--get", "redis"])
    assert result.exit_code == 2 and "unknown setting 'redis'" in result.output
