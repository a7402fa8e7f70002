"""Records of the knowledge base: entries, revisions and search results.

Records are plain frozen dataclasses that validate themselves, so a bad value
is refused where it is made, with the field name in the message.

Example:
    >>> e = Entry(question="社保怎么转移？", answer="登录广东政务服务网办理。",
    ...           similar_questions=("社保关系转移怎么办",), department="市社保局")
    >>> e.phrasings()
    ('社保怎么转移？', '社保关系转移怎么办')
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from knowledge_base.errors import InvalidEntry
from knowledge_base.fields import FIELDS
from knowledge_base.plain.aspects import ASPECTS_BY_NAME, GUIDE_ORDER, Aspect

MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 20_000
MAX_SIMILAR_QUESTIONS = 200
MAX_ASPECT_CHARS = 5000
"""Longest text of one service-guide aspect: a full list of materials fits; a pasted document does not."""
_KEY_RE = re.compile(r"^[\w.:/-]{1,64}$")
# Control characters, and lone UTF-16 surrogates (a JSON "\ud800" escape): no database can store the latter.
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_REGION_SUFFIXES = ("特别行政区", "自治区", "自治州", "省", "市", "区", "县")


class Status(enum.StrEnum):
    """Life cycle of an entry: only ``published`` entries are ever served to citizens."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"

    @classmethod
    def parse(cls, value: str | Status) -> Status:
        if isinstance(value, Status):
            return value
        text = str(value).strip().lower()
        for status in cls:
            if text in (status.value, status.name.lower(), STATUS_NAMES[status]):
                return status
        allowed = "、".join(STATUS_NAMES[s] for s in cls)
        raise InvalidEntry("status", f"“{value}”不是有效状态；可填：{allowed}（或 {', '.join(s.value for s in cls)}）")


STATUS_NAMES: dict[Status, str] = {
    Status.DRAFT: "草稿",
    Status.IN_REVIEW: "待审核",
    Status.PUBLISHED: "已发布",
    Status.ARCHIVED: "已归档",
}


_LEVEL_NAMES = {"province": "省", "city": "市", "district": "区县"}


def _short(name: str) -> str:
    """``深圳市`` -> ``深圳``: region names compare without their administrative suffix."""
    for suffix in _REGION_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Region:
    """Where an entry applies: a province, optionally narrowed to a city and a district.

    Written as ``广东省/深圳市/南山区``; empty levels mean "all of the level above".
    """

    province: str = ""
    city: str = ""
    district: str = ""

    def __post_init__(self) -> None:
        for level in ("province", "city", "district"):
            value = getattr(self, level)
            if not isinstance(value, str) or "/" in value or len(value) > 40 or _BAD_CHARS.search(value):
                raise InvalidEntry("regions", f"“{value}”不是有效的{_LEVEL_NAMES[level]}名称")
            object.__setattr__(self, level, value.strip())
        if self.district and not self.city:
            raise InvalidEntry("regions", "填写区县时必须同时填写城市：请写成 省/市/区")

    @classmethod
    def parse(cls, text: str) -> Region:
        parts = [p.strip() for p in str(text).strip().strip("/").split("/")]
        if not parts or not parts[0] or len(parts) > 3:
            raise InvalidEntry("regions", f"“{text}”不是有效地区；请写成 省、省/市 或 省/市/区")
        return cls(*parts)

    def __str__(self) -> str:
        return "/".join(p for p in (self.province, self.city, self.district) if p)

    def covers(self, where: Region) -> bool:
        """True when an entry for this region applies to a citizen in ``where``.

        Levels the citizen did not give are not held against the entry: an entry
        for 深圳市 applies to a citizen who only said 广东省 (the bot may ask), but
        never to one in 广州市.
        """
        for mine, theirs in ((self.province, where.province), (self.city, where.city), (self.district, where.district)):
            if mine and theirs and _short(mine) != _short(theirs):
                return False
        return True


