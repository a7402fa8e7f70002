"""The hotline channel's speech module loads in the Rasa environment with the path scripts/bot.sh sets."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_rasa_loads_the_channels_with_the_path_bot_sh_sets():
    rasa_python = REPO / ".venv-rasa" / "bin" / "python"
    if not rasa_python.exists():
        pytest.fail("no Rasa environment (.venv-rasa): run scripts/setup-rasa.sh (scripts/test.sh does)")
    script = (REPO / "scripts" / "bot.sh").read_text()
    assert 'PYTHONPATH="$root/bot:$root"' in script
    out = subprocess.run(
        [str(rasa_python), "-c", "import channels.speech, channels.hotline; print(channels.speech.speakable('12345'))"],
        cwd=REPO / "bot",
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "bot"), str(REPO)])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "一 二 三 四 五。"
