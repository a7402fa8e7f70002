"""Which schema a database has, and bringing it to this code's: Alembic migrations run from a :class:`Database`.

The tables are declared once, in :mod:`knowledge_base.storage.schema`; the migrations in
``knowledge_base/storage/migrations/versions/`` take a database of any earlier revision
(or of release 2c742a7, which had no revisions) to that declaration. The database's
revision lives in Alembic's ``alembic_version`` table.

Stores call :func:`ensure_current` when they are built: a database at this code's revision
passes (checked once per :class:`Database` object), a brand-new empty one is created at it,
and any other raises :class:`~knowledge_base.errors.SchemaOutdated` (run ``hotline db upgrade``)
or :class:`~knowledge_base.errors.SchemaTooNew`. Nothing upgrades by itself: a schema change
is the operator's decision, made once (``hotline db upgrade``), not by whichever worker starts first.

An upgrade runs every migration in ONE transaction that holds the database's write lock:
SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a transaction-scoped advisory lock of its own,
then the write lock of ordinary writes. So two hosts upgrading at once take turns (the second
finds the work done), running workers never write into a half-migrated schema, and a failed
migration leaves the database as it was (SQLite and PostgreSQL both roll DDL back).

Example:
    >>> from knowledge_base.storage.database import open_database
    >>> db = open_database(":memory:")
    >>> status(db).state
    'new'
    >>> upgrade(db).current == head_revision()
    True
    >>> status(db).state
    'current'
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy.engine import CursorResult
from sqlalchemy.schema import CreateIndex, CreateTable

from knowledge_base.errors import SchemaOutdated, SchemaTooNew
from knowledge_base.storage import schema
from knowledge_base.storage.database import WRITE_LOCK, Database, IntegrityError, postgres_sql, redact_url

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection

__all__ = [
    "MIGRATIONS",
    "RELEASE_REVISION",
    "SchemaState",
    "SchemaStatus",
    "SchemaTransaction",
    "Upgraded",
    "config",
    "ensure_current",
    "head_revision",
    "known_revisions",
    "schema_differences",
    "schema_transaction",
    "status",
    "table_names",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic script folder (shipped as package data)."""

RELEASE_REVISION = "0001"
"""The revision of release 2c742a7's schema: what a database or backup without a revision has."""

VERSION_TABLE = "alembic_version"

# pg_advisory_xact_lock key of schema changes ("hotlinem" in ASCII), apart from the write lock so that
# one migrator's check of the revision and its change of it are never interleaved with another's.
_MIGRATE_LOCK = 0x686F746C696E656D

SchemaState = Literal["current", "new", "behind", "unversioned", "ahead"]


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this code's.

    Attributes:
        current: the database's revision; None when it has none (new, or tables of release 2c742a7).
        head: this code's revision.
        state: ``current`` (at ``head``), ``new`` (none of the tables: created on first use),
            ``behind`` (an older revision), ``unversioned`` (tables of a release before revisions),
            ``ahead`` (a revision this code does not know: a newer release upgraded it).
        where: the database, password hidden.
    """

    current: str | None
    head: str
    state: SchemaState
    where: str

    @property
    def usable(self) -> bool:
        """True when this code can use the database as it is (at head, or new: created on first use)."""
        return self.state in ("current", "new")

    def describe(self) -> str:
        """One line for people: the revision and what it means."""
        if self.state == "current":
            return f"schema revision {self.current} (latest)"
        if self.state == "new":
            return f"no tables yet; they are created at revision {self.head} on first use"
        if self.state == "ahead":
            return f"schema revision {self.current}, newer than this hotline-qa's {self.head}"
        had = self.current or "none (release 2c742a7 or older)"
        return f"schema revision {had}, behind this hotline-qa's {self.head}"

    def error(self) -> SchemaOutdated | SchemaTooNew:
        """The exception for a database this code cannot use (``behind``, ``unversioned`` or ``ahead``)."""
        if self.state == "ahead":
            return SchemaTooNew(
                f"the database {self.where} has schema revision {self.current}, which this hotline-qa "
                f"(revision {self.head}) does not know: a newer release upgraded it. Run that release, "
                "or restore a backup made before the upgrade into an empty database",
                current=self.current,
                head=self.head,
            )
        had = (
            f"schema revision {self.current}"
            if self.current
            else "the tables of a release without schema revisions (2c742a7 or older)"
        )
        return SchemaOutdated(
            f"the database {self.where} has {had}; this hotline-qa needs revision {self.head}. "
            "Run: hotline db upgrade (a backup first is wise: hotline backup FILE)",
            current=self.current,
            head=self.head,
        )


@dataclass(frozen=True)
class Upgraded:
    """What :func:`upgrade` did: the revision before, the one after, and the migrations run in between."""

    previous: str | None
    current: str
    applied: tuple[str, ...]


# -- the scripts -------------------------------------------------------------------


def config() -> Config:
    """Alembic's configuration, built here (no ``alembic.ini``): the script folder inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    # Read once per process: the stores of every test and worker check against it.
    return ScriptDirectory.from_config(config())


