"""What the web app's pages use, built on first use (never at import) and shared by its threads.

The knowledge base loads the embedding model, so it is built once per web worker,
on the first page that searches; ``hotline web`` warms it before serving.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from flask import current_app

from knowledge_base.settings import Settings

if TYPE_CHECKING:
    import redis as redis_client

    from knowledge_base.search.dictionaries import DictionaryStore, DictionaryWatcher
    from knowledge_base.search.kb import KnowledgeBase
    from knowledge_base.staff.accounts import AccountStore
    from knowledge_base.staff.curation import CurationQueue
    from knowledge_base.staff.interactions import InteractionStore
    from knowledge_base.staff.workflow import Workflow
    from knowledge_base.storage.database import Database


class Services:
    """The parts of one web worker: database, knowledge base, accounts, workflow, interactions, Redis.

    Args:
        settings: the deployment's settings.
        kb: a knowledge base to use instead of building the configured one (tests pass one on a fake embedder).
        db: the database (default: the configured one).
        redis: a Redis client (default: from ``redis_url``; None when it is empty).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kb: KnowledgeBase | None = None,
        db: Database | None = None,
        redis: redis_client.Redis | None = None,
    ) -> None:
        self.settings = settings
        self._kb = kb
        self._db = db
        self._redis = redis
        self._lock = threading.RLock()
        self._accounts: AccountStore | None = None
        self._workflow: Workflow | None = None
        self._interactions: InteractionStore | None = None
        self._dictionaries: DictionaryStore | None = None
        self._watcher: DictionaryWatcher | None = None
        self._queue: CurationQueue | None = None

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                # Share the store's database when it has one (SQLStore does; the Store protocol promises none).
                kb_db: Database | None = getattr(self._kb.store, "db", None) if self._kb is not None else None
                if kb_db is not None:
                    self._db = kb_db
                else:
                    from knowledge_base.factory import open_database

                    self._db = open_database(self.settings)
            return self._db

    @property
    def kb(self) -> KnowledgeBase:
        with self._lock:
            if self._kb is None:
                from knowledge_base.factory import open_knowledge_base

                self._kb = open_knowledge_base(self.settings, db=self.db)
            return self._kb

    def loaded_kb(self) -> KnowledgeBase | None:
        """The knowledge base if this worker has built it, else None (never builds it)."""
        return self._kb

    @property
    def accounts(self) -> AccountStore:
        with self._lock:
            if self._accounts is None:
                from knowledge_base.staff.accounts import AccountStore

                self._accounts = AccountStore(self.db)
            return self._accounts

    @property
    def workflow(self) -> Workflow:
        with self._lock:
            if self._workflow is None:
                from knowledge_base.staff.workflow import Workflow

                self._workflow = Workflow(self.kb, self.db, audit=self.accounts.audit)
            return self._workflow

    @property
    def interactions(self) -> InteractionStore:
        with self._lock:
            if self._interactions is None:
                from knowledge_base.factory import open_interactions

                # The knowledge base's embedder suggests each new order's department; asked for only when an
                # order is created, so pages that merely list orders never load the model.
                self._interactions = open_interactions(self.settings, self.db, embedder=lambda: self.kb.embedder)
            return self._interactions

    @property
    def dictionaries(self) -> DictionaryStore:
        with self._lock:
            if self._dictionaries is None:
                from knowledge_base.search.dictionaries import DictionaryStore

                self._dictionaries = DictionaryStore(self.db)
            return self._dictionaries

    @property
    def queue(self) -> CurationQueue:
        with self._lock:
            if self._queue is None:
                from knowledge_base.staff.curation import CurationQueue

                self.interactions  # noqa: B018 - the queue reads its tables
                self._queue = CurationQueue(self.kb, self.db)
            return self._queue

    def fresh_kb(self, *, force: bool = False) -> KnowledgeBase:
        """The knowledge base, with edited dictionaries applied first (checked every few seconds)."""
        kb = self.kb
        with self._lock:
            if self._watcher is None:
                from knowledge_base.search.dictionaries import DictionaryWatcher

                self._watcher = DictionaryWatcher(kb, self.dictionaries)
        self._watcher.refresh(force=force)
        return kb

    @property
    def redis(self) -> redis_client.Redis | None:
        with self._lock:
            if self._redis is None and self.settings.redis_url:
                from knowledge_base.factory import open_redis

                self._redis = open_redis(self.settings)
            return self._redis


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions["hotline"]
    return found
