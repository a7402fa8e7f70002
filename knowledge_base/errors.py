"""The knowledge base's exception tree.

Callers catch :class:`KnowledgeBaseError` for "anything the knowledge base
refused"; the subclasses say what to do about it.
"""

from __future__ import annotations


class KnowledgeBaseError(Exception):
    """Base class of every error the knowledge base raises on purpose."""


class EntryNotFound(KnowledgeBaseError, KeyError):
    """No entry (or revision) with the given id exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "entry not found"


class StaleVersion(KnowledgeBaseError):
    """An update was based on an older version of the entry than the stored one.

    Someone else saved the entry in between; reload it and apply the change again.
    """

    def __init__(self, entry_id: int, expected: int, actual: int, message: str = "") -> None:
        super().__init__(
            message
            or f"entry {entry_id} was changed by someone else: you edited version "
            f"{expected}, the stored version is {actual}; reload it and apply your change again"
        )
        self.entry_id = entry_id
        self.expected = expected
        self.actual = actual


class InvalidEntry(KnowledgeBaseError, ValueError):
    """A record failed validation; the message names the field and the allowed values."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ImportRejected(KnowledgeBaseError):
    """An import file had problems; nothing was written.

    ``problems`` lists every bad cell as :class:`ImportProblem`.
    """

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"import rejected, nothing was written ({len(problems)} problem(s)):\n{shown}{more}")


class ImportProblem:
    """One bad cell (or row, or file) of an import: where it is and what is wrong."""

    __slots__ = ("column", "file", "message", "row")

    def __init__(self, file: str, row: int | None, column: str | None, message: str) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.message = message

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ImportProblem({self.file!r}, {self.row!r}, {self.column!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImportProblem) and (self.file, self.row, self.column, self.message) == (
            other.file,
            other.row,
            other.column,
            other.message,
        )


class IndexMismatch(KnowledgeBaseError):
    """A persisted index does not belong to this model or knowledge base version."""


class ModelNotBuilt(KnowledgeBaseError):
    """The embedding model folder is missing; run ``hotline model build``."""


class DatabaseError(KnowledgeBaseError):
    """The database cannot be used: the server is unreachable, the handle was closed, or every connection is busy."""


class SchemaOutdated(DatabaseError):
    """The database's schema is older than this code's (or from before schema revisions); run ``hotline db upgrade``.

    ``current`` is the database's revision (None: the tables of a release without revisions), ``head`` this code's.
    """

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        super().__init__(message)
        self.current = current
        self.head = head


class SchemaTooNew(DatabaseError):
    """The database's schema revision is unknown to this code: a newer hotline-qa upgraded it."""

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        super().__init__(message)
        self.current = current
        self.head = head


class BackupRejected(KnowledgeBaseError):
    """A backup archive cannot be restored: damaged, tampered with, of another format, or the target is not ready.

    Nothing was written to the target database.
    """