def head_revision() -> str:
    """This code's schema revision (the newest migration).

    Example:
        >>> head_revision() == known_revisions()[-1]
        True
    """
    head = _scripts().get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS}"
    return head


@functools.cache
def known_revisions() -> tuple[str, ...]:
    """Every revision this code can upgrade from, oldest first.

    Example:
        >>> known_revisions()[:2]
        ('0001', '0002')
    """
    return tuple(reversed([s.revision for s in _scripts().walk_revisions()]))


# -- reading the state ------------------------------------------------------------


def table_names(db: Database) -> set[str]:
    """The names of the tables ``db`` has (in PostgreSQL's current schema)."""
    if db.dialect == "sqlite":
        rows = db.query("SELECT name FROM sqlite_master WHERE type='table'")
    else:
        rows = db.query("SELECT tablename::text AS name FROM pg_catalog.pg_tables WHERE schemaname = current_schema()")
    return {str(r["name"]) for r in rows}


def column_names(db: Database, table: str) -> set[str]:
    """The columns ``db``'s table ``table`` has (none when it has no such table)."""
    if db.dialect == "sqlite":
        rows = db.query("SELECT name FROM pragma_table_info(?)", (table,))
    else:
        rows = db.query(
            "SELECT column_name::text AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    return {str(r["name"]) for r in rows}


def status(db: Database) -> SchemaStatus:
    """Where ``db``'s schema stands against this code's; reads two small catalogue rows, changes nothing."""
    head, where = head_revision(), redact_url(db.url)
    tables = table_names(db)
    current: str | None = None
    if VERSION_TABLE in tables:
        versions = sorted(str(r["version_num"]) for r in db.query(f"SELECT version_num FROM {VERSION_TABLE}"))
        current = ",".join(versions) or None  # one row: the history has no branches
    if current == head:
        state: SchemaState = "current"
    elif current is None:
        state = "unversioned" if tables & set(schema.metadata.tables) else "new"
    else:
        state = "behind" if current in known_revisions() else "ahead"
    return SchemaStatus(current, head, state, where)


# -- what the stores call -------------------------------------------------------------

_checked: weakref.WeakSet[Database] = weakref.WeakSet()
_checked_lock = threading.Lock()


def ensure_current(db: Database) -> None:
    """Make sure ``db`` has this code's schema: the one check every store makes when it is built.

    At this code's revision: nothing (and never asked again for this ``db`` object). Brand new
    (none of the tables): created at this code's revision in one write transaction (a second
    process starting at once waits and finds it done). Anything else raises.

    Raises:
        SchemaOutdated: the database is at an older revision, or has the tables of a release without
            revisions; the message says to run ``hotline db upgrade``.
        SchemaTooNew: a newer hotline-qa upgraded the database.
    """
    if db in _checked:
        return
    found = status(db)
    if found.state == "new":
        with db.transaction():
            found = status(db)  # another process may have created it while this one waited
            if found.state == "new":
                _create(db)
                found = status(db)
    if found.state != "current":
        raise found.error()
    with _checked_lock:
        _checked.add(db)


# alembic's own table, as its MigrationContext declares it, for databases created without running the scripts.
_version_table = sa.Table(
    VERSION_TABLE,
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)


@functools.cache
def _create_statements(dialect: str) -> tuple[str, ...]:
    """The DDL of :data:`schema.metadata` (and the version table) for ``dialect``, compiled once per process."""
    compiler = sa.engine.make_url(f"{dialect}://").get_dialect()()
    statements = []
    for table in [*schema.metadata.sorted_tables, _version_table]:
        statements.append(str(CreateTable(table).compile(dialect=compiler)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=compiler)).strip())
    return tuple(statements)


