"""What a citizen's request says: its type, what happened, where, when, who and which phone. Stdlib only.

The dialogue fills a work order from whatever the citizen has already said, so a request
told in one sentence ("我叫王五，电话13812345678，昨天晚上十点开始幸福路12号工地一直施工很吵，
我要投诉") needs no question at all. Heuristics over plain text, no model: what they miss the
work-order form simply asks. Also here: spoken digits (一二三 / 幺) as digits, work-order numbers
and the last four phone digits of a status query, and the answers to the form's questions.

Example:
    >>> r = parse_request("我叫王五，电话13812345678，昨天晚上十点开始幸福路12号工地一直施工很吵，我要投诉")
    >>> r.kind, r.name, r.phone, r.happened, r.address
    ('complaint', '王五', '13812345678', '昨天晚上十点', '幸福路12号工地')
    >>> r.description
    '昨天晚上十点开始幸福路12号工地一直施工很吵，我要投诉'
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

__all__ = [
    "MAX_DESCRIPTION",
    "ParsedRequest",
    "StatusQuery",
    "asks_how",
    "confirmation",
    "declined",
    "has_words",
    "is_request",
    "parse_request",
    "parse_status_query",
    "plain_text",
    "request_kind",
    "spoken_digits",
    "which_part",
]

MAX_DESCRIPTION = 2000
"""Longest description a work order keeps (the book's limit); longer text is cut, not refused."""

# Request words, most specific first: "举报" before "投诉" in "我要投诉举报".
_KINDS = (
    ("report", re.compile(r"举报|檢舉|检举|揭发|告发")),
    ("complaint", re.compile(r"投诉|投訴|控诉|反映.{0,6}问题|太吵|扰民|噪音|擾民|噪聲|嘈")),
    ("suggestion", re.compile(r"建议|建議|提个意见|提意见|提議|提议|希望政府|希望能够|倡议")),
    ("help", re.compile(r"求助|求救|帮帮|幫幫|救命|帮我|幫我|困难|困難|急需|被困|走失|漏水|停水|停电|断水|断电")),
)
_KIND_OF_INTENT = {
    "request_help": "help",
    "complain": "complaint",
    "report_issue": "report",
    "suggest": "suggestion",
}
_REQUEST_WORD = r"(?:投诉|投訴|举报|舉報|检举|求助|建议|建議|反映|提意见|提建议)"
# Questions about how to make a request belong to the knowledge base, not to a work order.
_ASKS_HOW = (
    re.compile(
        r"(?:怎么|怎样|如何|点样|點樣|去哪|到哪|在哪|哪里|哪裡|向谁|找谁|找哪|哪个部门|哪個部門)\w{0,4}?"
        + _REQUEST_WORD
    ),
    re.compile(
        _REQUEST_WORD + r"\w{0,4}?(?:电话|電話|热线|熱線|渠道|途径|方式|流程|邮箱|网站|網站|平台|地址|号码|號碼)"
    ),
    re.compile(
        r"(?:可以|能|能不能|可不可以|可唔可以|係咪|是不是)\w{0,2}"
        + _REQUEST_WORD
        + r"\w{0,8}(?:吗|嗎|么|呢|吗？|[?？])?$"
    ),
    re.compile(_REQUEST_WORD + r"\w{0,8}?(?:找哪|找谁|归谁|歸誰|哪个部门|哪個部門|哪里管|谁管)"),
    re.compile(_REQUEST_WORD + r"\w{0,6}(?:有用吗|有没有用|多久|要多久|几天|幾天|需要什么|要什么材料)"),
)
_FIRST_PERSON_REQUEST = re.compile(
    r"我(?:要|想|需要|们要|們要)(?:投诉|投訴|举报|舉報|求助|反映|提)|帮我|幫我|請幫|请帮"
)

_CN_DIGITS = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "么": "1", "二": "2", "两": "2", "兩": "2",
              "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}  # fmt: skip
_DIGIT_RUN = re.compile(
    r"[0-9零〇洞一幺二两兩三四五六七八九](?:[\s\-－—,，、]*[0-9零〇洞一幺二两兩三四五六七八九]){2,}"
)

_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d(?:[\s-]?\d){8})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?\d{7,8})(?!\d)")
_PHONE_CLAUSE = re.compile(
    r"(?:我的)?(?:联系)?(?:电话|手机|手机号|手机号码|电话号码|號碼|号码|電話|联系方式)?(?:是|为|：|:)?\s*"
    r"(?:\+?86[\s-]?)?(?:1[3-9]\d(?:[\s-]?\d){8}|0\d{2,3}-?\d{7,8})[，,。；;\s]*"
)
_NAME = re.compile(
    r"(?:我叫|我的名字是|我名字叫|我姓|本人|我系|我是)([\u4e00-\u9fff]{1,3}?)(?:先生|女士|小姐|阿姨|师傅)?(?=[，,。；;\s]|电话|手机|$)"
)
_NAME_CLAUSE = re.compile(
    r"(?:我叫|我的名字是|我名字叫|我姓|本人|我系|我是)[\u4e00-\u9fff]{1,3}?(?:先生|女士|小姐|阿姨|师傅)?(?:[，,。；;\s]+|(?=电话|手机)|$)"
)
_NUM = r"[0-9一二三四五六七八九十两兩]"
_DAY = (
    r"(?:今天|今日|昨天|昨日|前天|尋日|琴日|今早|今晚|昨晚|昨夜|前晚|前几天|前幾天|这几天|這幾天|最近|近期|近来|"
    r"上周[一二三四五六日天]?|上星期[一二三四五六日天]?|上个?礼拜[一二三四五六日天]?|本周[一二三四五六日天]?|这周[一二三四五六日天]?|"
    r"周[一二三四五六日末]|星期[一二三四五六日天]|上个月|这个月|本月|每天|天天|每晚|每晚上|每天晚上|每日|"
    + _NUM
    + r"{1,4}年"
    + _NUM
    + r"{1,3}月"
    + _NUM
    + r"{1,3}[日号號]|"
    + _NUM
    + r"{1,3}月"
    + _NUM
    + r"{1,3}[日号號]|"
    + _NUM
    + r"{1,3}日)"
)
_PART_OF_DAY = r"(?:早上|早晨|上午|中午|下午|傍晚|晚上|夜里|夜裡|夜间|半夜|深夜|凌晨|夜晚|晚间)"
_CLOCK = r"(?:" + _NUM + r"{1,3}(?:点|點|时)(?:半|钟|" + _NUM + r"{1,3}分?)?(?:左右|多)?)"
_TIME = re.compile(
    r"(?:" + _DAY + _PART_OF_DAY + r"?" + _CLOCK + r"?|" + _PART_OF_DAY + _CLOCK + r"|" + _CLOCK + r"|"
    r"(?:这|這|前|近)"
    + _NUM
    + r"{1,3}(?:天|个月|個月|周|年)|"
    + _NUM
    + r"{1,3}(?:天|个月|個月|周|年)前|刚才|刚刚|啱啱)"
)
# A place: a name then a road and number, or a named estate, market, school... Function words are no part of it.
_STOP = "在是的了我从開开始到和去向对把被给说叫要里就都还也很有个这那她他它们住家吵一直每天晚上"
_PLACE_NAME = r"[^\W\d_" + _STOP + r"]"
_ADDRESS = re.compile(
    _PLACE_NAME + r"{1,8}?(?:路|街|道|巷|弄|大道|大街|胡同|里)" + r"[0-9一二三四五六七八九十]+[号號弄](?:之[0-9]+)?"
    r"(?:[0-9]+[栋幢座号]|[0-9]+单元|[0-9]+室|"
    + _PLACE_NAME
    + r"{0,6}?(?:工地|小区|大厦|商场|门口|楼下|附近|对面|旁边|店))*"
    r"|"
    + _PLACE_NAME
    + r"{2,8}?(?:小区|花园|社区|村|新村|苑|大厦|广场|市场|公园|学校|小学|中学|医院|车站|地铁站|公交站|商场|工业园)"
    r"(?:[0-9一二三四五六七八九十]+[栋幢座号])?(?:[0-9]+单元)?(?:[0-9]+室)?"
    r"(?:" + _PLACE_NAME + r"{0,4}?(?:门口|楼下|附近|对面|旁边))?"
)
_REQUEST_ONLY = re.compile(
    r"^(?:我(?:要|想|需要|们要|們要|有)?|想|请|請|帮我|幫我|有)?(?:个|一个|個|一個|几个|一些|点|一点)?(?:投诉|投訴|举报|舉報|检举|求助|反映|提(?:个|一个|一些)?(?:建议|意见)|"
    r"建议|建議|意见|想法|提议|提議|登记|登記|报|报个|提交)(?:一下|下|一个|个|一件事|件事|问题|工单|情况)?$"
)
_TAGS = re.compile(r"<[^>]{0,200}>")
_SPACES = re.compile(r"[ \t\u3000]+")


