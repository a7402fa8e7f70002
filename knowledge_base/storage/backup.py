"""Logical backups of the whole database, portable between SQLite and PostgreSQL.

A backup is a ``.tar.gz`` holding ``manifest.json`` and one JSON Lines file per
table (``tables/<name>.jsonl``, one JSON object per row). The tables and their
columns are those declared in :mod:`knowledge_base.storage.schema`; nothing is
read from the database's catalogue but which of them exist. The manifest records
the format version, when and from which dialect it was made, the database's
schema revision, the KB version, and per table its columns, keys, indexes, row
count, the highest id ever issued and the SHA-256 of its file.

Restore checks everything before it writes: the manifest, every checksum and row
count, every row's columns, and that the target can take them. It refuses a
target that already holds data unless asked to replace it, then writes every
table in ONE transaction, so an error leaves the target as it was. A backup of an
older schema revision (one without a revision was made by release 2c742a7, which
is revision 0001) is loaded into tables of that revision, built by the migrations
inside the same transaction, then upgraded to this code's; a backup of a newer
revision than this code's is refused. Id counters are set past the restored ids
(and past ids the source had issued and deleted, so a deleted entry's id is never
handed out again). Over a database workers were serving, every entry is marked
changed at a new KB version, so they re-read all of it.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from knowledge_base.storage.database import open_database
    >>> from knowledge_base.records import Entry
    >>> from knowledge_base.storage.store import SQLStore
    >>> source = SQLStore(":memory:")
    >>> _ = source.add(Entry(question="社保怎么查？"), author="editor1")
    >>> archive = Path(tempfile.mkdtemp()) / "kb.tar.gz"
    >>> backup_database(source.db, archive).tables["entries"]
    1
    >>> restore_database(open_database(":memory:"), archive).kb_version
    1
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from knowledge_base.errors import BackupRejected
from knowledge_base.storage import migrate, schema
from knowledge_base.storage.database import Database

FORMAT = "hotline-qa-backup"
# 2: the manifest records the schema revision (format 1, of release 2c742a7, had none: revision 0001).
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
# Which tables count as empty although they have rows: the store seeds meta on creation.
SEEDED_TABLE = "meta"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPES = ("INTEGER", "REAL", "TEXT", "BLOB")
_PAGE = 2000  # rows read per query while backing up
_PARAMS_PER_INSERT = 5000  # below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters


# -- what a table looks like -----------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column, described in the terms both dialects share."""

    name: str
    type: str  # INTEGER, REAL, TEXT or BLOB
    not_null: bool = False
    has_default: bool = False


