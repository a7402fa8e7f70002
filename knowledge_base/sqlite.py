"""SQLite connections as the store and the interaction log use them: one per thread, WAL, autocommit.

``":memory:"`` gives a private in-memory database that every thread of the owner shares.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path

_names = itertools.count(1)


class Connections:
    """Per-thread connections to one database; the first connection also runs ``schema``."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.memory = str(path) == ":memory:"
        if self.memory:
            # A shared-cache URI, so every thread sees the same in-memory database.
            self._target = f"file:hotline-mem-{next(_names)}?mode=memory&cache=shared"
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._target = str(Path(path))
        self._local = threading.local()
        self._keeper = self._connect()  # keeps an in-memory database alive
        self._keeper.executescript(schema)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._target, uri=self.memory, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        if not self.memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._keeper.close()
