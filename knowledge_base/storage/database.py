"""One small database layer under the stores: SQLite (the default) or PostgreSQL (several hosts).

SQL is written once, SQLite style: ``?`` placeholders, and DDL with ``INTEGER
PRIMARY KEY AUTOINCREMENT``, ``INTEGER``, ``REAL``, ``TEXT``, ``BLOB``. The
PostgreSQL dialect rewrites placeholders to ``%s`` and those types to
``BIGSERIAL PRIMARY KEY``, ``BIGINT``, ``DOUBLE PRECISION``, ``TEXT``, ``BYTEA``.
Keep to the SQL both understand (``INSERT ... ON CONFLICT (...) DO NOTHING``,
not ``INSERT OR IGNORE``).

Outside :meth:`Database.transaction` every statement commits on its own. Inside
it, the thread holds the database's one write transaction: SQLite's ``BEGIN
IMMEDIATE``, on PostgreSQL a transaction-scoped advisory lock. So writers are
serialised the same way on both, which is what lets the store's KB-wide
version counter give exactly one winner to concurrent saves.

A constraint violation raises :class:`IntegrityError` on both dialects. On
PostgreSQL a failed statement spoils the rest of its transaction, so inside
``transaction()`` check before writing rather than catch and carry on.

Example:
    >>> db = open_database(":memory:")
    >>> db.ensure_schema("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)")
    >>> with db.transaction():
    ...     db.insert("INSERT INTO notes (body) VALUES (?)", ["你好"])
    1
    >>> db.query("SELECT id, body FROM notes")
    [{'id': 1, 'body': '你好'}]
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import sqlite3
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from knowledge_base.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "WRITE_LOCK",
    "Database",
    "IntegrityError",
    "PostgresDatabase",
    "SQLiteDatabase",
    "open_database",
    "postgres_ddl",
    "postgres_sql",
    "redact_url",
    "split_statements",
]


class IntegrityError(sqlite3.IntegrityError):
    """A statement broke a constraint (UNIQUE, NOT NULL, ...), on either dialect.

    A subclass of :class:`sqlite3.IntegrityError`, so code written for SQLite keeps catching it on PostgreSQL.
    """


class Database(ABC):
    """A database the stores share: statements with ``?`` placeholders, rows as dicts.

    Thread-safe: each thread works on its own connection (SQLite) or a pooled one (PostgreSQL).

    Attributes:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        url: where it lives (``sqlite:///path``, ``sqlite:///:memory:`` or the PostgreSQL URL as given).
    """

    dialect: str
    url: str

    def __init__(self) -> None:
        self._local = threading.local()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran; every later call raises :class:`DatabaseError`."""
        return self._closed

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a SELECT (or anything returning rows) and return every row as a column -> value dict."""

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of :meth:`query`, or None when there is none."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement and return how many rows it changed."""

    @abstractmethod
    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT into a table with an ``id`` key and return the new row's id."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """This thread's exclusive write transaction: commit on exit, roll back on an exception.

        Every statement the thread runs inside it runs on it. Only one thread (of any process)
        holds it at a time; others wait. Nested calls become savepoints: an exception leaving
        the inner block undoes only what the inner block did.

        Raises:
            RuntimeError: called inside :meth:`snapshot`, which is read-only.
        """

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[None]:
        """A read-only transaction: every query inside sees the database as of one moment.

        Writers are not blocked. Inside :meth:`transaction` it adds nothing (that is consistent already).
        """

    def ensure_schema(self, ddl: str) -> None:
        """Run idempotent statements (``CREATE TABLE/INDEX IF NOT EXISTS``, ``INSERT ... ON CONFLICT DO NOTHING``).

        All in one write transaction, so two processes starting together do not race.

        Args:
            ddl: SQLite-style statements separated by ``;``.
        """
        with self.transaction():
            for statement in split_statements(ddl):
                self.execute(self._ddl(statement))

    def _ddl(self, statement: str) -> str:
        return statement

    @abstractmethod
    def connect_plain(self) -> object:
        """A new DB-API connection to the same database, owned by the caller: for SQLAlchemy (the migrations).

        It has the driver's defaults (rows as tuples, the driver's own transactions), none of this object's.
        """

    def serialised(self) -> AbstractContextManager[None]:
        """Keeps this object's threads off the database while a :meth:`connect_plain` connection writes to it.

        Only an in-memory SQLite database needs it (its shared cache fails on a lock instead of waiting);
        elsewhere it does nothing.
        """
        return nullcontext()

    @abstractmethod
    def close(self) -> None:
        """Close every connection. Idempotent."""

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"the database {redact_url(self.url)} was closed; open it again")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)}>"


def open_database(url: str | Path, *, timeout: float | None = None) -> Database:
    """Open the database at ``url``; the connection details decide the dialect.

    Args:
        url: ``sqlite:///relative/path``, ``sqlite:////absolute/path``, a plain file path, ``":memory:"``
            (a private in-memory database shared by the owner's threads), or
            ``postgresql://user[:password]@host[:port]/dbname`` (``postgres://`` too).
        timeout: seconds a call may wait (the ``db_timeout`` setting): PostgreSQL's connect and
            statement timeout and the wait for a pooled connection, SQLite's busy timeout. None: 30 s
            of waiting for a lock or a connection, no statement timeout (tools, tests).

    Raises:
        ValueError: a URL of another kind.
        DatabaseError: PostgreSQL could not be reached.
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(text, timeout=timeout)
    if text.startswith("sqlite:///"):
        return SQLiteDatabase(text.removeprefix("sqlite:///"), timeout=timeout)
    if "://" in text or text.startswith("sqlite:"):
        raise ValueError(
            f"database URL {redact_url(text)!r} is not supported: use sqlite:///PATH, a file path, "
            "':memory:' or postgresql://user@host:port/dbname"
        )
    return SQLiteDatabase(text, timeout=timeout)


def adopt(database: Database | str | Path) -> tuple[Database, bool]:
    """``database`` itself, or one opened from a path or URL; True when the caller opened it (and closes it)."""
    if isinstance(database, Database):
        return database, False
    return open_database(database), True


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


# -- SQL text ------------------------------------------------------------------

# Quoted strings and identifiers, and comments: the parts a rewrite must leave alone.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


def _segments(sql: str) -> Iterator[tuple[bool, str]]:
    """Split ``sql`` into (is_code, text) pieces; quoted and commented pieces are not code."""
    pos = 0
    for match in _QUOTED.finditer(sql):
        if match.start() > pos:
            yield True, sql[pos : match.start()]
        yield False, match.group()
        pos = match.end()
    if pos < len(sql):
        yield True, sql[pos:]


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, split at semicolons that are not quoted; empty ones dropped."""
    statements, current = [], []
    for is_code, text in _segments(script):
        if not is_code:
            current.append(text)
            continue
        *complete, rest = text.split(";")
        for piece in complete:
            current.append(piece)
            statements.append("".join(current))
            current = []
        current.append(rest)
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    """False for a piece holding only whitespace and comments."""
    return any(text.strip() if is_code else text[0] in "'\"" for is_code, text in _segments(statement))


@functools.lru_cache(maxsize=1024)
def postgres_sql(sql: str) -> str:
    """``sql`` with ``?`` placeholders as ``%s`` and literal ``%`` doubled, as psycopg expects."""
    out = []
    for is_code, text in _segments(sql):
        text = text.replace("%", "%%")
        out.append(text.replace("?", "%s") if is_code else text)
    return "".join(out)


_PG_TYPES = [
    # SQLite's INTEGER PRIMARY KEY is the rowid, numbered automatically with or without AUTOINCREMENT.
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.IGNORECASE), "BIGSERIAL PRIMARY KEY"),
    # SQLite integers are 64-bit; PostgreSQL's INTEGER is 32.
    (re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.IGNORECASE), "BYTEA"),
]


@functools.lru_cache(maxsize=256)
def postgres_ddl(statement: str) -> str:
    """A SQLite-style DDL statement with PostgreSQL's types (quoted text left alone)."""
    out = []
    for is_code, text in _segments(statement):
        if is_code:
            for pattern, replacement in _PG_TYPES:
                text = pattern.sub(replacement, text)
        out.append(text)
    return "".join(out)


# -- SQLite --------------------------------------------------------------------

_memory_names = itertools.count(1)


class _Connection(sqlite3.Connection):
    """sqlite3's connection, subclassed only so the database can hold it weakly.

    A thread's connection then goes when the thread does (threading.local lets go of it),
    while :meth:`SQLiteDatabase.close` can still close those that are alive.
    """


class SQLiteDatabase(Database):
    """A SQLite file (WAL, busy timeout) or a private in-memory database.

    One connection per thread, in autocommit mode; :meth:`transaction` is ``BEGIN IMMEDIATE``.

    Args:
        path: the database file (created with its folder) or ``":memory:"``.
        timeout: seconds a statement waits for another connection's lock (busy timeout); None: 30.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, timeout: float | None = None) -> None:
        super().__init__()
        self.timeout = 30.0 if timeout is None else timeout
        self.memory = str(path) == ":memory:"
        if self.memory:
            # A shared-cache URI, so every thread sees the same in-memory database.
            self._target = f"file:hotline-mem-{next(_memory_names)}?mode=memory&cache=shared"
            self.path: Path | None = None
            self.url = "sqlite:///:memory:"
        else:
            self.path = Path(path).expanduser()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._target = str(self.path)
            self.url = f"sqlite:///{self.path}"
        # Shared-cache tables lock with SQLITE_LOCKED, which the busy timeout does not wait out,
        # so an in-memory database serialises its threads in Python instead.
        self._memory_lock = threading.RLock() if self.memory else None
        self._all: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        self._keeper = self._connect()  # keeps an in-memory database alive

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._target,
            uri=self.memory,
            timeout=self.timeout,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        conn.row_factory = _dict_row
        if not self.memory:
            self._use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._all_lock:
            self._all.add(conn)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode, waiting out another connection that does the same at that moment.

        Switching the journal mode answers "database is locked" at once, without the busy timeout, while
        another connection switches it: several workers opening a brand-new file together saw it (29 of
        1,800 opens, six threads at once). So it is retried for up to the busy timeout.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @property
    def _conn(self) -> sqlite3.Connection:
        self._check_open()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _serialised(self) -> Iterator[None]:
        if self._memory_lock is None:
            yield
        else:
            with self._memory_lock:
                yield

    def serialised(self) -> AbstractContextManager[None]:
        return self._serialised()

    def connect_plain(self) -> sqlite3.Connection:
        self._check_open()
        return sqlite3.connect(self._target, uri=self.memory, timeout=self.timeout, check_same_thread=False)

    def _run(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(*exc.args) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._serialised():
            return self._run(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._serialised():
            return self._run(sql, params).rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._serialised():
            return int(self._run(sql, params).lastrowid or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        mode = getattr(self._local, "mode", None)
        if mode == "read":
            raise RuntimeError("transaction() inside snapshot(): a snapshot is read-only")
        with self._serialised():
            conn = self._conn
            depth: int = getattr(self._local, "depth", 0)
            begin, commit, undo = (
                ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
                if depth == 0
                else (f"SAVEPOINT sp{depth}", f"RELEASE sp{depth}", f"ROLLBACK TO sp{depth}; RELEASE sp{depth}")
            )
            conn.execute(begin)
            self._local.mode, self._local.depth = "write", depth + 1
            try:
                yield
            except BaseException:
                # SQLite ends the transaction itself after some errors (a full disk, say).
                if conn.in_transaction:
                    for statement in undo.split("; "):
                        conn.execute(statement)
                raise
            else:
                conn.execute(commit)
            finally:
                self._local.depth = depth
                if depth == 0:
                    self._local.mode = None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        if getattr(self._local, "mode", None) is not None:
            yield
            return
        with self._serialised():
            conn = self._conn
            conn.execute("BEGIN")  # deferred: the first read fixes the snapshot, writers go on (WAL)
            self._local.mode = "read"
            try:
                yield
            finally:
                self._local.mode = None
                conn.execute("COMMIT")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._all_lock:
            conns = [*self._all, self._keeper]
            self._all = weakref.WeakSet()
        for conn in conns:
            conn.close()


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: value for d, value in zip(cursor.description, row, strict=True)}


# -- PostgreSQL ----------------------------------------------------------------

# pg_advisory_xact_lock key of the write transaction: "hotline" in ASCII. Advisory locks are per
# database, so two knowledge bases on one server do not wait for each other.
WRITE_LOCK = 0x686F746C696E65


@contextmanager
def _reaching(url: str) -> Iterator[None]:
    """Turns psycopg's failure to connect into a :class:`DatabaseError` that names the server and the fix."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {str(exc).strip()}; "
            "check database_url and that the server is running"
        ) from exc