def _create(db: Database) -> None:
    """Every table at this code's revision, seeded and stamped; inside the caller's write transaction.

    The declaration itself, not the migrations replayed: hundreds of test databases are made a
    second; tests/integration/test_upgrade.py proves that both give the same schema.
    """
    for statement in _create_statements(db.dialect):
        db.execute(statement)
    for name, rows in schema.SEED_ROWS.items():
        for row in rows:
            columns = ", ".join(row)
            db.execute(f"INSERT INTO {name} ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    db.execute(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (?)", (head_revision(),))


# -- one transaction for schema changes ------------------------------------------------------


class SchemaTransaction:
    """One locked transaction in which migrations and ordinary statements run together.

    Attributes:
        connection: the SQLAlchemy connection (Alembic runs on it).
        db: the same transaction through the :class:`Database` interface, for the stores' own SQL.
    """

    def __init__(self, connection: sa.Connection, db: Database) -> None:
        self.connection = connection
        self.db = db

    def status(self) -> SchemaStatus:
        """The schema as this transaction sees it."""
        return status(self.db)

    def upgrade(self, revision: str = "head", *, log: Callable[[str], object] | None = None) -> tuple[str, ...]:
        """Run the migrations up to ``revision``; returns the revisions applied, in order.

        Args:
            revision: a revision id or ``"head"``.
            log: called with one line per migration once it has run (in this still open transaction).
        """
        applied: list[str] = []

        def applied_one(
            ctx: MigrationContext, step: MigrationInfo, heads: Sequence[str], run_args: dict[str, Any]
        ) -> None:
            revision_id = str(step.up_revision_id)
            applied.append(revision_id)
            if log is not None:
                script = _scripts().get_revision(revision_id)
                title = (script.doc if script is not None else "").strip().splitlines()[0]
                log(f"{revision_id}: {title}")

        cfg = config()
        cfg.attributes["connection"] = self.connection
        cfg.attributes["on_version_apply"] = [applied_one]
        command.upgrade(cfg, revision)
        return tuple(applied)

    def drop_all(self) -> None:
        """Drop every declared table and the version table: an empty database, for the migrations to rebuild."""
        schema.metadata.drop_all(self.connection, checkfirst=True)
        _version_table.drop(self.connection, checkfirst=True)


def _engine(db: Database) -> sa.Engine:
    """An engine whose one connection reaches ``db``'s database (opened by ``db.connect_plain``)."""
    url = "sqlite://" if db.dialect == "sqlite" else "postgresql+psycopg://"
    creator = cast("Callable[[], DBAPIConnection]", db.connect_plain)
    engine = sa.create_engine(url, creator=creator, poolclass=sa.NullPool)
    if db.dialect == "sqlite":
        # SQLAlchemy's recipe for pysqlite: take transactions from the driver and begin them as
        # BEGIN IMMEDIATE, so DDL is inside them and a second migrator waits for the write lock.
        sa.event.listen(engine, "connect", _sqlite_autocommit)
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_autocommit(dbapi_connection: sqlite3.Connection, record: object) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def schema_transaction(db: Database) -> Iterator[SchemaTransaction]:
    """One transaction on ``db`` that may change the schema; commits on exit, rolls back on an exception.

    It holds SQLite's write lock (``BEGIN IMMEDIATE``), or on PostgreSQL the migration advisory lock
    and then the write lock of ordinary writes. Inside, use only the yielded transaction's ``db``
    and ``connection``: ``db``'s own connections would wait for this very transaction.
    """
    engine = _engine(db)
    try:
        with db.serialised(), engine.connect() as connection, connection.begin():
            if db.dialect == "postgresql":
                for key in (_MIGRATE_LOCK, WRITE_LOCK):
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (key,))
            yield SchemaTransaction(connection, _ConnectionDatabase(connection, db.url))
    finally:
        engine.dispose()