@dataclass(frozen=True)
class PolicyBasis:
    """The document an answer rests on: title, 文号 and a link."""

    title: str = ""
    number: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        if self.url and not re.match(r"^https?://[^\s<>\"']+$", self.url):
            raise InvalidEntry("policy_url", f"“{self.url}”不是以 http:// 或 https:// 开头的链接")
        if len(self.title) > 300 or len(self.number) > 100:
            raise InvalidEntry("policy", "政策依据或文号太长（政策依据最多 300 个字，文号最多 100 个字）")
        if _BAD_CHARS.search(self.title + self.number + self.url):
            raise InvalidEntry("policy", "政策依据、文号或链接含有控制字符或无效字符，请删除后再保存")

    def __bool__(self) -> bool:
        return bool(self.title or self.number or self.url)


@dataclass(frozen=True)
class ServiceGuide:
    """The service guide (办事指南) of an entry: one optional plain text per aspect.

    The attribute names are the aspect names of :mod:`knowledge_base.plain.aspects` and the
    keys of :meth:`Entry.to_dict`; empty text means the entry says nothing about that aspect.

    Example:
        >>> g = ServiceGuide(materials="身份证原件", online="可在粤省事办理")
        >>> [(a.label, text) for a, text in g.items()]
        [('申请材料', '身份证原件'), ('网上办理', '可在粤省事办理')]
        >>> g.get("fees"), bool(ServiceGuide())
        ('', False)
    """

    conditions: str = ""
    materials: str = ""
    procedure: str = ""
    time_limit: str = ""
    fees: str = ""
    location: str = ""
    enquiry_phone: str = ""
    online: str = ""

    def __post_init__(self) -> None:
        for name in GUIDE_ORDER:
            label = ASPECTS_BY_NAME[name].label
            value = getattr(self, name)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise InvalidEntry(name, f"「{label}」必须是文字，而不是 {type(value).__name__}")
            text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
            if len(text) > MAX_ASPECT_CHARS:
                raise InvalidEntry(name, f"「{label}」有 {len(text)} 个字，最多 {MAX_ASPECT_CHARS} 个字")
            if _BAD_CHARS.search(text):
                raise InvalidEntry(name, f"「{label}」含有控制字符或无效字符，请删除后再保存")
            object.__setattr__(self, name, text)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> ServiceGuide:
        """The guide from a mapping keyed by aspect name; other keys are ignored, missing ones are empty."""
        return cls(**{name: data.get(name) or "" for name in GUIDE_ORDER})  # type: ignore[arg-type]

    def get(self, name: str) -> str:
        """The text of aspect ``name`` ("" when the entry says nothing about it).

        Raises:
            KeyError: ``name`` is not an aspect; the message lists the aspects.
        """
        if name not in ASPECTS_BY_NAME:
            raise KeyError(f"{name!r} is not an aspect; aspects: {', '.join(GUIDE_ORDER)}")
        text: str = getattr(self, name)
        return text

    def items(self) -> Iterator[tuple[Aspect, str]]:
        """The aspects that have text, in guide order, each with its text."""
        for name in GUIDE_ORDER:
            text = self.get(name)
            if text:
                yield ASPECTS_BY_NAME[name], text

    def as_dict(self) -> dict[str, str]:
        """Every aspect by name, in guide order, empty ones included."""
        return {name: self.get(name) for name in GUIDE_ORDER}

    def __bool__(self) -> bool:
        return any(self.get(name) for name in GUIDE_ORDER)