@dataclass(frozen=True)
class Index:
    """A plain (column) index that is not a key."""

    name: str
    unique: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table's columns, keys and indexes: enough to create it again on either dialect.

    Defaults, CHECK constraints and foreign keys are not carried over (no table of hotline-qa has them);
    ``parents`` (the tables its foreign keys point at) only orders the writes.
    """

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()
    parents: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def restricted_to(self, present: set[str]) -> Table:
        """This table as a database of an older revision has it: only the ``present`` columns and their keys."""
        if all(c.name in present for c in self.columns):
            return self
        return dataclasses.replace(
            self,
            columns=tuple(c for c in self.columns if c.name in present),
            unique=tuple(u for u in self.unique if set(u) <= present),
            indexes=tuple(i for i in self.indexes if set(i.columns) <= present),
        )

    @property
    def numbered(self) -> bool:
        """True when the database numbers the ``id`` column (SQLite rowid alias, PostgreSQL sequence)."""
        return self.primary_key == ("id",) and any(c.name == "id" and c.type == "INTEGER" for c in self.columns)

    @classmethod
    def from_declared(cls, table: sa.Table) -> Table:
        """The description of a table of :mod:`knowledge_base.storage.schema`."""
        return cls(
            name=table.name,
            columns=tuple(
                Column(c.name, _portable_type(c.type), not c.nullable, c.server_default is not None)
                for c in table.columns
            ),
            primary_key=tuple(c.name for c in table.primary_key.columns),
            unique=tuple(
                sorted(
                    tuple(c.name for c in u.columns) for u in table.constraints if isinstance(u, sa.UniqueConstraint)
                )
            ),
            indexes=tuple(
                sorted(
                    (Index(str(i.name), bool(i.unique), tuple(c.name for c in i.columns)) for i in table.indexes),
                    key=str,
                )
            ),
            parents=tuple(sorted({fk.column.table.name for fk in table.foreign_keys})),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [
                {"name": c.name, "type": c.type, "not_null": c.not_null, "has_default": c.has_default}
                for c in self.columns
            ],
            "primary_key": list(self.primary_key),
            "unique": [list(u) for u in self.unique],
            "indexes": [{"name": i.name, "unique": i.unique, "columns": list(i.columns)} for i in self.indexes],
            "parents": list(self.parents),
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> Table:
        """Read a manifest's table description; raises ValueError or KeyError when it is malformed."""
        columns = tuple(
            Column(str(c["name"]), str(c["type"]), bool(c["not_null"]), bool(c.get("has_default", False)))
            for c in data["columns"]
        )
        table = cls(
            name=name,
            columns=columns,
            primary_key=tuple(str(c) for c in data["primary_key"]),
            unique=tuple(tuple(str(c) for c in u) for u in data["unique"]),
            indexes=tuple(
                Index(str(i["name"]), bool(i["unique"]), tuple(str(c) for c in i["columns"])) for i in data["indexes"]
            ),
            parents=tuple(str(p) for p in data.get("parents", ())),
        )
        names = table.column_names
        if not columns or len(set(names)) != len(names):
            raise ValueError("no columns, or a column named twice")
        mentioned = [
            *table.primary_key,
            *(c for u in table.unique for c in u),
            *(c for i in table.indexes for c in i.columns),
        ]
        for identifier in [name, *names, *(i.name for i in table.indexes), *mentioned]:
            if not _NAME.match(identifier):
                raise ValueError(f"{identifier!r} is not a plain SQL name")
        if set(mentioned) - set(names):
            raise ValueError(f"keys or indexes name unknown columns {sorted(set(mentioned) - set(names))}")
        bad_types = sorted({c.type for c in columns} - set(_TYPES))
        if bad_types:
            raise ValueError(f"column types {bad_types}; expected {list(_TYPES)}")
        return table


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cols(names: Iterable[str]) -> str:
    return ", ".join(_q(n) for n in names)


def _portable_type(declared: sa.types.TypeEngine[Any]) -> str:
    """INTEGER, REAL, TEXT or BLOB: the type a declared column has in both dialects' terms."""
    if isinstance(declared, sa.Integer):
        return "INTEGER"
    if isinstance(declared, sa.Float):
        return "REAL"
    if isinstance(declared, sa.LargeBinary):
        return "BLOB"
    return "TEXT"


def declared_tables() -> dict[str, Table]:
    """Every table of :mod:`knowledge_base.storage.schema`, parents before the tables that refer to them."""
    return {t.name: Table.from_declared(t) for t in schema.metadata.sorted_tables}


