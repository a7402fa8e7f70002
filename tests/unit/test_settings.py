"""Settings: file, environment overrides, validation, and that the README documents every one."""

from __future__ import annotations

import pytest

from knowledge_base.settings import Settings, load_settings, setting_help
from tests.conftest import REPO

pytestmark = pytest.mark.unit


def test_defaults_without_a_file():
    assert load_settings(None, environ={}) == Settings()


def test_file_then_environment_then_overrides(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("answer_threshold: 0.96\nindex_type: hnsw\nclarify_max: 2\n")
    s = load_settings(path, environ={"HOTLINE_CLARIFY_MAX": "3", "HOTLINE_EMBED_TEXT": "raw"}, data_dir="/srv/hotline")
    assert (s.answer_threshold, s.index_type, s.clarify_max, s.embed_text, s.data_dir) == (
        0.96,
        "hnsw",
        3,
        "raw",
        "/srv/hotline",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no_such_setting: 1\n", "unknown setting"),
        ("clarify_max: lots\n", "not a valid int"),
        ("index_type: ivf\n", "index_type"),
        ("answer_threshold: 0.5\nclarify_threshold: 0.9\n", "must not exceed"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_config_is_refused_with_a_reason(tmp_path, text, message):
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_settings(path, environ={})


def test_shipped_config_file_loads():
    load_settings(REPO / "config.yml", environ={})


def test_every_setting_is_documented_in_readme_and_config_yml():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    config = (REPO / "config.yml").read_text(encoding="utf-8")
    missing_readme = [name for name in setting_help() if f"`{name}`" not in readme]
    missing_config = [name for name in setting_help() if f"{name}:" not in config]
    assert not missing_readme, f"README.md does not document: {missing_readme}"
    assert not missing_config, f"config.yml does not list: {missing_config}"
