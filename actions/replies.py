"""The bot's wording in one place, so staff can review what citizens read and hear."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge_base.records import Entry

SORRY_BROKEN = "抱歉，系统暂时出了点问题，没能查到答案。您可以稍后再试，或者说“转人工”，由工作人员为您处理。"
NO_ANSWER = "抱歉，知识库里暂时没有找到与您的问题相符的答案。您可以换个说法再问一次，或者转人工、登记工单。"
TWO_FAILURES = "看来我没能帮上忙，很抱歉。建议为您转人工服务，或者登记工单，由承办单位联系您。"
ASK_REPHRASE = "好的，请您换个说法再描述一下您的问题，比如要办什么事、在哪个城市。"
FEEDBACK_THANKS = "谢谢您的反馈！"
FEEDBACK_SORRY = "抱歉没能解决您的问题，您的反馈已记录，我们会改进答案。需要的话可以转人工。"
CHOOSE_PROMPT = "您是想问下面哪个问题？请选择一项。"
WHICH_SERVICE = "请问您想了解哪项业务的{label}？比如“港澳通行证续签需要什么材料”。"
ASPECT_ANSWER = "「{question}」的{label}：\n{text}"
ASPECT_MISSING = "「{question}」暂时没有单独列出{label}。您可以查看完整答复，或者转人工咨询。"
ASK_QUESTION = "好的，请说出您要咨询的问题。"
GREET_BY_NAME = "{name}您好！请说出您要咨询的问题。"
NOT_A_CANDIDATE = "抱歉，没有找到您选择的问题，请重新描述一下您的问题。"


def handoff_buttons() -> list[dict[str, str]]:
    return [
        {"title": "转人工", "payload": "/request_human"},
        {"title": "换个说法", "payload": "/deny"},
    ]


def whole_answer_buttons() -> list[dict[str, str]]:
    return [
        {"title": "查看完整答复", "payload": "/show_answer"},
        {"title": "转人工", "payload": "/request_human"},
    ]


def feedback_buttons() -> list[dict[str, str]]:
    return [
        {"title": "有用", "payload": "/feedback_useful"},
        {"title": "没用", "payload": "/feedback_useless"},
    ]


def source_of(entry: Entry) -> dict[str, object]:
    """The answer's source as structured data for the channels (rendered by the widget, read by the hotline)."""
    return {
        "type": "source",
        "entry_key": entry.key,
        "question": entry.question,
        "department": entry.department,
        "policy_title": entry.policy.title,
        "policy_number": entry.policy.number,
        "policy_url": entry.policy.url,
        "effective_date": entry.effective_date.isoformat() if entry.effective_date else "",
        "regions": [str(r) for r in entry.regions],
    }


# Requests (求助 / 投诉 / 举报 / 建议) registered as work orders: actions/intake.py.
INTAKE_DESCRIPTION_AGAIN = "请用一两句话说一下是什么事情，比如“幸福路12号工地晚上施工很吵”。"
INTAKE_DESCRIPTION_CUT = "您的描述比较长，工单保留了前{limit}个字；其余内容可以在工作人员联系您时补充。"
INTAKE_ADDRESS_AGAIN = "没听清地点，请说一下具体地址或所在区域，比如“幸福路12号”；不清楚可以说“不知道”。"
INTAKE_TIME_AGAIN = "请说一下大概什么时候发生的，比如“昨天晚上十点”；不记得可以说“不记得”。"
INTAKE_NAME_AGAIN = "请告诉我怎么称呼您（可以只说姓氏），不方便的话请说“不方便”。"
INTAKE_PHONE_AGAIN = "这个号码好像不是电话号码，请说11位手机号或带区号的固定电话；不方便留电话请说“不方便”。"
INTAKE_SUMMARY = "请核对您的工单：\n{parts}。\n信息无误请说“确认”，需要修改请说“修改”。"
INTAKE_WHICH_PART = "请问要修改哪一项？事项、地点、时间、称呼还是电话？"
INTAKE_CONFIRM_AGAIN = "请说“确认”提交工单，说“修改”更改其中一项，或者说“取消”不登记。"
INTAKE_CANCELLED = "好的，已取消，没有登记工单。还有什么可以帮您？"
INTAKE_DONE = "已为您登记{kind}工单，工单号：{number}。{contact}"
INTAKE_CONTACT = "承办部门会通过您留的电话联系您，您也可以凭工单号和手机尾号查询办理进度。"
INTAKE_NO_CONTACT = "您没有留电话，请记下工单号，可拨打12345人工查询办理进度。"
INTAKE_FAILED = "抱歉，工单暂时没能登记成功。请直接拨打12345热线，由人工为您登记。"

# "我的工单处理到哪了": actions/order_status.py.
STATUS_NUMBER_AGAIN = "请说一下工单号，是GD开头的16位编号，比如“GD20260101000001”；没有工单号请说“不知道”。"
STATUS_LAST4_AGAIN = "请说一下登记工单时所留手机号码的后四位数字。"
STATUS_NEEDS_BOTH = "查询进度需要工单号和登记时所留手机号的后四位。没有的话，请拨打12345由人工为您查询。"
STATUS_NOT_FOUND = "没有查到与这个工单号和手机尾号相符的工单。请核对后再试，或拨打12345由人工为您查询。"
STATUS_LIMITED = "查询次数过多，为保护您的信息，暂时不能在这里查询。请拨打12345，由人工为您查询。"
STATUS_FOUND = "工单{number}（{kind}）目前的状态是：{state}。承办部门：{department}。"
STATUS_NO_DEPARTMENT = "尚未派单"
STATUS_REPLY = "办理答复：{reply}"
STATUS_CLOSED = "该工单已办结。"
STATUS_BROKEN = "抱歉，系统暂时查不到工单进度，请稍后再试，或拨打12345由人工为您查询。"