# -- backup ----------------------------------------------------------------------


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds: rows per table (in restore order), KB version, source dialect and schema revision."""

    path: Path
    dialect: str
    kb_version: int | None
    tables: dict[str, int]
    schema_revision: str

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def backup_database(db: Database, path: str | Path, *, progress: bool = False) -> BackupSummary:
    """Write every declared table of ``db`` to the archive ``path``, read in one consistent snapshot.

    Writers go on meanwhile. The archive appears only when complete (written aside, then renamed),
    and only its owner can read it: it holds phone numbers and password hashes. A database behind
    this code's schema can be backed up too (before ``hotline db upgrade``, say): the manifest records
    its revision, and a release 2c742a7 database, which may lack some tables, is recorded as 0001.

    Args:
        db: the database to back up.
        path: the ``.tar.gz`` to write; an existing file is replaced.
        progress: show a progress bar per table.

    Raises:
        BackupRejected: a newer hotline-qa upgraded the database (back it up with that release).
    """
    from tqdm import tqdm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hotline-backup-") as work, db.snapshot():
        found = migrate.status(db)
        if found.state == "ahead":
            raise BackupRejected(f"cannot back up: {found.error()}")
        revision = found.current or (migrate.RELEASE_REVISION if found.state == "unversioned" else found.head)
        present = migrate.table_names(db)
        # A database behind the code has the tables and columns of its own revision: back up those.
        tables = {
            name: table.restricted_to(migrate.column_names(db, name))
            for name, table in declared_tables().items()
            if name in present
        }
        kb_version = _kb_version(db, tables)
        entries = []
        for name, table in tables.items():
            file = Path(work) / f"{name}.jsonl"
            total = db.query_one(f"SELECT COUNT(*) AS n FROM {_q(name)}") if progress else None
            digest, rows = hashlib.sha256(), 0
            with file.open("wb") as out:
                bar = tqdm(total=total and total["n"], desc=f"backup {name}", unit="row", disable=not progress)
                for row in _read_rows(db, table):
                    line = json.dumps(
                        {c: _encode(row[c], name, c) for c in table.column_names},
                        ensure_ascii=False,
                        separators=(",", ":"),
                    ).encode("utf-8")
                    out.write(line + b"\n")
                    digest.update(line + b"\n")
                    rows += 1
                    bar.update()
                bar.close()
            entries.append(
                {
                    "name": name,
                    "file": f"tables/{name}.jsonl",
                    "rows": rows,
                    "sha256": digest.hexdigest(),
                    "last_id": _last_id(db, table),
                    **table.to_json(),
                }
            )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_dialect": db.dialect,
            "schema_revision": revision,
            "kb_version": kb_version,
            "tables": entries,
        }
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
                for entry in entries:
                    tar.add(Path(work) / f"{entry['name']}.jsonl", arcname=entry["file"], filter=_plain_member)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return BackupSummary(path, db.dialect, kb_version, {e["name"]: e["rows"] for e in entries}, revision)


def _read_rows(db: Database, table: Table) -> Iterator[dict[str, Any]]:
    columns = _cols(table.column_names)  # the declared ones, whatever else a table may have gained by hand
    if table.numbered:
        # Keyset pages: memory stays flat on a million-row answer log.
        last = None
        while True:
            where, args = ("", ()) if last is None else ("WHERE id > ? ", (last,))
            page = db.query(f"SELECT {columns} FROM {_q(table.name)} {where}ORDER BY id LIMIT {_PAGE}", args)
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1]["id"]
    order = _cols(table.primary_key or table.column_names)
    yield from db.query(f"SELECT {columns} FROM {_q(table.name)} ORDER BY {order}")


def _encode(value: Any, table: str, column: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise BackupRejected(f"table {table}, column {column}: cannot back up a value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"], validate=True)
    return value


def _kb_version(db: Database, tables: dict[str, Table]) -> int | None:
    if SEEDED_TABLE not in tables:
        return None
    row = db.query_one(f"SELECT value FROM {_q(SEEDED_TABLE)} WHERE name='kb_version'")
    return int(row["value"]) if row else None


def _last_id(db: Database, table: Table) -> int | None:
    """The highest id the database has handed out for ``table`` (deleted rows included), or None."""
    if not table.numbered:
        return None
    row = db.query_one(f"SELECT MAX(id) AS n FROM {_q(table.name)}")
    highest = int(row["n"]) if row and row["n"] is not None else 0
    if db.dialect == "sqlite":
        if db.query_one("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'"):
            seq = db.query_one("SELECT seq FROM sqlite_sequence WHERE name=?", (table.name,))
            highest = max(highest, int(seq["seq"]) if seq else 0)
    else:
        seq = db.query_one(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence(?, 'id')::regclass) AS n", (_q(table.name),)
        )
        highest = max(highest, int(seq["n"]) if seq and seq["n"] is not None else 0)
    return highest


def _plain_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


# -- restore ---------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreSummary:
    """What a restore wrote: rows per table, tables it created or emptied, and the restored KB version."""

    tables: dict[str, int]
    kb_version: int | None
    created: list[str]
    emptied: list[str]
    source_dialect: str
    backup_created_at: str
    schema_revision: str

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class _Part:
    table: Table
    rows: int
    last_id: int | None
    file: Path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the archive at ``path``, checked for format but not against its files.

    Raises:
        BackupRejected: not a readable hotline-qa backup.
    """
    with tempfile.TemporaryDirectory(prefix="hotline-restore-") as work:
        manifest, _ = _unpack(Path(path), Path(work))
    return manifest