def _clean_text(value: object, field_name: str, limit: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidEntry(field_name, f"必须是文字，而不是 {type(value).__name__}")
    text = value.strip()
    if required and not text:
        raise InvalidEntry(field_name, "不能为空")
    if len(text) > limit:
        raise InvalidEntry(field_name, f"有 {len(text)} 个字，最多 {limit} 个字")
    if _BAD_CHARS.search(text):
        raise InvalidEntry(field_name, "含有控制字符或无效字符，请删除后再保存")
    return text


@dataclass(frozen=True)
class Entry:
    """One curated question-and-answer pair of the knowledge base.

    ``key`` is the knowledge team's own id (编号, e.g. ``GD-SB-001``): unique, kept
    by import and export, and the ``id`` column of every file format. ``id`` is
    the store's internal number (also the FAISS id), None until stored.
    ``version`` counts the saves of this entry and guards against lost updates
    (optimistic concurrency).
    """

    question: str
    answer: str = ""
    similar_questions: tuple[str, ...] = ()
    department: str = ""
    category: str = ""
    regions: tuple[Region, ...] = ()
    policy: PolicyBasis = field(default_factory=PolicyBasis)
    guide: ServiceGuide = field(default_factory=ServiceGuide)
    effective_date: date | None = None
    expiry_date: date | None = None
    status: Status = Status.PUBLISHED
    tags: tuple[str, ...] = ()
    key: str = ""
    id: int | None = None
    version: int = 0
    updated_by: str = ""
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "question", _clean_text(self.question, "question", MAX_QUESTION_CHARS, required=True))
        set_(self, "answer", _clean_text(self.answer, "answer", MAX_ANSWER_CHARS, required=False))
        set_(self, "department", _clean_text(self.department, "department", 100, required=False))
        set_(self, "category", _clean_text(self.category, "category", 100, required=False))
        set_(self, "updated_by", _clean_text(self.updated_by, "updated_by", 100, required=False))
        similar = _unique(
            _clean_text(q, "similar_questions", MAX_QUESTION_CHARS, required=True) for q in self.similar_questions
        )
        similar = tuple(q for q in similar if q != self.question)
        if len(similar) > MAX_SIMILAR_QUESTIONS:
            raise InvalidEntry("similar_questions", f"有 {len(similar)} 个相似问法，最多 {MAX_SIMILAR_QUESTIONS} 个")
        set_(self, "similar_questions", similar)
        set_(self, "tags", _unique(_clean_text(t, "tags", 50, required=True) for t in self.tags))
        regions = tuple(r if isinstance(r, Region) else Region.parse(r) for r in self.regions)
        set_(self, "regions", tuple(dict.fromkeys(regions)))
        if not isinstance(self.policy, PolicyBasis):
            raise InvalidEntry("policy", "政策依据的格式有误")
        if not isinstance(self.guide, ServiceGuide):
            raise InvalidEntry("guide", "办事指南的格式有误")
        set_(self, "status", Status.parse(self.status))
        for name in ("effective_date", "expiry_date"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                set_(self, name, value.date())
            elif value is not None and not isinstance(value, date):
                raise InvalidEntry(name, f"“{value}”不是日期（请写成 YYYY-MM-DD）")
        if self.effective_date and self.expiry_date and self.expiry_date < self.effective_date:
            raise InvalidEntry("expiry_date", f"失效日期 {self.expiry_date} 早于生效日期 {self.effective_date}")
        key = "" if self.key is None else str(self.key).strip()
        if key and not _KEY_RE.match(key):
            raise InvalidEntry("id", f"“{key}”不是有效编号：只能用 1-64 个字母、数字或 - _ . : /")
        set_(self, "key", key)
        if self.id is not None and (not isinstance(self.id, int) or self.id <= 0):
            raise InvalidEntry("id", f"内部编号必须是正整数，而不是 {self.id!r}")
        if not isinstance(self.version, int) or self.version < 0:
            raise InvalidEntry("version", f"版本必须是不小于 0 的整数，而不是 {self.version!r}")

    def phrasings(self) -> tuple[str, ...]:
        """The standard question followed by its similar questions: everything the index embeds."""
        return (self.question, *self.similar_questions)

    def in_effect(self, today: date) -> bool:
        """Published, already effective and not yet expired on ``today``."""
        if self.status is not Status.PUBLISHED:
            return False
        if self.effective_date and self.effective_date > today:
            return False
        return not (self.expiry_date and self.expiry_date < today)

    def applies_to(self, where: Region | None) -> bool:
        """True when the entry has no regions (applies everywhere) or one covers ``where``."""
        if where is None or not self.regions:
            return True
        return any(r.covers(where) for r in self.regions)

    def replace(self, **changes: object) -> Entry:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def content(self) -> dict[str, object]:
        """The curated fields as plain JSON-ready data (no id, version or audit fields)."""
        return {
            "question": self.question,
            "similar_questions": list(self.similar_questions),
            "answer": self.answer,
            **self.guide.as_dict(),
            "department": self.department,
            "category": self.category,
            "regions": [str(r) for r in self.regions],
            "policy_title": self.policy.title,
            "policy_number": self.policy.number,
            "policy_url": self.policy.url,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "expiry_date": self.expiry_date.isoformat() if self.expiry_date else None,
            "status": self.status.value,
            "tags": list(self.tags),
        }

    def to_dict(self) -> dict[str, object]:
        """Every field as JSON-ready data, the inverse of :meth:`from_dict`.

        ``id`` here is the entry's :attr:`key`, as in every import/export format. The keys come
        in the order of :data:`knowledge_base.fields.FIELDS`, which is the export's column order.
        """
        values = {
            "id": self.key,
            **self.content(),
            "version": self.version,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(timespec="seconds") if self.updated_at else None,
        }
        return {f.name: values[f.name] for f in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Entry:
        """Build an entry from :meth:`to_dict` output (dates as ISO strings)."""

        def as_date(name: str) -> date | None:
            value = data.get(name)
            if value in (None, ""):
                return None
            if isinstance(value, date):
                return value
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise InvalidEntry(name, f"“{value}”不是日期（请写成 YYYY-MM-DD）") from None

        updated_at = data.get("updated_at")
        return cls(
            key=str(data.get("id") or ""),
            question=data.get("question"),  # type: ignore[arg-type]
            answer=data.get("answer") or "",  # type: ignore[arg-type]
            similar_questions=tuple(data.get("similar_questions") or ()),  # type: ignore[arg-type]
            department=data.get("department") or "",  # type: ignore[arg-type]
            category=data.get("category") or "",  # type: ignore[arg-type]
            regions=tuple(Region.parse(str(r)) for r in (data.get("regions") or ())),  # type: ignore[attr-defined]
            policy=PolicyBasis(
                title=str(data.get("policy_title") or ""),
                number=str(data.get("policy_number") or ""),
                url=str(data.get("policy_url") or ""),
            ),
            guide=ServiceGuide.from_mapping(data),  # content stored before the guide existed has no such keys
            effective_date=as_date("effective_date"),
            expiry_date=as_date("expiry_date"),
            status=Status.parse(data.get("status") or Status.PUBLISHED),  # type: ignore[arg-type]
            tags=tuple(data.get("tags") or ()),  # type: ignore[arg-type]
            version=int(data.get("version") or 0),  # type: ignore[call-overload]
            updated_by=str(data.get("updated_by") or ""),
            updated_at=datetime.fromisoformat(str(updated_at)) if updated_at else None,
        )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Revision:
    """One saved change of an entry: who, when, and the entry before and after.

    ``before`` is None for the creation; ``after`` is None for a deletion.
    """

    id: int
    entry_id: int
    kb_version: int
    author: str
    created_at: datetime
    action: str
    before: Entry | None
    after: Entry | None


class Decision(enum.StrEnum):
    """What a search concluded: answer with one entry, ask which one, or hand over."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    NO_ANSWER = "no_answer"


@dataclass(frozen=True)
class Hit:
    """One ranked entry of a search, with the scores that placed it."""

    entry: Entry
    score: float
    dense: float
    lexical: float
    matched_phrasing: str

    @property
    def entry_id(self) -> int:
        assert self.entry.id is not None
        return self.entry.id


@dataclass(frozen=True)
class SearchResult:
    """A search's decision, its ranked hits and everything needed to reproduce it.

    ``offered`` is how many of the top hits the decision offers, as
    :func:`~knowledge_base.search.ranking.decide` counted them: 1 for ``answer``, the
    entries within ``clarify_window`` of the best (at most ``clarify_max``) for
    ``clarify``, 0 for ``no_answer``.
    """

    query: str
    normalised: str
    decision: Decision
    hits: tuple[Hit, ...]
    reason: str
    kb_version: int
    thresholds: dict[str, float]
    tokens: tuple[str, ...] = ()
    truncated: bool = False
    offered: int = field(kw_only=True)

    def __post_init__(self) -> None:
        expected = {Decision.ANSWER: "1", Decision.NO_ANSWER: "0"}.get(self.decision, "at least 1")
        if (
            not isinstance(self.offered, int)
            or self.offered < 0
            or (self.decision is Decision.ANSWER and self.offered != 1)
            or (self.decision is Decision.NO_ANSWER and self.offered != 0)
            or (self.decision is Decision.CLARIFY and self.offered < 1)
        ):
            raise ValueError(f"offered must be {expected} for a {self.decision.value} result, got {self.offered!r}")

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    def candidates(self) -> tuple[Hit, ...]:
        """The hits the decision offers: the best for ``answer``, the ``offered`` best for ``clarify``, none otherwise.

        Never more than the search's ``top_k`` hits.
        """
        return self.hits[: self.offered]
