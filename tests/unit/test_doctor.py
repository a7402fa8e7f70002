"""``hotline doctor``: each check's pass and fail cases on temporary folders, stand-in interpreters and
local stand-in servers, and the command's table and exit status."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline import doctor
from hotline.cli import main
from hotline.doctor import Check, Level, Ports
from knowledge_base.records import Entry
from knowledge_base.search.embedder import make_embedder
from knowledge_base.search.index import PhrasingIndex
from knowledge_base.search.kb import index_manifest
from knowledge_base.settings import Settings
from knowledge_base.storage.database import open_database
from knowledge_base.storage.migrate import RELEASE_REVISION, head_revision, upgrade
from knowledge_base.storage.store import SQLStore

pytestmark = pytest.mark.unit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fake_python(path: Path, script: str) -> Path:
    """A stand-in interpreter: a shell script that ignores its arguments and runs ``script``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_failure_must_say_how_to_fix_it():
    with pytest.raises(ValueError, match="without saying how to fix it"):
        Check("x", Level.FAIL, "broken")
    assert Check("x", Level.WARN, "odd").level is Level.WARN


# -- environments ---------------------------------------------------------------------


def test_python_env_missing(tmp_path):
    check = doctor.check_python_env(tmp_path)
    assert check.level is Level.FAIL and check.fix == "bash scripts/setup-env.sh"
    assert ".venv/bin/python is missing" in check.detail


@pytest.mark.parametrize(
    ("script", "level", "detail"),
    [
        ("printf '3.11.7\\n\\n'", Level.OK, "Python 3.11.7"),
        ("printf '3.10.2\\n\\n'", Level.FAIL, "needs 3.11"),
        ("printf '3.11.7\\nfaiss redis\\n'", Level.FAIL, "lacks: faiss redis"),
        ("echo 'ImportError: broken' >&2; exit 1", Level.FAIL, "does not run: ImportError: broken"),
    ],
)
def test_python_env(tmp_path, script, level, detail):
    fake_python(tmp_path / ".venv" / "bin" / "python", script)
    check = doctor.check_python_env(tmp_path)
    assert check.level is level and detail in check.detail


def test_rasa_env_missing_or_broken_or_fine(tmp_path):
    assert doctor.check_rasa_env(tmp_path).fix == "bash scripts/setup-rasa.sh"
    python = tmp_path / ".venv-rasa" / "bin" / "python"
    fake_python(python, "echo \"ModuleNotFoundError: No module named 'rasa'\" >&2; exit 1")
    check = doctor.check_rasa_env(tmp_path)
    assert check.level is Level.FAIL and "No module named 'rasa'" in check.detail
    fake_python(python, "echo '3.6.21 3.10.13'")
    check = doctor.check_rasa_env(tmp_path)
    assert check.level is Level.OK and check.detail.startswith("Rasa 3.6.21 on Python 3.10.13")


def test_rasa_env_that_hangs_is_reported(tmp_path):
    fake_python(tmp_path / ".venv-rasa" / "bin" / "python", "sleep 5")
    check = doctor.check_rasa_env(tmp_path, timeout=0.2)
    assert check.level is Level.FAIL and "did not answer" in check.detail


# -- model, database, index --------------------------------------------------------------


