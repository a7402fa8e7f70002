"""`rasa test nlu` on the held-out NLU set and `rasa test core` on the conversation tests in bot/tests/."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

RASA = str(REPO / ".venv-rasa" / "bin" / "rasa")


def rasa(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RASA, *args],
        cwd=REPO / "bot",
        env={**env, "PYTHONPATH": f"{REPO / 'bot'}{os.pathsep}{REPO}"},  # as scripts/bot.sh sets it
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_intent_accuracy_on_held_out_nlu(stack, tmp_path):
    out = tmp_path / "nlu"
    result = rasa(
        "test",
        "nlu",
        "--nlu",
        "tests/nlu_heldout.yml",
        "--model",
        "models/hotline.tar.gz",
        "--out",
        str(out),
        env=stack["env"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "intent_report.json").read_text())
    print(f"held-out intent accuracy {report['accuracy']:.3f}, macro F1 {report['macro avg']['f1-score']:.3f}")
    # Target of the dialogue issue: >= 0.90 on the held-out set.
    assert report["accuracy"] >= 0.90, {k: v for k, v in report.items() if isinstance(v, dict) and "f1-score" in v}


def test_conversation_tests_pass(stack, tmp_path):
    out = tmp_path / "core"
    result = rasa(
        "test",
        "core",
        "--stories",
        "tests/test_stories.yml",
        "--model",
        "models/hotline.tar.gz",
        "--endpoints",
        "endpoints.yml",
        "--out",
        str(out),
        env=stack["env_of"]["rasa"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failed = (out / "failed_test_stories.yml").read_text()
    assert "None of the test stories failed" in failed, failed