class ParsedRequest(NamedTuple):
    """What a request already says; "" for what it does not."""

    kind: str
    """``help``, ``complaint``, ``report``, ``suggestion`` (codes of knowledge_base.orders.states), or ""."""
    description: str
    address: str
    happened: str
    name: str
    phone: str


class StatusQuery(NamedTuple):
    """A status query's work-order number and the phone's last four digits; "" where not said."""

    number: str
    last4: str


def spoken_digits(text: str) -> str:
    """Digits said in words or with pauses, as digits: a caller says "幺三八 一二三四" for 1381234.

    >>> spoken_digits("幺三八 一二三四 五六七八")
    '13812345678'
    >>> spoken_digits("工单号 GD 二零二六 一一三零 零零零零零一")
    '工单号 GD 20261130000001'
    >>> spoken_digits("一个人住")
    '一个人住'
    """
    return _DIGIT_RUN.sub(lambda m: "".join(_CN_DIGITS.get(c, c) for c in m[0] if c in _CN_DIGITS or c.isdigit()), text)


def plain_text(text: str) -> str:
    """``text`` without markup, control characters and runs of spaces: what a work order keeps.

    >>> plain_text("<b>楼下</b>\\x00很吵  <script>alert(1)</script>")
    '楼下很吵 alert(1)'
    """
    text = _TAGS.sub("", text or "")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    return _SPACES.sub(" ", text).strip()