def restore_database(
    db: Database, path: str | Path, *, replace: bool = False, progress: bool = False
) -> RestoreSummary:
    """Load the archive at ``path`` into ``db``: every table in one transaction, or nothing.

    The target may be brand new (its tables are created by the migrations) or at this code's
    schema revision. A backup of an older revision is loaded into tables of that revision and
    upgraded to this code's in the same transaction.

    Args:
        db: the target database.
        path: a ``.tar.gz`` written by :func:`backup_database` (or by release 2c742a7's), from either dialect.
        replace: empty every table of the target first (tables not in the backup stay empty);
            without it a target holding data is refused.
        progress: show a progress bar per table.

    Raises:
        BackupRejected: the archive is damaged, altered or of another format, made by a newer
            hotline-qa, its tables do not fit, the target holds data and ``replace`` is off, the
            target's schema is not this code's, or writing failed; the target is unchanged in every case.
    """
    from tqdm import tqdm

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="hotline-restore-") as work:
        manifest, files = _unpack(path, Path(work))
        revision = _revision(manifest)
        parts = _check_files(manifest, files)
        head = migrate.head_revision()
        if revision == head:
            _check_fits(parts, declared_tables())
        target = migrate.status(db)
        if not target.usable:
            raise BackupRejected(f"cannot restore into this database: {target.error()}")
        if not replace and target.state == "current":
            _check_empty(db, declared_tables())
        try:
            with migrate.schema_transaction(db) as tx:
                kb_version, emptied = _load(tx, parts, revision, replace=replace, progress=progress, bar=tqdm)
        except BackupRejected:
            raise
        except Exception as exc:
            raise BackupRejected(
                f"restore of {path} failed and was rolled back, the target is unchanged: {type(exc).__name__}: {exc}"
            ) from exc
    return RestoreSummary(
        tables={name: part.rows for name, part in parts.items()},
        kb_version=kb_version,
        created=[] if target.state == "current" else list(declared_tables()),
        emptied=[n for n in emptied if n not in parts],
        source_dialect=str(manifest["source_dialect"]),
        backup_created_at=str(manifest["created_at"]),
        schema_revision=revision,
    )


def _load(
    tx: migrate.SchemaTransaction,
    parts: dict[str, _Part],
    revision: str,
    *,
    replace: bool,
    progress: bool,
    bar: Callable[..., Any],
) -> tuple[int | None, list[str]]:
    """The writes of a restore, inside its one schema transaction; returns the KB version and the tables emptied."""
    db = tx.db
    if db.dialect == "sqlite":
        db.execute("PRAGMA defer_foreign_keys = ON")  # foreign keys checked at commit
    state = tx.status()  # again, under the lock
    if state.state not in ("current", "new"):
        raise BackupRejected(f"cannot restore into this database: {state.error()}")
    declared = declared_tables()
    served = state.state == "current" and bool(db.query_one("SELECT id FROM entries LIMIT 1"))
    replaced_version = (_kb_version(db, declared) or 0) if served else 0
    replaced_ids = [int(r["id"]) for r in db.query("SELECT id FROM entries")] if served else []
    emptied: list[str] = []
    if state.state == "current" and revision != state.head:
        # The backup's rows need the tables of its own revision: rebuild them (the target was checked
        # empty, or is being replaced), then let the migrations carry the rows to this code's.
        emptied = list(declared) if replace else []
        tx.drop_all()
    if state.state == "new" or revision != state.head:
        tx.upgrade(revision)
        _empty(db, list(parts))  # the first revision seeds meta; the backup brings its own rows
    else:
        emptied = _empty(db, [n for n in declared if replace or n in parts])
    for name, part in parts.items():
        progress_bar = bar(total=part.rows, desc=f"restore {name}", unit="row", disable=not progress)
        _insert_rows(db, part, progress_bar.update)
        progress_bar.close()
    if revision != state.head:
        tx.upgrade("head")
    _set_counters(db, declared, parts)
    if served and "entries" in parts:
        # Workers were serving the replaced data: move every one of them onto the restored entries.
        from knowledge_base.storage.store import SQLStore

        SQLStore(db).mark_restored(replaced_ids=replaced_ids, replaced_version=replaced_version)
    return _kb_version(db, declared), emptied


