"""The kinds of request and the states of a work order, and which change is allowed from which state.

Pure data and rules, shared by the dialogue, the dispatcher page, the inbound API and the
outbox, so every door moves an order the same way.

Example:
    >>> next_states("received")
    ('dispatched', 'done')
    >>> STATE_NAMES["visited"], KIND_NAMES["complaint"]
    ('已回访', '投诉')
    >>> due_days("投诉=5 举报=10")["complaint"]
    5
"""

from __future__ import annotations

from typing import Final

KIND_NAMES: Final = {
    "consult": "咨询",
    "help": "求助",
    "complaint": "投诉",
    "report": "举报",
    "suggestion": "建议",
}
"""Request types of the 12345 line: a consultation the knowledge base could not answer, and the four requests."""
KINDS: Final = tuple(KIND_NAMES)

STATE_NAMES: Final = {
    "received": "待受理",
    "dispatched": "已派单",
    "in_progress": "办理中",
    "done": "已办结",
    "visited": "已回访",
}
STATES: Final = tuple(STATE_NAMES)
OPEN_STATES: Final = ("received", "dispatched", "in_progress")
"""States in which the order is still someone's work (and can be overdue)."""

_NEXT: Final[dict[str, tuple[str, ...]]] = {
    "received": ("dispatched", "done"),  # done straight away: the centre answers it itself (直接办结)
    "dispatched": ("dispatched", "in_progress", "done"),  # dispatched again: reassigned to another department
    "in_progress": ("dispatched", "in_progress", "done"),  # in_progress again: a progress note
    "done": ("in_progress", "visited"),  # reopened when the department's reply does not hold
    "visited": (),
}

VISIT_NAMES: Final = {"satisfied": "满意", "unsatisfied": "不满意", "unreachable": "未联系上"}
"""Outcomes of the return visit (回访)."""

DEFAULT_DUE_DAYS: Final = "咨询=2 求助=3 投诉=5 举报=10 建议=15"


class TransitionError(ValueError):
    """A change the order's state does not allow; the message is Chinese, for staff and API clients."""


def next_states(state: str) -> tuple[str, ...]:
    """The states an order in ``state`` may move to (empty for a closed order)."""
    return _NEXT.get(state, ())


def check_transition(state: str, target: str) -> None:
    """Raise :class:`TransitionError` unless an order in ``state`` may move to ``target``."""
    if target not in STATE_NAMES:
        raise TransitionError(f"没有“{target}”这个工单状态，可用：{'、'.join(STATE_NAMES.values())}")
    if target not in next_states(state):
        allowed = "、".join(STATE_NAMES[s] for s in next_states(state)) or "无（工单已结束）"
        raise TransitionError(
            f"工单当前为“{STATE_NAMES.get(state, state)}”，不能改为“{STATE_NAMES[target]}”；可改为：{allowed}"
        )


def kind_code(name: str) -> str:
    """``"投诉"`` or ``"complaint"`` → ``"complaint"``.

    Raises:
        ValueError: neither a request type's name nor its code.
    """
    name = (name or "").strip()
    if name in KIND_NAMES:
        return name
    for code, chinese in KIND_NAMES.items():
        if chinese == name:
            return code
    raise ValueError(f"没有“{name}”这种诉求类型，可用：{'、'.join(KIND_NAMES.values())}")


def state_code(name: str) -> str:
    """``"已办结"`` or ``"done"`` → ``"done"``.

    Raises:
        ValueError: neither a state's name nor its code.
    """
    name = (name or "").strip()
    if name in STATE_NAMES:
        return name
    for code, chinese in STATE_NAMES.items():
        if chinese == name:
            return code
    raise ValueError(f"没有“{name}”这个工单状态，可用：{'、'.join(STATE_NAMES.values())}")


def due_days(spec: str) -> dict[str, int]:
    """Days allowed per request type from a setting such as ``"求助=3 投诉=5"``; types left out keep the default.

    Raises:
        ValueError: an unknown type, or a number of days that is not 1-365.
    """
    days = {kind_code(k): int(v) for k, v in (p.split("=", 1) for p in DEFAULT_DUE_DAYS.split())}
    for part in (spec or "").replace(",", " ").replace("，", " ").split():
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"order_due_days: {part!r} should be 类型=天数, e.g. 投诉=5")
        number = int(value)
        if not 1 <= number <= 365:
            raise ValueError(f"order_due_days: {part!r}: days must be 1-365")
        days[kind_code(name)] = number
    return days