class PostgresDatabase(Database):
    """A PostgreSQL database through psycopg 3, with a small pool of autocommit connections.

    A statement outside a transaction borrows a pooled connection for just that statement;
    :meth:`transaction` and :meth:`snapshot` keep one for the thread until they end.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname`` (libpq URL, query options allowed).
        max_connections: most connections open at once; a thread wanting more waits ``timeout`` seconds.
        timeout: connect timeout, statement timeout of the pooled connections and the wait for one of
            them, in seconds (``db_timeout``). None: 10 s to connect, 30 s for a connection, statements
            unlimited. :meth:`connect_plain` (schema upgrades) never has a statement timeout.

    Raises:
        DatabaseError: the server cannot be reached with ``url``.
    """

    dialect = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 16, timeout: float | None = None) -> None:
        super().__init__()
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.url = url
        # libpq counts its connect timeout in whole seconds and treats 1 as 2.
        self._connect_timeout = 10 if timeout is None else max(2, math.ceil(timeout))
        self._pool_wait = 30.0 if timeout is None else timeout
        # A server that stops answering mid-statement is given up on; so is a statement stuck behind a lock.
        self._statement_timeout_ms = None if timeout is None else int(timeout * 1000)
        self._idle: list[psycopg.Connection[dict[str, Any]]] = []
        self._idle_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max = max_connections
        self._idle.append(self._connect())  # fail now, with the URL in the message, not on first use

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        import psycopg
        from psycopg.conninfo import make_conninfo
        from psycopg.rows import dict_row

        with _reaching(self.url):
            conninfo = self.url
            if self._statement_timeout_ms is not None:
                conninfo = make_conninfo(self.url, options=f"-c statement_timeout={self._statement_timeout_ms}")
            return psycopg.connect(
                conninfo, autocommit=True, row_factory=dict_row, connect_timeout=self._connect_timeout
            )

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """This thread's transaction connection, or a pooled one for the length of the block."""
        self._check_open()
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        if not self._slots.acquire(timeout=self._pool_wait):
            raise DatabaseError(
                f"all {self._max} connections to {redact_url(self.url)} stayed busy for {self._pool_wait:g} s"
            )
        try:
            with self._idle_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed or conn.broken:
                conn = self._connect()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def _give_back(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        from psycopg.pq import TransactionStatus

        reusable = not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE
        with self._idle_lock:
            if reusable and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def _run(self, conn: psycopg.Connection[dict[str, Any]], sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        import psycopg

        # SQLite stores booleans as 0/1; doing the same here keeps INTEGER flag columns working on both.
        args = tuple(int(p) if isinstance(p, bool) else p for p in params)
        try:
            return conn.execute(postgres_sql(sql), args)
        except psycopg.IntegrityError as exc:
            raise IntegrityError(str(exc).strip()) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._borrow() as conn:
            cur = self._run(conn, sql, params)
            return cur.fetchall() if cur.description is not None else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._borrow() as conn:
            return self._run(conn, sql, params).rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        if not re.search(r"\bRETURNING\b", sql, re.IGNORECASE):
            sql = f"{sql.rstrip().rstrip(';')} RETURNING id"
        with self._borrow() as conn:
            row = self._run(conn, sql, params).fetchone()
        if row is None:
            raise DatabaseError(f"the INSERT returned no id: {sql}")
        return int(next(iter(row.values())))

    def _ddl(self, statement: str) -> str:
        return postgres_ddl(statement)

    def connect_plain(self) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        self._check_open()
        with _reaching(self.url):
            return psycopg.connect(self.url, connect_timeout=self._connect_timeout)

    @contextmanager
    def _pinned(self, mode: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self._borrow() as conn:
            self._local.conn, self._local.mode = conn, mode
            try:
                yield conn
            finally:
                self._local.conn = self._local.mode = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        mode = getattr(self._local, "mode", None)
        if mode == "read":
            raise RuntimeError("transaction() inside snapshot(): a snapshot is read-only")
        if mode == "write":
            with self._local.conn.transaction():  # a savepoint
                yield
            return
        with self._pinned("write") as conn, conn.transaction():
            # Waits for any other writer to commit: as BEGIN IMMEDIATE does on SQLite.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        if getattr(self._local, "mode", None) is not None:
            yield
            return
        with self._pinned("read") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def close(self) -> None:
        if self._closed:
            return
        with self._idle_lock:
            self._closed = True
            conns, self._idle = self._idle, []
        for conn in conns:
            conn.close()
