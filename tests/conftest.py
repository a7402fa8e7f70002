"""Shared fixtures. Real parts (model, FAISS, SQLite) for integration tests; named fakes for unit tests."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from knowledge_base.records import Entry, PolicyBasis, Region, Status
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.storage.store import SQLStore

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 26)


@pytest.fixture(scope="session")
def normaliser():
    from knowledge_base.search.textnorm import TextNormaliser

    return TextNormaliser.from_dir()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "var"))


@pytest.fixture
def new_database(tmp_path: Path):
    """Makes fresh, empty databases of the backend under test (SQLite files here; PostgreSQL in test_postgres)."""
    from knowledge_base.storage.database import open_database

    made = []

    def make():
        made.append(open_database(tmp_path / f"db{len(made)}.sqlite3"))
        return made[-1]

    yield make
    for db in made:
        db.close()


@pytest.fixture
def db(new_database):
    return new_database()


@pytest.fixture
def store(tmp_path: Path):
    s = SQLStore(tmp_path / "kb.sqlite3")
    yield s
    s.close()


def sample_entries() -> list[Entry]:
    """A handful of hand-written entries for unit tests of logic."""
    return [
        Entry(
            key="T-SB-1",
            question="怎么查询社保缴费记录",
            similar_questions=("社保交了几个月在哪查", "社保缴费明细查询"),
            answer="登录粤省事小程序查询社保缴费记录。",
            department="广东省人力资源和社会保障厅",
            category="社会保障",
            regions=(Region("广东省"),),
            policy=PolicyBasis("《社会保险法》", "", ""),
            effective_date=date(2024, 1, 1),
        ),
        Entry(
            key="T-GJJ-SZ",
            question="深圳住房公积金怎么提取",
            similar_questions=("深圳公积金提取流程",),
            answer="深圳：通过深圳公积金网上办事大厅申请提取。",
            department="深圳市住房公积金管理中心",
            regions=(Region("广东省", "深圳市"),),
        ),
        Entry(
            key="T-GJJ-GZ",
            question="广州住房公积金怎么提取",
            similar_questions=("广州公积金提取流程",),
            answer="广州：通过广州住房公积金管理中心网上服务厅申请提取。",
            department="广州住房公积金管理中心",
            regions=(Region("广东省", "广州市"),),
        ),
        Entry(
            key="T-OLD",
            question="2024年临时生活补贴怎么申请",
            answer="已停止受理。",
            department="民政局",
            effective_date=date(2024, 1, 1),
            expiry_date=date(2024, 12, 31),
        ),
        Entry(key="T-DRAFT", question="新生儿落户怎么办理", answer="草稿内容", status=Status.DRAFT),
        Entry(key="T-FUTURE", question="2027年新政策补贴怎么领", answer="明年生效。", effective_date=date(2027, 1, 1)),
    ]


@pytest.fixture
def fake_kb(store, normaliser, settings) -> KnowledgeBase:
    """A knowledge base over a real SQLite store with the FAKE n-gram embedder (unit tests of logic)."""
    kb = KnowledgeBase(store, FakeEmbedder(), normaliser, settings=settings, today=lambda: TODAY)
    kb.import_entries(sample_entries(), author="tester")
    return kb


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The real multilingual-e5-small folder, built once (or reused from HOTLINE_TEST_MODEL_DIR)."""
    from hotline.model_build import build_model, export_onnx, is_built

    given = os.environ.get("HOTLINE_TEST_MODEL_DIR")
    if given and is_built(Path(given)):
        export_onnx(Path(given), progress=False)  # a folder built before the ONNX export existed gets it once
        return Path(given)
    return build_model(tmp_path_factory.mktemp("model") / "multilingual-e5-small", progress=False)


@pytest.fixture(scope="session")
def real_embedder(model_dir: Path):
    from knowledge_base.search.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model_dir)
    embedder.load()
    return embedder


REDIS_TEST_URLS = ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14")


@pytest.fixture
def redis():
    """A real Redis client on the empty test database 15 (database 14 too is flushed), before and after.

    Tests needing a second, independent database use ``REDIS_TEST_URLS[1]``.
    """
    import redis as redis_lib

    clients = [redis_lib.Redis.from_url(url) for url in REDIS_TEST_URLS]
    for client in clients:
        client.flushdb()
    yield clients[0]
    for client in clients:
        client.flushdb()
        client.close()


class CosineTableEmbedder:
    """A fake embedder whose cosines a test sets by hand: a text containing ``keyword`` scores ``cosine``.

    Texts holding no keyword (the questions asked) embed as one axis; the phrasings of
    entry ``i`` lie at ``cosine`` from it, each off on an axis of its own, so no two
    entries interfere and every score the ranking sees is the one written in the test.
    """

    def __init__(self, cosines: dict[str, float]) -> None:
        self.cosines = dict(cosines)
        self._axis = {keyword: i for i, keyword in enumerate(self.cosines, start=1)}

    @property
    def name(self) -> str:
        return "fake-cosine-table"

    @property
    def dim(self) -> int:
        return len(self.cosines) + 1

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False):
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            keyword = next((k for k in self.cosines if k in text), None)
            if keyword is None:
                out[row, 0] = 1.0
                continue
            cosine = self.cosines[keyword]
            out[row, 0], out[row, self._axis[keyword]] = cosine, (1 - cosine**2) ** 0.5
        return out


@pytest.fixture
def scored_kb(store, normaliser, tmp_path: Path):
    """``scored_kb({"护照": 0.93, ...}, **settings)``: one published entry "<keyword>怎么办理" per keyword, and a
    knowledge base where any question without a keyword scores each entry at its cosine (lexical weight 0)."""

    def make(cosines: dict[str, float], **overrides: object) -> KnowledgeBase:
        # raw text: the folding's canonical terms would rewrite the keywords
        settings = Settings(data_dir=str(tmp_path / "var"), lexical_weight=0.0, embed_text="raw", **overrides)  # type: ignore[arg-type]
        kb = KnowledgeBase(store, CosineTableEmbedder(cosines), normaliser, settings=settings, today=lambda: TODAY)
        kb.import_entries(
            [Entry(key=f"K-{i}", question=f"{k}怎么办理", answer=f"{k}的办法。") for i, k in enumerate(cosines, 1)],
            author="tester",
        )
        return kb

    return make