def has_words(text: str) -> bool:
    """Whether ``text`` has a letter or digit at all (not only punctuation, symbols or emoji).

    >>> has_words("。。？！"), has_words("😡😡"), has_words("幸福路")
    (False, False, True)
    """
    return any(unicodedata.category(ch)[0] in "LN" for ch in text or "")


def asks_how(text: str) -> bool:
    """Whether ``text`` asks how to complain, report... (a question for the knowledge base), not makes a request.

    >>> asks_how("怎么投诉物业"), asks_how("举报电话是多少"), asks_how("我要投诉物业不作为")
    (True, True, False)
    >>> asks_how("我要投诉，物业不管怎么办")
    False
    """
    if _FIRST_PERSON_REQUEST.search(text) and not re.search(
        r"(?:怎么|如何|怎样|哪里|在哪|去哪|找谁)\w{0,3}" + _REQUEST_WORD, text
    ):
        return False
    return any(p.search(text) for p in _ASKS_HOW)


def is_request(text: str) -> bool:
    """Whether ``text`` says in the first person that the citizen makes a request ("我要投诉……", "帮我……").

    >>> is_request("我要投诉楼下烧烤店"), is_request("停水了怎么办"), is_request("我想知道怎么投诉物业")
    (True, False, False)
    """
    return bool(_FIRST_PERSON_REQUEST.search(text)) and not asks_how(text)


def request_kind(text: str, intent: str = "") -> str:
    """The request type a message names, else the one its intent stands for, else "".

    >>> request_kind("我要举报有人违章搭建"), request_kind("楼下烧烤太吵了", "request_help")
    ('report', 'complaint')
    >>> request_kind("你好", "complain"), request_kind("你好")
    ('complaint', '')
    """
    for kind, words in _KINDS:
        if words.search(text):
            return kind
    return _KIND_OF_INTENT.get(intent, "")


def _phone_in(text: str) -> str:
    found = _MOBILE.search(text) or _LANDLINE.search(text)
    if not found:
        return ""
    return re.sub(r"[\s-]" if found[1].startswith("1") else r"\s", "", found[1])


def parse_request(text: str, intent: str = "") -> ParsedRequest:
    """Everything a request message already says (see the module example).

    >>> parse_request("我要投诉")
    ParsedRequest(kind='complaint', description='', address='', happened='', name='', phone='')
    >>> parse_request("我有个建议").description, parse_request("我要求助").description
    ('', '')
    >>> parse_request("我想举报，人民公园门口每天晚上有人占道经营").address
    '人民公园门口'
    """
    text = plain_text(spoken_digits(text))
    phone = _phone_in(text)
    named = _NAME.search(text)
    name = named[1] if named else ""
    rest = _PHONE_CLAUSE.sub("", text) if phone else text
    rest = _NAME_CLAUSE.sub("", rest, count=1) if name else rest
    rest = rest.strip("，,。；; ")
    when = _TIME.search(rest)
    happened = when[0] if when else ""
    place = _ADDRESS.search(rest.replace(happened, "，") if happened else rest)
    address = place[0] if place else ""
    content = re.sub(r"[，,。.!！？?；;\s]+", "", rest)
    description = "" if not has_words(content) or _REQUEST_ONLY.match(content) or len(content) < 4 else rest
    return ParsedRequest(request_kind(text, intent), description[:MAX_DESCRIPTION], address, happened, name, phone)


