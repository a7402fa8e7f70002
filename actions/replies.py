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