def upgrade(db: Database, revision: str = "head", *, log: Callable[[str], object] | None = None) -> Upgraded:
    """Bring ``db`` to ``revision`` (this code's by default), every migration in one locked transaction.

    Safe to run from several processes or hosts at once: they take turns and later ones find nothing
    to do. A database of release 2c742a7 (tables, no revision) is adopted as revision 0001 first.

    Args:
        db: the database.
        revision: ``"head"`` or an older revision id (tests, and restoring old backups).
        log: called with one line per migration before it runs.

    Raises:
        SchemaTooNew: the database is at a revision this code does not know.
        DatabaseError: the database cannot be reached.
    """
    with schema_transaction(db) as tx:
        before = tx.status()
        if before.state == "ahead":
            raise before.error()
        applied = tx.upgrade(revision, log=log)
        after = tx.status().current
    assert after is not None
    return Upgraded(before.current, after, applied)


def schema_differences(db: Database) -> list[Any]:
    """How ``db``'s tables differ from :data:`schema.metadata`, as Alembic's autogenerate compares them.

    Empty when the migrations and the declaration agree. One report is left out: SQLite's catalogue
    calls an ``INTEGER PRIMARY KEY`` column nullable unless its DDL says NOT NULL, which release
    2c742a7's did not; such a column is the rowid, which can never be NULL.
    """
    from alembic.autogenerate import compare_metadata

    engine = _engine(db)
    try:
        with db.serialised(), engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    finally:
        engine.dispose()
    return [d for d in found if not (db.dialect == "sqlite" and _is_rowid_nullable(d))]


def _is_rowid_nullable(difference: Any) -> bool:
    """True for Alembic's ``[("modify_nullable", schema, table, "id", ...)]`` about a numbered table's key."""
    if not (isinstance(difference, list) and len(difference) == 1 and len(difference[0]) == 7):
        return False
    kind, _, table, column = difference[0][:4]
    declared = schema.metadata.tables.get(table)
    return kind == "modify_nullable" and column == "id" and declared is not None and schema.numbered(declared)


# -- the Database interface on a SQLAlchemy connection ------------------------------------------------


class _ConnectionDatabase(Database):
    """:class:`Database` over one SQLAlchemy connection's open transaction: what restores write through.

    Nested :meth:`transaction` calls are savepoints; :meth:`snapshot` adds nothing (one transaction
    is consistent already); :meth:`close` leaves the connection to its owner.
    """

    def __init__(self, connection: sa.Connection, url: str) -> None:
        super().__init__()
        self.dialect = connection.dialect.name
        self.url = url
        self._connection = connection

    def _run(self, sql: str, params: Sequence[Any]) -> CursorResult[Any]:
        args = tuple(int(p) if isinstance(p, bool) else p for p in params)
        try:
            if not args:  # no parameters: the driver reads the text as it is (a % stays a %)
                return self._connection.exec_driver_sql(sql)
            return self._connection.exec_driver_sql(postgres_sql(sql) if self.dialect == "postgresql" else sql, args)
        except sa.exc.IntegrityError as exc:
            raise IntegrityError(str(exc.orig).strip()) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        result = self._run(sql, params)
        return [dict(row) for row in result.mappings()] if result.returns_rows else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._run(sql, params).rowcount)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self.dialect == "postgresql":
            if " RETURNING " not in sql.upper():
                sql = f"{sql.rstrip().rstrip(';')} RETURNING id"
            row = self._run(sql, params).first()
            assert row is not None, "an INSERT ... RETURNING returns its row"
            return int(row[0])
        return int(self._run(sql, params).lastrowid or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._connection.begin_nested():
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        yield

    def connect_plain(self) -> object:
        raise NotImplementedError("a connection lent by a schema transaction opens no others")

    def close(self) -> None:
        """The connection belongs to the schema transaction; nothing to close here."""
