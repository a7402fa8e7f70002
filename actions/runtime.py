"""What every action needs, built once per action-server worker process on first use.

rasa-sdk instantiates actions without arguments and imports this package in the
parent process before forking Sanic workers, so nothing heavy happens at import:
the knowledge base (and torch inside it) is built by the first action that needs it,
inside the worker. Tests inject their own with :func:`use`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge_base.search.dictionaries import DictionaryWatcher
    from knowledge_base.search.kb import KnowledgeBase
    from knowledge_base.staff.interactions import InteractionStore
    from knowledge_base.storage.events import ChangeListener, NullListener

log = logging.getLogger("hotline.actions")

_lock = threading.Lock()
_runtime: Runtime | None = None


@dataclass
class Runtime:
    kb: KnowledgeBase
    interactions: InteractionStore
    dictionaries: DictionaryWatcher | None = None  # None: the tables never change
    listener: ChangeListener | NullListener | None = None  # a ChangeListener while Redis is configured

    def fresh_kb(self) -> KnowledgeBase:
        """The knowledge base with staff-edited dictionaries applied (checked every few seconds)."""
        if self.dictionaries is not None:
            self.dictionaries.refresh()
        return self.kb


def use(runtime: Runtime | None) -> None:
    """Replace the process's runtime (tests), or forget it (None) so the next action rebuilds it."""
    global _runtime
    with _lock:
        _runtime = runtime


def get() -> Runtime:
    """The process's knowledge base and interaction log, built from config.yml on first call."""
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                from knowledge_base import factory
                from knowledge_base.search.dictionaries import DictionaryStore, DictionaryWatcher
                from knowledge_base.settings import load_settings

                settings = load_settings()
                log.info("action worker: loading the knowledge base from %s", factory.database_url(settings))
                db = factory.open_database(settings)
                kb = factory.open_knowledge_base(settings, db=db)
                _runtime = Runtime(
                    kb,
                    factory.open_interactions(settings, db, embedder=kb.embedder),
                    DictionaryWatcher(kb, DictionaryStore(db)),
                    factory.start_listener(settings, kb),
                )
    return _runtime
