"""`hotline bench dialogue` end to end: its own action server and Rasa on a tiny knowledge base,
every question through the web channel, the counts on the last stdout line, no server left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from knowledge_base.transfer import read_entries, write_entries
from tests.conftest import REPO

pytestmark = [pytest.mark.dialogue, pytest.mark.slow]

SAMPLE = REPO / "knowledge_base" / "sample" / "guangdong_kb.yaml"


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_five_questions_through_the_bot(model_dir, tmp_path):
    entries = read_entries(SAMPLE)[:5]
    kb_file = tmp_path / "kb.jsonl"
    write_entries(entries, kb_file)
    queries = tmp_path / "queries.jsonl"
    # Each entry asked by one of its own similar questions: answerable, not word for word the standard question.
    queries.write_text(
        "".join(
            json.dumps({"query": (e.similar_questions or (e.question,))[0], "gold_id": e.key}, ensure_ascii=False)
            + "\n"
            for e in entries
        ),
        encoding="utf-8",
    )
    details = tmp_path / "details.jsonl"
    env = {**os.environ, "HOTLINE_CONFIG": str(REPO / "config.yml"), "HOTLINE_MODEL_DIR": str(model_dir)}
    env.pop("HOTLINE_REDIS_URL", None)
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "hotline"),
            "bench",
            "dialogue",
            "--kb",
            str(kb_file),
            "--queries",
            str(queries),
            "--json",
            "--details",
            str(details),
            "--concurrency",
            "2",
        ],
        env=env,
        cwd=tmp_path,  # the command finds its checkout by itself
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    outcomes = (
        "answered_right",
        "answered_wrong",
        "offered_right",
        "offered_wrong",
        "asked_region",
        "kb_no_answer",
        "turned_away",
        "errors",
    )
    assert report["questions"] == 5
    assert sum(report[o] for o in outcomes) == 5, report
    assert report["turned_away"] == sum(report["turned_away_kinds"].values())
    assert report["errors"] == 0, report["error_kinds"]
    assert report["answered_right"] >= 1, report
    assert report["p50_ms"] > 0 and report["machine"]["cores"]
    lines = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert [line["gold"] for line in lines] == [e.key for e in entries]
    assert {"query", "outcome", "entry_key", "offered", "texts", "ms"} <= set(lines[0])
    # Both servers were stopped with the command.
    assert not any(listening(port) for port in report["ports"].values()), report["ports"]
    assert "answered, right entry" in done.stderr  # the table, for people
