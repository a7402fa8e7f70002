"""Search calibration fitted for one knowledge base: kept in the database, applied by a reviewer.

``hotline calibrate`` (or the admin's 检索校准 page) fits the lexical weight and the
decision thresholds on the knowledge base's own wordings and saves the fit as
*pending*; a reviewer *applies* it. Both live in the ``meta`` table as JSON, so
every worker on every host reads the same values. Applying (or resetting) bumps
the KB version in the same transaction: every worker notices the new version at
its next search or announcement (:mod:`knowledge_base.storage.events`) and
re-reads the calibration with the changed entries, and cached results of the old
values stop matching.

Precedence, name by name: an explicit ``HOTLINE_*`` variable > the applied
calibration > ``config.yml`` (see :func:`effective_settings`).

Example:
    >>> from knowledge_base.storage.database import open_database
    >>> store = CalibrationStore(open_database(":memory:"))
    >>> store.applied() is None
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from knowledge_base.errors import InvalidEntry
from knowledge_base.settings import Settings
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

TUNED = ("lexical_weight", "answer_threshold", "answer_margin", "clarify_threshold")
"""The settings a calibration may set; the others stay with config.yml."""

LABELS = {
    "lexical_weight": "词汇匹配权重",
    "answer_threshold": "直接答复阈值",
    "answer_margin": "领先幅度",
    "clarify_threshold": "澄清下限",
}

SOURCE_NAMES = {"environment": "环境变量", "calibration": "已应用的校准", "config": "config.yml"}

APPLIED = "calibration.applied"
PENDING = "calibration.pending"


@dataclass(frozen=True)
class Calibration:
    """Fitted values with how they were measured.

    Args:
        values: some of :data:`TUNED` -> value.
        measured: what the fit measured (``n_queries``, ``hit_at_1``, ``mrr_at_10``, rates ...).
        method: how it was fitted, in words staff read.
        fitted_by / fitted_at: who ran the fit, when.
        applied_by / applied_at: the reviewer who applied it, when (empty while pending).

    Raises:
        ValueError: an unknown name, a value out of range, or clarify_threshold above answer_threshold.
    """

    values: Mapping[str, float]
    measured: Mapping[str, Any] = field(default_factory=dict)
    method: str = ""
    fitted_by: str = ""
    fitted_at: str = ""
    applied_by: str = ""
    applied_at: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(TUNED))
        if unknown:
            raise ValueError(f"a calibration sets only {', '.join(TUNED)}; got {unknown}")
        for name, value in self.values.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
        weight = self.values.get("lexical_weight", 0.0)
        if not 0 <= weight <= 1:
            raise ValueError(f"lexical_weight must be between 0 and 1, got {weight}")
        for name in ("answer_threshold", "clarify_threshold", "answer_margin"):
            if name in self.values and not -1.0 <= self.values[name] <= 2.0:
                raise ValueError(f"{name} must be between -1 and 2, got {self.values[name]}")
        answer, clarify = self.values.get("answer_threshold"), self.values.get("clarify_threshold")
        if answer is not None and clarify is not None and clarify > answer:
            raise ValueError(f"clarify_threshold ({clarify}) must not exceed answer_threshold ({answer})")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self) | {"values": dict(self.values)}, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        return cls(
            values={k: float(v) for k, v in data["values"].items()},
            measured=data.get("measured") or {},
            method=data.get("method", ""),
            fitted_by=data.get("fitted_by", ""),
            fitted_at=data.get("fitted_at", ""),
            applied_by=data.get("applied_by", ""),
            applied_at=data.get("applied_at", ""),
        )


def effective_settings(settings: Settings, applied: Calibration | None) -> tuple[Settings, dict[str, str]]:
    """The settings a search runs with, and where each tuned value comes from.

    An explicit ``HOTLINE_*`` variable beats the applied calibration, which beats ``config.yml``.
    A calibration whose thresholds would cross a pinned one (clarify above answer) is not applied
    for the crossing name.

    Returns:
        The settings, and name -> ``"environment"``, ``"calibration"`` or ``"config"`` for each of :data:`TUNED`.
    """
    sources = {name: "environment" if name in settings.explicit else "config" for name in TUNED}
    if applied is None:
        return settings, sources
    chosen: dict[str, Any] = {k: v for k, v in applied.values.items() if k not in settings.explicit}
    answer = chosen.get("answer_threshold", settings.answer_threshold)
    if chosen.get("clarify_threshold", settings.clarify_threshold) > answer:
        # Half a calibration pinned away by the environment must not leave an impossible pair.
        chosen.pop("clarify_threshold", None)
        if settings.clarify_threshold > answer:
            chosen.pop("answer_threshold", None)
    sources.update({name: "calibration" for name in chosen})
    return dataclasses.replace(settings, **chosen), sources


class CalibrationSource(Protocol):
    """What the knowledge base needs: the applied calibration, read at open and at every KB version change."""

    def applied(self) -> Calibration | None: ...


class NoCalibration:
    """A store without a database (or a throw-away benchmark KB): config.yml and the environment only."""

    def applied(self) -> Calibration | None:
        return None


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


class CalibrationStore:
    """The pending and the applied calibration of one database (rows of ``meta``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        ensure_current(db)

    def _read(self, name: str) -> Calibration | None:
        row = self.db.query_one("SELECT value FROM meta WHERE name=?", (name,))
        if row is None:
            return None
        try:
            return Calibration.from_json(row["value"])
        except (ValueError, KeyError, TypeError, AttributeError):
            # A hand-edited row must not stop searches: config.yml serves until someone applies a fit again.
            return None

    def _write(self, name: str, calibration: Calibration | None) -> None:
        self.db.execute("DELETE FROM meta WHERE name=?", (name,))
        if calibration is not None:
            self.db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, calibration.to_json()))

    def _bump_kb_version(self) -> int:
        # Every worker re-reads the calibration when the KB version moves; no entry changes with it.
        row = self.db.query_one("SELECT value FROM meta WHERE name='kb_version'")
        version = int(row["value"]) + 1 if row is not None else 1
        self.db.execute("UPDATE meta SET value=? WHERE name='kb_version'", (str(version),))
        return version

    def applied(self) -> Calibration | None:
        """The calibration searches use (None: config.yml's values)."""
        return self._read(APPLIED)

    def pending(self) -> Calibration | None:
        """The latest fit waiting for a reviewer (None when there is none)."""
        return self._read(PENDING)

    def save_pending(self, calibration: Calibration) -> Calibration:
        """Keep a fit for review; it replaces an earlier pending one and changes no answer."""
        with self.db.transaction():
            self._write(PENDING, calibration)
        return calibration

    def apply_pending(self, *, author: str) -> tuple[Calibration, int]:
        """Apply the pending fit: searches use it from the returned KB version on.

        Raises:
            InvalidEntry: there is no pending fit (someone applied or replaced it meanwhile).
        """
        if not author.strip():
            raise ValueError("applying a calibration needs its author")
        with self.db.transaction():
            pending = self._read(PENDING)
            if pending is None:
                raise InvalidEntry("calibration", "没有待应用的校准结果（可能已被他人应用），请刷新页面")
            applied = dataclasses.replace(pending, applied_by=author, applied_at=_now())
            self._write(APPLIED, applied)
            self._write(PENDING, None)
            version = self._bump_kb_version()
        return applied, version

    def reset(self, *, author: str) -> int:
        """Drop the applied calibration (config.yml's values serve again); returns the new KB version."""
        if not author.strip():
            raise ValueError("resetting a calibration needs its author")
        with self.db.transaction():
            self._write(APPLIED, None)
            return self._bump_kb_version()


def source_for(store: object) -> CalibrationSource:
    """The calibration source of a store: its database's, or none for a store without one."""
    db = getattr(store, "db", None)
    return CalibrationStore(db) if isinstance(db, Database) else NoCalibration()