def test_model_not_built(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"))
    check = doctor.check_model(settings)
    assert (check.level, check.fix) == (Level.FAIL, "hotline model build")
    settings.model_path.mkdir(parents=True)
    (settings.model_path / "config.json").write_text("{}")
    check = doctor.check_model(settings)
    assert (check.level, check.fix) == (Level.FAIL, "hotline model build --force")
    assert "incomplete" in check.detail


def test_model_dir_without_a_model(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"), model_dir=str(tmp_path))
    check = doctor.check_model(settings)
    assert check.level is Level.FAIL and "holds no sentence-transformers model" in check.detail
    (tmp_path / "modules.json").write_text("[]")
    check = doctor.check_model(settings, load=False)
    assert check.level is Level.FAIL and "no ONNX export" in check.detail and "hotline model build" in check.fix
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"graph")
    # A graph without its export record (weights, trimmed tokenizer, format): exported again by the fix.
    check = doctor.check_model(settings, load=False)
    assert check.level is Level.WARN and "older format" in check.detail and check.fix.startswith("hotline model build")
    assert doctor.check_model(dataclasses.replace(settings, embedder="torch"), load=False).level is Level.OK


def test_database_missing_empty_and_filled(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"))
    check, version = doctor.check_database(settings)
    assert (check.level, check.fix, version) == (Level.FAIL, "hotline setup", None)
    assert not settings.sqlite_path.exists(), "the doctor must not create a database"
    store = SQLStore(settings.sqlite_path)
    check, version = doctor.check_database(settings)
    assert (check.level, version) == (Level.WARN, 0)
    store.add(Entry(question="社保卡怎么补办", answer="带身份证。"), author="t")
    store.close()
    check, version = doctor.check_database(settings)
    assert (check.level, version) == (Level.OK, 1)
    assert "1 entries, KB version 1" in check.detail
    assert f"schema revision {head_revision()} (latest)" in check.detail


def test_database_behind_or_ahead_of_the_code(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"))
    db = open_database(settings.sqlite_path)
    upgrade(db, RELEASE_REVISION)  # as `hotline db upgrade` of an older hotline-qa left it
    check, version = doctor.check_database(settings)
    assert (check.level, check.fix, version) == (Level.FAIL, "hotline db upgrade", None)
    assert f"schema revision {RELEASE_REVISION}, behind" in check.detail
    upgrade(db)
    db.execute("UPDATE alembic_version SET version_num='9999'")
    check, version = doctor.check_database(settings)
    assert check.level is Level.FAIL and "newer than" in check.detail and "release that upgraded it" in check.fix
    db.close()


def test_postgres_unreachable_without_showing_its_password():
    check, version = doctor.check_database(Settings(database_url="postgresql://kb:s3cret@127.0.0.1:1/kb"))
    assert check.level is Level.FAIL and version is None and "start PostgreSQL" in check.fix
    assert "s3cret" not in check.detail and "kb:***@127.0.0.1:1/kb" in check.detail


@pytest.fixture
def indexed(tmp_path, normaliser) -> Settings:
    """Settings whose model folder says 64 dimensions and whose index was saved at KB version 5."""
    settings = Settings(data_dir=str(tmp_path / "var"))
    settings.model_path.mkdir(parents=True)
    (settings.model_path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    embedder = make_embedder(settings)  # the encoder the setting names, as the workers build it
    index = PhrasingIndex(64)
    index.save(settings.index_path, index_manifest(embedder, normaliser, settings, kb_version=5))
    return settings


@pytest.mark.parametrize(
    ("db_version", "level", "detail"),
    [
        (5, Level.OK, "same as the database"),
        (7, Level.WARN, "will catch up on start"),
        (3, Level.FAIL, "newer than the database"),
        (None, Level.WARN, "versions not compared"),
    ],
)
def test_index_versions(indexed, db_version, level, detail):
    check = doctor.check_index(indexed, db_version)
    assert check.level is level and detail in check.detail


def test_index_missing(tmp_path):
    check = doctor.check_index(Settings(data_dir=str(tmp_path / "var")), 0)
    assert (check.level, check.fix) == (Level.FAIL, "hotline setup")


def test_index_for_another_model_or_normaliser(indexed):
    check = doctor.check_index(Settings(data_dir=indexed.data_dir, model_prefix="passage: "), 5)
    assert (check.level, check.fix) == (Level.FAIL, "hotline index rebuild")
    assert "model: saved" in check.detail
    check = doctor.check_index(Settings(data_dir=indexed.data_dir, embed_text="raw"), 5)
    assert check.level is Level.FAIL and "normaliser: saved" in check.detail


def test_index_corrupt(indexed):
    (indexed.index_path / "phrasings.json").write_text("{}")
    check = doctor.check_index(indexed, 5)
    assert (check.level, check.fix) == (Level.FAIL, "hotline index rebuild")
    assert "do not match their manifest" in check.detail


def test_index_cannot_be_compared_without_the_model(indexed):
    (indexed.model_path / "config.json").unlink()
    assert doctor.check_index(indexed, 5).level is Level.WARN


# -- Rasa model ------------------------------------------------------------------------------


@pytest.fixture
def bot_root(tmp_path) -> Path:
    for name in ("bot/domain.yml", "bot/config.yml", "bot/data/nlu.yml", "bot/data/rules.yml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("version: '3.1'\n")
    return tmp_path


def test_rasa_model_missing(bot_root):
    check = doctor.check_rasa_model(bot_root)
    assert (check.level, check.fix) == (Level.FAIL, "scripts/bot.sh train")


def test_rasa_model_newer_than_its_inputs_then_outdated(bot_root):
    model = bot_root / "bot" / "models" / "hotline.tar.gz"
    model.parent.mkdir()
    model.write_bytes(b"model")
    past = time.time() - 3600
    for path in (bot_root / "bot").rglob("*.yml"):
        os.utime(path, (past, past))
    check = doctor.check_rasa_model(bot_root)
    assert check.level is Level.OK and "newer than its 4 input files" in check.detail
    (bot_root / "bot" / "data" / "nlu.yml").write_text("version: '3.1'\nnlu: []\n")
    os.utime(bot_root / "bot" / "data" / "nlu.yml", (time.time() + 5, time.time() + 5))
    check = doctor.check_rasa_model(bot_root)
    assert (check.level, check.fix) == (Level.FAIL, "scripts/bot.sh train")
    assert "older than bot/data/nlu.yml" in check.detail


# -- Redis and ports ----------------------------------------------------------------------------


def test_redis_not_configured_or_unreachable():
    assert doctor.check_redis(Settings()).level is Level.OK
    check = doctor.check_redis(Settings(redis_url="redis://:s3cret@127.0.0.1:1/0"), timeout=0.5)
    assert check.level is Level.FAIL and "redis-server" in check.fix
    assert "s3cret" not in check.detail and ":***@" in check.detail


class StandIn(BaseHTTPRequestHandler):
    """Answers GET paths from the server's ``routes`` (path -> (status, body))."""

    def do_GET(self) -> None:
        status, body = self.server.routes.get(self.path, (404, "not found"))  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve() -> Iterator:
    servers: list[ThreadingHTTPServer] = []

    def start(routes: dict[str, tuple[int, str]]) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
        server.routes = routes  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


RASA = {"/status": (200, json.dumps({"model_id": "abc", "model_file": "hotline.tar.gz"}))}
ACTIONS = {"/health": (200, json.dumps({"status": "ok"}))}
WEB = {"/healthz": (200, json.dumps({"status": "ok", "kb_version": 3}))}


def test_free_ports_are_fine():
    port = free_port()
    assert doctor.check_rasa_port("127.0.0.1", port).level is Level.OK
    assert doctor.check_action_port(port).level is Level.OK
    assert doctor.check_web_port("127.0.0.1", port).level is Level.OK


def test_ports_answered_by_the_right_service(serve):
    check = doctor.check_rasa_port("127.0.0.1", serve(RASA))
    assert check.level is Level.OK and "Rasa is running" in check.detail
    assert doctor.check_rasa_port("127.0.0.1", serve({"/": (200, "Hello from Rasa: 3.6.21")})).level is Level.OK
    assert doctor.check_action_port(serve(ACTIONS)).level is Level.OK
    check = doctor.check_web_port("0.0.0.0", serve(WEB))
    assert check.level is Level.OK and "KB version 3" in check.detail
    assert doctor.check_web_port("127.0.0.1", serve({"/static/hotline-widget.js": (200, "//")})).level is Level.OK


def test_an_unhealthy_web_app_fails_with_its_reason(serve):
    port = serve({"/healthz": (503, json.dumps({"status": "unhealthy", "reason": "database: locked"}))})
    check = doctor.check_web_port("127.0.0.1", port)
    assert check.level is Level.FAIL and "database: locked" in check.detail


def test_ports_taken_by_something_else(serve):
    other = serve({"/": (200, "some other app")})
    for check in (
        doctor.check_rasa_port("127.0.0.1", other),
        doctor.check_action_port(other),
        doctor.check_web_port("127.0.0.1", other),
    ):
        assert check.level is Level.FAIL and "is taken by something that is not" in check.detail
        assert f"sport = :{other}" in check.fix


def test_rasa_without_a_model_is_a_warning(serve):
    port = serve({"/status": (200, json.dumps({"model_id": None, "model_file": None}))})
    assert doctor.check_rasa_port("127.0.0.1", port).level is Level.WARN


def test_ports_come_from_settings_and_the_scripts_variables():
    settings = Settings(rasa_url="http://127.0.0.1:6005", web_port=8100)
    assert Ports.of(settings, {}) == Ports("127.0.0.1", 6005, 5055, "127.0.0.1", 8100)
    assert Ports.of(settings, {"HOTLINE_RASA_PORT": "7005", "HOTLINE_ACTION_PORT": "7055"}).actions == 7055
    with pytest.raises(ValueError, match="HOTLINE_ACTION_PORT must be a port number"):
        Ports.of(settings, {"HOTLINE_ACTION_PORT": "fifty"})


# -- the whole doctor and its command -----------------------------------------------------------


def free_port_env() -> dict[str, str]:
    return {"HOTLINE_RASA_PORT": str(free_port()), "HOTLINE_ACTION_PORT": str(free_port())}


def test_run_checks_on_an_empty_folder_fails_with_fixes(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"), web_port=free_port())
    checks = doctor.run_checks(settings, root=tmp_path, environ=free_port_env(), load_model=False)
    by_name = {c.name.split(" port")[0]: c for c in checks}
    assert [c.name for c in checks][:7] == [
        "python env",
        "rasa env",
        "embedding model",
        "database",
        "index",
        "rasa model",
        "redis",
    ]
    failed = {c.name for c in checks if c.level is Level.FAIL}
    assert failed == {"python env", "rasa env", "embedding model", "database", "index", "rasa model"}
    assert all(c.fix for c in checks if c.level is Level.FAIL)
    assert by_name["rasa"].level is Level.OK


def test_a_bad_port_variable_is_one_failed_check(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "var"))
    checks = doctor.run_checks(settings, root=tmp_path, environ={"HOTLINE_RASA_PORT": "x"}, load_model=False)
    assert checks[-1].name == "ports" and checks[-1].level is Level.FAIL


def test_cli_prints_the_table_and_exits_1_on_failure(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(f"data_dir: {tmp_path / 'var'}\nweb_port: {free_port()}\n")
    result = CliRunner().invoke(
        main, ["--config", str(config), "doctor", "--root", str(tmp_path), "--no-load"], env=free_port_env()
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("FAIL  python env") for line in lines)
    assert any(line.startswith("OK    redis") for line in lines)
    assert "fix: bash scripts/setup-env.sh" in result.output
    assert "fix: hotline model build" in result.output
    assert "fix: scripts/bot.sh train" in result.output
    assert "6 check(s) failed" in result.output


def test_cli_exits_0_when_nothing_fails(tmp_path, monkeypatch):
    checks = [Check("a", Level.OK, "fine"), Check("b", Level.WARN, "stale, will catch up on start")]
    # The command only prints what run_checks found; which checks pass is tested above.
    monkeypatch.setattr(doctor, "run_checks", lambda *a, **k: checks)
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "none.yml"), "doctor", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "all 2 checks passed (1 warning(s))" in result.output
