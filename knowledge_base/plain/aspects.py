"""The aspects of a service guide (办事指南) and the follow-up questions that ask for one.

An entry may carry, besides its answer, the standard fields of a government service
guide: who may apply, what to bring, the steps, how long it takes, what it costs, where
to go, whom to call, whether it can be done online. A citizen who has just been answered
often asks for one of them ("那要带什么材料？", "多久能办好", "在哪里办"): such a
follow-up has no topic of its own and is answered from the entry in context.

Standard library only: the field catalogue (:mod:`knowledge_base.fields`) and the action
server read the same list.

Example:
    >>> follow_up_aspect("那需要带什么材料？").label
    '申请材料'
    >>> follow_up_aspect("港澳通行证续签要带什么材料") is None  # a question with its own topic
    True
    >>> [follow_up_aspect(t).name for t in ("多久能办好", "在哪里办", "要钱吗", "能网上办吗")]
    ['time_limit', 'location', 'fees', 'online']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ASPECTS", "ASPECTS_BY_NAME", "GUIDE_ORDER", "Aspect", "asked_aspect", "follow_up_aspect"]


@dataclass(frozen=True)
class Aspect:
    """One field of a service guide.

    Attributes:
        name: the entry field's name (import/export column, form input, ``Entry.guide`` attribute).
        label: its Chinese name, as staff and citizens read it.
        cues: words that name it ("材料", "多久"), checked in :data:`ASPECTS` order.
        weak_cues: phrasings that ask for it only when no aspect is named ("需要什么" asks for the
            materials, but "需要什么条件" for the conditions).
    """

    name: str
    label: str
    cues: tuple[str, ...]
    weak_cues: tuple[str, ...] = ()


# Order matters where cues overlap: "能网上办吗" is about going online, not about where to go;
# "多久能办好" asks for the time, not the steps.
ASPECTS: tuple[Aspect, ...] = (
    Aspect(
        "online",
        "网上办理",
        ("网上", "线上", "在线", "网办", "手机上", "手机办", "小程序", "粤省事", "app", "APP", "网站"),
    ),
    Aspect("fees", "收费标准", ("收费", "费用", "多少钱", "要钱", "花钱", "免费", "交钱", "付费", "几块钱", "工本费")),
    Aspect(
        "time_limit",
        "办理时限",
        ("多久", "多长时间", "几天", "多少天", "时限", "工作日", "几个月", "多快"),
        ("什么时候能", "办好", "拿到"),
    ),
    Aspect(
        "materials",
        "申请材料",
        ("材料", "带什么", "带哪些", "带啥", "证件", "资料"),
        ("准备什么", "准备啥", "需要什么", "要什么", "提供什么"),
    ),
    Aspect(
        "location",
        "办理地点",
        ("哪里办", "在哪里办", "去哪里办", "地点", "地址", "窗口", "哪个部门"),
        ("在哪里", "哪里", "在哪", "去哪", "哪儿", "找谁"),
    ),
    Aspect("enquiry_phone", "咨询电话", ("电话", "热线", "号码", "联系方式", "打给谁")),
    Aspect("conditions", "办理条件", ("条件", "资格", "符合", "哪些人", "谁可以", "谁能", "够不够", "门槛")),
    Aspect(
        "procedure",
        "办理流程",
        ("流程", "步骤", "程序", "手续"),
        ("怎么办理", "如何办理", "怎么申请", "怎么弄", "怎么操作"),
    ),
)
"""Every aspect; this order decides which one a message asks for (a guide lists them in :data:`GUIDE_ORDER`)."""

ASPECTS_BY_NAME: dict[str, Aspect] = {a.name: a for a in ASPECTS}

GUIDE_ORDER: tuple[str, ...] = (
    "conditions",
    "materials",
    "procedure",
    "time_limit",
    "fees",
    "location",
    "enquiry_phone",
    "online",
)
"""The aspects in the order a service guide (and the export, the form) lists them."""

# Words that carry no topic in a follow-up: "那需要带什么材料呢？" minus these and the cue is empty.
_FILLER = re.compile(
    r"那么|那|还有|另外|然后|请问|问一下|问下|一下|如果|要是|的话|大概|一般|具体|都|得|的|呢|吗|嘛|啊|呀|么|哦|了|"
    r"我|你们|你|我们|这个|这项|这|业务|事情|事|需要|要|是|能|可以|可不可以|能不能|会|去|到|办理|办|有|没有|哪些|什么|"
    r"怎么|多少|还|再|就|也|在|给|用|和|跟|好|吧|呐|喔|不"
)
_PUNCTUATION = re.compile(r"[\W_]+")
# A follow-up is short; a longer message is a question of its own even if it mentions 材料.
FOLLOW_UP_MAX_CHARS = 20
# Characters left after the filler and the cue, up to which a message still has no topic of its own
# ("补办要多久" leaves "补"; "社保怎么办理" leaves "社保", a topic).
TOPIC_FREE_CHARS = 1


def asked_aspect(text: str) -> Aspect | None:
    """The aspect a message names by its label, else by a cue, else by a weak cue, whatever else it says.

    >>> asked_aspect("居住证办理需要多长时间").name
    'time_limit'
    >>> asked_aspect("社保卡丢了") is None
    True
    """
    for aspect in ASPECTS:
        if aspect.label in text:
            return aspect
    for aspect in ASPECTS:
        if any(cue in text for cue in aspect.cues):
            return aspect
    for aspect in ASPECTS:
        if any(cue in text for cue in aspect.weak_cues):
            return aspect
    return None


def follow_up_aspect(text: str) -> Aspect | None:
    """The aspect a follow-up asks for, when the message is nothing but that question.

    None for a message with a topic of its own ("护照要带什么材料"), one that asks for no
    aspect, or one too long to be a follow-up.

    >>> follow_up_aspect("办理时限是多久").name, follow_up_aspect("好的谢谢")
    ('time_limit', None)
    """
    stripped = _PUNCTUATION.sub("", text)
    if not stripped or len(stripped) > FOLLOW_UP_MAX_CHARS:
        return None
    aspect = asked_aspect(stripped)
    if aspect is None:
        return None
    rest = stripped
    for aspect_label in (a.label for a in ASPECTS):
        rest = rest.replace(aspect_label, "")
    for cue in sorted((c for a in ASPECTS for c in (*a.cues, *a.weak_cues)), key=len, reverse=True):
        rest = rest.replace(cue, "")
    rest = _FILLER.sub("", rest)
    return aspect if len(rest) <= TOPIC_FREE_CHARS else None
