"""Property-based fuzzing of the importer: read_entries, then KnowledgeBase.import_entries.

Generated CSV, JSON Lines and YAML files (rows built from good entries with cells spoiled, odd
headers, every encoding mistake), random bytes under every extension, and real workbooks written
by write_entries, then damaged: bytes flipped, truncated, or their sheet XML edited. For each:

* read_entries raises ImportRejected or nothing (the format and encoding given are valid), and
  every problem it lists names the file and says what is wrong;
* what read_entries accepts, import_entries stores (the whole file was checked first);
* a refused import leaves the store as it was: kb_version, the entries and their revisions.

Derandomized, so CI runs the same files every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from knowledge_base.errors import ImportRejected
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.storage.store import SQLStore
from knowledge_base.transfer import read_entries
from tests.conftest import TODAY, sample_entries
from tests.strategies import FUZZ, damaged_workbooks, text_files

pytestmark = pytest.mark.unit

XLSX_EXAMPLES = 120  # each opens a workbook with openpyxl: slower than the text formats


@pytest.fixture(scope="module")
def kb(tmp_path_factory, normaliser):
    root = tmp_path_factory.mktemp("fuzz-import")
    store = SQLStore(root / "kb.sqlite3")
    kb = KnowledgeBase(
        store, FakeEmbedder(), normaliser, settings=Settings(data_dir=str(root / "var")), today=lambda: TODAY
    )
    kb.import_entries(sample_entries(), author="tester")
    yield kb
    store.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


def snapshot(kb: KnowledgeBase) -> tuple[Any, ...]:
    store = kb.store
    revisions = store.db.query("SELECT COUNT(*) AS n, MAX(id) AS last FROM revisions")[0]
    return store.kb_version(), [e.to_dict() for e in store.entries()], revisions


def import_file(kb: KnowledgeBase, path: Path, data: bytes, *, encoding: str = "utf-8") -> None:
    """The property every import must have (see the module's docstring)."""
    path.write_bytes(data)
    before = snapshot(kb)
    try:
        entries = read_entries(path, encoding=encoding)
    except ImportRejected as exc:
        event(f"{path.suffix} rejected")
        assert exc.problems, "a rejection lists its problems"
        for problem in exc.problems:
            assert problem.file == path.name and problem.message.strip(), repr(problem)
        assert snapshot(kb) == before
        return
    event(f"{path.suffix} read {min(len(entries), 3)}+ entries")
    try:
        summary = kb.import_entries(entries, author="fuzz")
    except Exception:
        # read_entries checked the whole file, so the store must take it; and a failed write writes nothing
        assert snapshot(kb) == before, "a failed import changed the store"
        raise
    assert summary.added + summary.updated + summary.unchanged == len(entries)
    assert kb.store.kb_version() == before[0] + 1
    for entry in entries:
        if entry.key:
            assert kb.store.get_by_key(entry.key).content() == entry.content()


@FUZZ
@given(file=text_files, gbk=st.booleans())
def test_text_files(kb, folder, file, gbk):
    suffix, data = file
    import_file(kb, folder / f"upload{suffix}", data, encoding="gbk" if gbk and suffix != ".xlsx" else "utf-8")


@settings(FUZZ, max_examples=XLSX_EXAMPLES)
@given(data=damaged_workbooks())
def test_damaged_workbooks(kb, folder, data):
    import_file(kb, folder / "upload.xlsx", data)
