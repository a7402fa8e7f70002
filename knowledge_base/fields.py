"""The one description of an entry's fields: names, Chinese labels, header aliases, kinds, list rules.

Import, export and the admin's edit form all read this module, so a field is
named, labelled and split the same way everywhere: the Chinese label is both
the export's column header and the form's label, and a list field's text is
split by one rule, whether it came from a spreadsheet cell or a form textarea.

List rule (per field, see :attr:`Field.separators`): items are separated by
line breaks, and for tags and regions also by ``,`` ``，`` ``、`` ``;`` ``；``.
Items are trimmed and blank ones dropped. Lists are joined with a line break
(export cells and form textareas), so export -> import and form -> save -> form
give the same items back. Similar questions split on line breaks only: a
question may well contain ``，`` or ``、`` (the sample data does), a tag or a
region name never does, and staff type tags as ``社保，转移``.

Example:
    >>> FIELDS_BY_NAME["tags"].split("社保，转移\\n医保")
    ('社保', '转移', '医保')
    >>> FIELDS_BY_NAME["similar_questions"].split("社保，怎么转移？\\n转社保")
    ('社保，怎么转移？', '转社保')
    >>> field_for_header("标准问 *")
    'question'
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from knowledge_base.plain.aspects import ASPECTS_BY_NAME, GUIDE_ORDER

__all__ = [
    "COLUMNS",
    "FIELDS",
    "FIELDS_BY_NAME",
    "GUIDE_FIELDS",
    "LIST_SEPARATORS",
    "Field",
    "Kind",
    "field_for_header",
    "label",
    "parse_date",
]

LIST_SEPARATORS = (",", "，", "、", ";", "；")
"""Separators of short list items (tags, regions) besides the line break."""

_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


class Kind(enum.StrEnum):
    """What a field holds, which decides how its text is read and which form control shows it."""

    TEXT = "text"
    """One line of text."""
    MULTILINE = "multiline"
    """Text that may span lines (the answer, the service-guide aspects)."""
    LIST = "list"
    """Several short texts, one cell or textarea (split by :meth:`Field.split`)."""
    DATE = "date"
    """A calendar day, written ``YYYY-MM-DD`` (``/`` or ``.`` also read)."""
    ENUM = "enum"
    """One of a fixed set of values (the status)."""
    STORED = "stored"
    """Kept by the store (version, author, time): exported for the reader, ignored on import, not in the form."""


@dataclass(frozen=True)
class Field:
    """One field of an entry as files and forms show it.

    Attributes:
        name: the key in :meth:`Entry.to_dict <knowledge_base.records.Entry.to_dict>`,
            the English column header and the form's input name.
        label: the Chinese name: export column header and form label.
        kind: what the field holds.
        aliases: further headers (or JSON/YAML keys) accepted on import.
        separators: for lists, item separators besides the line break.
        hint: the form's help text under the label, empty for none.
    """

    name: str
    label: str
    kind: Kind
    aliases: tuple[str, ...] = ()
    separators: tuple[str, ...] = ()
    hint: str = ""

    def __post_init__(self) -> None:
        if self.separators and self.kind is not Kind.LIST:
            raise ValueError(f"field {self.name}: only list fields have separators, {self.name} is {self.kind}")
        if "\n" in self.separators:
            raise ValueError(f"field {self.name}: the line break always separates; do not list it")

    @property
    def imported(self) -> bool:
        """False for the store's own fields, which import ignores."""
        return self.kind is not Kind.STORED

    def split(self, text: str) -> tuple[str, ...]:
        """A list field's text as its items: split on line breaks and :attr:`separators`, trimmed, blanks dropped.

        Raises:
            ValueError: this is not a list field.
        """
        self._need_list()
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        for separator in self.separators:
            text = text.replace(separator, "\n")
        return tuple(item for item in (part.strip() for part in text.split("\n")) if item)

    def items(self, values: Iterable[str]) -> tuple[str, ...]:
        """Items given one by one (a JSON or YAML list), each split by :meth:`split` as if typed in one cell.

        So a list read from any format follows the same rule: an item holding a separator becomes two.
        """
        return tuple(item for value in values for item in self.split(value))

    def join(self, items: Iterable[str]) -> str:
        """A list field's items as one text, one per line: the inverse of :meth:`split` for split items.

        Raises:
            ValueError: this is not a list field.
        """
        self._need_list()
        return "\n".join(items)

    def _need_list(self) -> None:
        if self.kind is not Kind.LIST:
            raise ValueError(f"field {self.name} is {self.kind}, not a list")


