"""A Rasa model file that is cut short or garbage is detected (and then retrained by `bot.sh rasa`), never served."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

MODEL = REPO / "bot" / "models" / "hotline.tar.gz"


def _check(model) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "bot.sh"), "check"],
        env={**os.environ, "HOTLINE_RASA_MODEL": str(model)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_intact_model_passes_and_damaged_ones_are_caught(tmp_path):
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `bash scripts/setup-rasa.sh` (scripts/test.sh does)")
    intact = tmp_path / "intact.tar.gz"
    shutil.copyfile(MODEL, intact)
    assert _check(intact).returncode == 0
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(MODEL.read_bytes()[: MODEL.stat().st_size // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b not really a model")
    for damaged in (cut, garbage, tmp_path / "missing.tar.gz"):
        result = _check(damaged)
        assert result.returncode == 1 and "missing or corrupt" in result.stderr
