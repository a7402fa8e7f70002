"""Pure dialogue helpers: follow-up questions and where the citizen is. No Rasa, no I/O."""

from __future__ import annotations

import re

# Short questions that only make sense about the entry just discussed ("那需要带什么材料？").
_FOLLOW_UP_START = re.compile(r"^(那|那么|还有|另外|然后|如果|要是|请问那)")
_FOLLOW_UP_CUES = (
    "材料",
    "带什么",
    "哪里办",
    "在哪办",
    "去哪",
    "在哪里",
    "多久",
    "多长时间",
    "几天",
    "费用",
    "收费",
    "多少钱",
    "条件",
    "流程",
    "网上",
    "线上",
    "手机上",
    "时间",
    "电话",
    "需要什么",
    "要什么",
    "能不能",
    "可以吗",
)
FOLLOW_UP_MAX_CHARS = 20


def is_follow_up(text: str) -> bool:
    """True for a short question that leans on the previous answer.

    >>> is_follow_up("那需要带什么材料？"), is_follow_up("港澳通行证怎么续签")
    (True, False)
    """
    text = text.strip()
    if not text or len(text) > FOLLOW_UP_MAX_CHARS:
        return False
    return bool(_FOLLOW_UP_START.match(text)) or (any(cue in text for cue in _FOLLOW_UP_CUES) and len(text) <= 10)


def follow_up_query(previous_question: str, text: str) -> str:
    """The question to search for a follow-up: the previous entry's question gives the topic."""
    return f"{previous_question} {text.strip()}"


def cities_that_differ(regions_per_candidate: list[list[tuple[str, str]]]) -> list[str]:
    """Cities of candidates that are the same service in different cities, or [] when region does not matter.

    Each candidate gives its regions as (province, city) pairs; a candidate without a city applies everywhere.

    >>> cities_that_differ([[("广东省", "深圳市")], [("广东省", "广州市")], [("广东省", "")]])
    ['深圳市', '广州市']
    """
    cities: list[str] = []
    for regions in regions_per_candidate:
        named = [city for _, city in regions if city]
        if len(named) == 1 and named[0] not in cities:
            cities.append(named[0])
    return cities if len(cities) >= 2 else []
