"""Wires the real parts together: the one place that knows which store, embedder and normaliser run."""

from __future__ import annotations

from knowledge_base.embedder import SentenceTransformerEmbedder
from knowledge_base.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.store import SQLiteStore
from knowledge_base.textnorm import TextNormaliser


def open_store(settings: Settings) -> SQLiteStore:
    """The configured database (SQLite file by default)."""
    return SQLiteStore(settings.sqlite_path)


def open_knowledge_base(settings: Settings, *, warm: bool = True, progress: bool = False) -> KnowledgeBase:
    """The production knowledge base for ``settings``; ``warm`` loads the model and index now.

    Raises:
        ModelNotBuilt: the model folder is missing (run ``hotline model build``).
    """
    kb = KnowledgeBase(
        open_store(settings),
        SentenceTransformerEmbedder(settings.model_path, prefix=settings.model_prefix, threads=settings.embed_threads),
        TextNormaliser.from_dir(),
        settings=settings,
        index_dir=settings.index_path,
    )
    if warm:
        kb.warm_up(progress=progress)
    return kb