def _revision(manifest: dict[str, Any]) -> str:
    """The backup's schema revision, checked against those this code knows."""
    revision = manifest.get("schema_revision", migrate.RELEASE_REVISION)  # format 1: release 2c742a7
    if not isinstance(revision, str):
        raise BackupRejected(f"the manifest's schema_revision {revision!r} is not a revision; the archive is damaged")
    if revision not in migrate.known_revisions():
        raise BackupRejected(
            f"the backup has schema revision {revision}, which this hotline-qa (revision "
            f"{migrate.head_revision()}) does not know: a newer release made it; restore it with that release"
        )
    return revision


def _unpack(path: Path, work: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Copy the archive's members into ``work`` (never by their own names) and parse the manifest."""
    files: dict[str, Path] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for number, member in enumerate(tar):
                if not member.isfile():
                    raise BackupRejected(f"{path}: member {member.name!r} is not a plain file; not a hotline backup")
                if member.name in files:
                    raise BackupRejected(f"{path}: member {member.name!r} appears twice; the archive was altered")
                source = tar.extractfile(member)
                assert source is not None  # a plain file always has content
                files[member.name] = work / f"{number}.part"
                with source, files[member.name].open("wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
    except BackupRejected:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupRejected(f"{path} is not a readable .tar.gz backup: {exc}") from exc
    if MANIFEST not in files:
        raise BackupRejected(f"{path} has no {MANIFEST}; it is not a hotline-qa backup")
    try:
        manifest = json.loads(files[MANIFEST].read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupRejected(f"{path}: {MANIFEST} is not valid JSON ({exc}); the archive is damaged") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupRejected(f"{path} is not a hotline-qa backup (its manifest's format is not {FORMAT!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise BackupRejected(
            f"{path} has backup format version {version!r}; this hotline-qa reads versions 1 to {FORMAT_VERSION} "
            "(a newer version made it: restore with that version)"
        )
    for key, kind in (("created_at", str), ("source_dialect", str), ("tables", list)):
        if not isinstance(manifest.get(key), kind):
            raise BackupRejected(f"{path}: the manifest lacks {key!r}; the archive is damaged")
    return manifest, files


def _check_files(manifest: dict[str, Any], files: dict[str, Path]) -> dict[str, _Part]:
    """Every listed table's description, checksum, row count and rows; and no file that is not listed."""
    parts: dict[str, _Part] = {}
    for entry in manifest["tables"]:
        try:
            name = str(entry["name"])
            table = Table.from_json(name, entry)
            rows, digest, file_name = int(entry["rows"]), str(entry["sha256"]), str(entry["file"])
            last_id = None if entry.get("last_id") is None else int(entry["last_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupRejected(f"the manifest's table entry {entry!r:.200} is malformed: {exc}") from exc
        if name in parts or file_name != f"tables/{name}.jsonl":
            raise BackupRejected(f"the manifest lists table {name} twice or under another file ({file_name})")
        if file_name not in files:
            raise BackupRejected(f"{file_name} is listed in the manifest but missing from the archive")
        _check_table_file(table, files[file_name], file_name, rows, digest)
        parts[name] = _Part(table, rows, last_id, files[file_name])
    extra = sorted(set(files) - {MANIFEST} - {f"tables/{n}.jsonl" for n in parts})
    if extra:
        raise BackupRejected(f"the archive holds files its manifest does not list: {extra}; it was altered")
    meta = parts.get(SEEDED_TABLE)
    if meta is not None and "name" in meta.table.column_names:
        stored = next((r.get("value") for r in _rows(meta) if r.get("name") == "kb_version"), None)
        if stored is not None and str(stored) != str(manifest.get("kb_version")):
            raise BackupRejected(
                f"the manifest says KB version {manifest.get('kb_version')} but the meta table says {stored}; "
                "the archive was altered"
            )
    return parts


def _check_table_file(table: Table, file: Path, file_name: str, rows: int, digest: str) -> None:
    sha = hashlib.sha256()
    with file.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    if sha.hexdigest() != digest:
        raise BackupRejected(f"{file_name}: checksum mismatch; the archive was damaged or altered")
    columns = set(table.column_names)
    count = 0
    with file.open("rb") as f:
        for count, line in enumerate(f, start=1):
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise BackupRejected(f"{file_name}, line {count}: not a JSON object ({exc})") from exc
            if not isinstance(row, dict) or set(row) != columns:
                got = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise BackupRejected(
                    f"{file_name}, line {count}: columns {got} do not match the manifest's {sorted(columns)}"
                )
    if count != rows:
        raise BackupRejected(f"{file_name}: {count} rows, the manifest says {rows}; the archive is incomplete")


def _rows(part: _Part) -> Iterator[dict[str, Any]]:
    with part.file.open("rb") as f:
        for line in f:
            yield json.loads(line)


def _check_fits(parts: dict[str, _Part], target: dict[str, Table]) -> None:
    """The backup's tables and columns against the declared ones (a backup of this code's revision)."""
    problems = []
    for name, part in parts.items():
        have = target.get(name)
        if have is None:
            problems.append(f"table {name} is not a table of hotline-qa")
            continue
        missing = sorted(set(part.table.column_names) - set(have.column_names))
        if missing:
            problems.append(f"table {name}: the target has no column(s) {missing}")
        required = [
            c.name
            for c in have.columns
            if c.not_null
            and not c.has_default
            and c.name not in part.table.column_names
            and c.name not in have.primary_key
        ]
        if required:
            problems.append(f"table {name}: the target requires column(s) {required}, which the backup lacks")
    if problems:
        raise BackupRejected(
            "the backup does not fit this hotline-qa's tables although it has the same schema revision: "
            + "; ".join(problems)
        )


def _check_empty(db: Database, target: dict[str, Table]) -> None:
    filled = []
    for name in target:
        if name == SEEDED_TABLE:
            # The store seeds kb_version 0; any write since makes it non-zero.
            version = _kb_version(db, target)
            if version:
                filled.append(f"{name} (KB version {version})")
            continue
        row = db.query_one(f"SELECT COUNT(*) AS n FROM {_q(name)}")
        if row and row["n"]:
            filled.append(f"{name} ({row['n']} row(s))")
    if filled:
        raise BackupRejected(
            f"the target database is not empty: {', '.join(filled)}. Restore into an empty database, "
            "or pass --replace to overwrite everything in it"
        )


def _empty(db: Database, names: list[str]) -> list[str]:
    for name in reversed(names):  # children before the tables they refer to
        db.execute(f"DELETE FROM {_q(name)}")
    return names


def _insert_rows(db: Database, part: _Part, advance: Callable[[int], object]) -> None:
    columns = part.table.column_names
    per_statement = max(1, _PARAMS_PER_INSERT // len(columns))
    head = f"INSERT INTO {_q(part.table.name)} ({_cols(columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    batch: list[Any] = []
    count = 0

    def flush() -> None:
        if count:
            db.execute(head + ", ".join([one] * count), batch)
            advance(count)

    for row in _rows(part):
        batch.extend(_decode(row[c]) for c in columns)
        count += 1
        if count == per_statement:
            flush()
            batch, count = [], 0
    flush()


def _set_counters(db: Database, target: dict[str, Table], parts: dict[str, _Part]) -> None:
    """Set each id counter past the restored ids and past the ids the source had already issued."""
    has_sequence_table = db.dialect == "sqlite" and db.query_one(
        "SELECT name FROM sqlite_master WHERE name='sqlite_sequence'"
    )
    for name, table in target.items():
        if not table.numbered:
            continue
        row = db.query_one(f"SELECT MAX(id) AS n FROM {_q(name)}")
        part = parts.get(name)
        highest = max(int(row["n"]) if row and row["n"] is not None else 0, (part.last_id or 0) if part else 0)
        if db.dialect == "sqlite":
            if has_sequence_table:
                db.execute("DELETE FROM sqlite_sequence WHERE name=?", (name,))
                if highest:
                    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, highest))
        elif highest:
            db.query("SELECT setval(pg_get_serial_sequence(?, 'id'), ?, true)", (_q(name), highest))
        else:
            db.query("SELECT setval(pg_get_serial_sequence(?, 'id'), 1, false)", (_q(name),))