GUIDE_FIELDS: tuple[Field, ...] = tuple(
    Field(name, ASPECTS_BY_NAME[name].label, Kind.MULTILINE) for name in GUIDE_ORDER
)
"""The service-guide aspects (办事指南) of :mod:`knowledge_base.plain.aspects`, in guide order: optional text fields.

They follow the answer, which they complete: in a spreadsheet the reader finds what to bring and where to go
next to the answer, before the columns about who is responsible and where the entry applies."""

FIELDS: tuple[Field, ...] = (
    Field("id", "编号", Kind.TEXT),
    Field("question", "标准问", Kind.TEXT, aliases=("标准问题",)),
    Field("similar_questions", "相似问法", Kind.LIST, hint="每行一个"),
    Field("answer", "答案", Kind.MULTILINE),
    *GUIDE_FIELDS,
    Field("department", "承办单位", Kind.TEXT),
    Field("category", "分类", Kind.TEXT),
    Field(
        "regions",
        "适用地区",
        Kind.LIST,
        separators=LIST_SEPARATORS,
        hint="每行一个（也可用逗号、顿号分隔），如 广东省/深圳市；留空=全部",
    ),
    Field("policy_title", "政策依据", Kind.TEXT, aliases=("政策文件",)),
    Field("policy_number", "文号", Kind.TEXT),
    Field("policy_url", "链接", Kind.TEXT, aliases=("政策链接",)),
    Field("effective_date", "生效日期", Kind.DATE),
    Field("expiry_date", "失效日期", Kind.DATE),
    Field("status", "状态", Kind.ENUM),
    Field("tags", "标签", Kind.LIST, separators=LIST_SEPARATORS, hint="每行一个（也可用逗号、顿号分隔）"),
    Field("version", "版本", Kind.STORED),
    Field("updated_by", "更新人", Kind.STORED),
    Field("updated_at", "更新时间", Kind.STORED),
)
"""Every field, in export order: the keys of :meth:`Entry.to_dict <knowledge_base.records.Entry.to_dict>`."""

FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
"""The fields by :attr:`Field.name`."""

COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS)
"""The field names in export order."""


def _header_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for f in FIELDS:
        for header in (f.name, f.label, *f.aliases):
            if table.setdefault(header, f.name) != f.name:
                raise ValueError(f"header {header!r} names both {table[header]} and {f.name}")
    return table


_HEADERS = _header_table()


def field_for_header(header: object) -> str | None:
    """The field name a column header (or JSON/YAML key) means, or None when it names no field.

    English names are case-insensitive; a trailing required-mark ``*`` or ``＊`` and spaces are ignored.
    """
    text = "" if header is None else str(header)
    text = text.strip().rstrip("*＊").strip()
    return _HEADERS.get(text) or _HEADERS.get(text.lower())


def label(name: str) -> str:
    """The Chinese label of field ``name``.

    Raises:
        KeyError: no such field.
    """
    return FIELDS_BY_NAME[name].label


def parse_date(text: str) -> date | None:
    """A date field's text as a date: ``YYYY-MM-DD`` (``/`` or ``.`` between, one-digit month/day too); blank is None.

    Raises:
        ValueError: not such a date, or no such day; the message quotes the text.
    """
    stripped = text.strip()
    if not stripped:
        return None
    match = _DATE_RE.match(stripped)
    if match:
        try:
            return date(*(int(g) for g in match.groups()))
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a date (write YYYY-MM-DD)")