# GD and 14 digits, said with or without pauses between them ("GD 2026 1130 000001").
_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:GD)?[\s:：]*(\d(?:[\s\-－—]*\d){13})(?!\d)", re.IGNORECASE)
_ONE_DIGIT = str.maketrans({word: digit for word, digit in _CN_DIGITS.items() if word not in "么两兩"})
_LAST4 = re.compile(
    r"(?:尾号|尾數|尾数|后四位|後四位|最后四位|末四位)\D{0,4}(\d{4})(?!\d)|(?<![0-9A-Za-z])(\d{4})(?!\d)"
)


def parse_status_query(text: str) -> StatusQuery:
    """The work-order number (GD + 14 digits) and the last four phone digits in a message.

    >>> parse_status_query("工单号GD20261130000001，手机尾号5678")
    StatusQuery(number='GD20261130000001', last4='5678')
    >>> parse_status_query("gd 二零二六一一三零零零零零零一 尾号 五六七八")
    StatusQuery(number='GD20261130000001', last4='5678')
    >>> parse_status_query("我的工单处理到哪了")
    StatusQuery(number='', last4='')
    """
    # Digit by digit, not spoken_digits: the number and the four digits said in one breath must stay apart.
    text = text.translate(_ONE_DIGIT)
    found = _NUMBER.search(text)
    number = "GD" + re.sub(r"\D", "", found[1]) if found else ""
    rest = text[: found.start()] + " " + text[found.end() :] if found else text
    four = _LAST4.search(re.sub(r"(?<=\d)\s+(?=\d)", "", rest))
    return StatusQuery(number, (four[1] or four[2]) if four else "")


_DECLINE = re.compile(
    r"^(?:不方便|不太方便|唔方便|不想说|不想講|不想讲|不想留|不留|不愿意|不願意|保密|匿名|不告诉你|不用了|没有|冇|不知道|唔知|"
    r"不清楚|不记得|記唔到|记不清|忘了|算了|不说|不讲|跳过|略过)(?:了|吧|啊|呢|哦)?[。！!，,.\s]*$"
)


def declined(text: str) -> bool:
    """Whether an answer to a form question declines it ("不方便", "不想说", "不记得了").

    >>> declined("不方便"), declined("不记得了"), declined("王五")
    (True, True, False)
    """
    return bool(_DECLINE.match((text or "").strip()))


_YES = re.compile(
    r"^(?:确认|確認|确定|確定|对|對|对的|是|是的|係|系|冇错|没错|沒錯|没问题|沒問題|好|好的|可以|提交|ok|OK|嗯)"
)
_CHANGE = re.compile(r"修改|改一下|改下|更改|不对|不對|唔啱|错了|錯了|有误|更正|改")
_PARTS = (
    ("contact_phone", re.compile(r"电话|電話|手机|手機|号码|號碼")),
    ("contact_name", re.compile(r"姓名|名字|称呼|稱呼|怎么称呼|叫什么")),
    ("address", re.compile(r"地址|地点|地點|位置|哪里|在哪|地方")),
    ("happened", re.compile(r"时间|時間|什么时候|幾時|几时|日期|几点")),
    ("description", re.compile(r"描述|内容|內容|事情|事项|事項|问题|問題|情况|情況|经过|類型|类型")),
)


def which_part(text: str) -> str:
    """The form slot a citizen wants to change ("电话写错了" → ``contact_phone``), or "".

    >>> which_part("地址不对"), which_part("改一下电话"), which_part("修改")
    ('address', 'contact_phone', '')
    """
    for slot, words in _PARTS:
        if words.search(text):
            return slot
    return ""


def confirmation(text: str) -> str:
    """``yes``, ``change`` or "" for the answer to "请核对……确认请说“确认”".

    >>> confirmation("确认"), confirmation("对，没问题"), confirmation("地址不对"), confirmation("嗯嗯")
    ('yes', 'yes', 'change', 'yes')
    >>> confirmation("今天天气")
    ''
    """
    text = (text or "").strip()
    if _CHANGE.search(text) or (which_part(text) and not _YES.match(text)):
        return "change"
    return "yes" if _YES.match(text) else ""
