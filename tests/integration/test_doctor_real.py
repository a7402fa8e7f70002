"""``hotline doctor`` on the real thing: this checkout's environments, the real model, a real index."""

from __future__ import annotations

import pytest

from hotline import doctor
from hotline.doctor import Level
from knowledge_base.factory import open_knowledge_base
from knowledge_base.records import Entry
from knowledge_base.settings import Settings
from tests.conftest import REPO, sample_entries

pytestmark = pytest.mark.integration


def test_the_checkouts_environments_pass():
    assert doctor.check_python_env(REPO).level is Level.OK
    check = doctor.check_rasa_env(REPO)
    assert check.level is Level.OK and check.detail.startswith("Rasa 3.6")


@pytest.mark.slow
def test_real_model_database_and_index_pass_then_the_index_is_stale(tmp_path, model_dir):
    settings = Settings(data_dir=str(tmp_path / "var"), model_dir=str(model_dir))
    kb = open_knowledge_base(settings)
    kb.import_entries(sample_entries(), author="tester")  # saves the index at the new KB version
    check = doctor.check_model(settings)
    assert check.level is Level.OK and "384 dimensions" in check.detail
    database, version = doctor.check_database(settings)
    assert database.level is Level.OK and version == kb.kb_version
    assert doctor.check_index(settings, version).level is Level.OK
    kb.store.add(Entry(question="新来的问题", answer="答"), author="editor")  # written, index not saved
    check = doctor.check_index(settings, kb.store.kb_version())
    assert check.level is Level.WARN and "will catch up on start" in check.detail


def test_a_model_folder_that_does_not_load_fails(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    check = doctor.check_model(Settings(model_dir=str(tmp_path), embedder="torch"))
    assert check.level is Level.FAIL and "does not load" in check.detail
    check = doctor.check_model(Settings(model_dir=str(tmp_path), embedder="onnx"))
    assert check.level is Level.FAIL and "no ONNX export" in check.detail and "hotline model build" in check.fix


def test_redis_reachable(redis):
    check = doctor.check_redis(Settings(redis_url="redis://127.0.0.1:6379/15"))
    assert check.level is Level.OK and check.detail.startswith("Redis ")
