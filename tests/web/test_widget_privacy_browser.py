"""What the citizens' chat keeps in the browser, in real headless Chromium.

The widget stores the conversation in localStorage so it survives a reload. On a shared or public
computer that is the next person's to read, so: "结束对话" clears it, it is forgotten a day after the
last message, and what the citizen types into the work-order form (description, name, phone) is
never stored. The dialogue is a scripted relay that speaks the handoff form's questions exactly as
bot/domain.yml words them, so a change of wording there that the widget no longer recognises fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from actions.replies import INTAKE_SUMMARY
from knowledge_base.settings import load_settings
from tests.browser import serve, shot, start_chromium
from tests.conftest import REPO
from web_widget import create_app

pytestmark = [pytest.mark.browser]

STORE = "hotline-chat-v1"
WORK_ORDER = "GD20261130000007"
DESCRIPTION, NAME, PHONE = "楼下工地夜间施工噪音扰民", "王小五", "13812345678"


def _prompts() -> list[str]:
    responses = yaml.safe_load((REPO / "bot" / "domain.yml").read_text(encoding="utf-8"))["responses"]
    return [responses[f"utter_ask_{slot}"][0]["text"] for slot in ("description", "contact_name", "contact_phone")]


class ScriptedDialogue:
    """Answers a question with a sourced answer; after 转人工, the handoff form's three questions, then the order."""

    def __init__(self) -> None:
        self.step: dict[str, int] = {}
        self.prompts = _prompts()

    def send(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        sender, text = body["sender"], body.get("message", "")
        if text.startswith("我要投诉"):  # a request said in one sentence: straight to the summary
            return [{"text": INTAKE_SUMMARY.format(parts=f"类型：投诉\n事情：{DESCRIPTION}\n电话：{PHONE}")}]
        if text == "确认":
            return [
                {"text": f"已为您登记投诉，工单号：{WORK_ORDER}。"},
                {"custom": {"type": "work_order", "work_order": WORK_ORDER, "kind": "complaint"}},
            ]
        if text == "转人工":
            self.step[sender] = 0
        step = self.step.get(sender)
        if step is None:
            return [
                {"text": "登录住房公积金网上服务大厅申请提取。"},
                {"custom": {"type": "source", "department": "住房公积金管理中心", "policy_title": "提取办法"}},
            ]
        if step < len(self.prompts):
            self.step[sender] = step + 1
            return [{"text": self.prompts[step]}]
        del self.step[sender]
        return [
            {"text": f"已为您登记工单，工单号：{WORK_ORDER}。工作人员会通过您留的电话联系您。"},
            {"custom": {"type": "handoff", "work_order": WORK_ORDER}},
        ]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("widget-data")
    settings = load_settings(None, environ={}, data_dir=str(data), rate_limit_per_minute=0)
    yield from serve(create_app(settings, relay=ScriptedDialogue()))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"), width=420, height=800)
    yield driver
    driver.quit()


def _ask(driver: Any, text: str, expect: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    box = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "question"))
    WebDriverWait(driver, 20).until(lambda d: box.is_enabled())
    box.send_keys(text, Keys.ENTER)
    WebDriverWait(driver, 20).until(lambda d: expect in d.find_element(By.ID, "log").text)


def _stored(driver: Any) -> str | None:
    return driver.execute_script(f"return localStorage.getItem('{STORE}');")  # type: ignore[no-any-return]


def _log(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "log").text)


def test_the_work_order_form_is_never_stored_and_end_clears_everything(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{site}/chat")
    browser.execute_script("localStorage.clear();")
    browser.refresh()
    assert _stored(browser) is None  # the greeting alone leaves nothing behind
    _ask(browser, "公积金怎么提取", "住房公积金管理中心")
    _ask(browser, "转人工", "登记工单")
    _ask(browser, DESCRIPTION, "怎么称呼您")
    _ask(browser, NAME, "联系电话")
    _ask(browser, PHONE, WORK_ORDER)
    on_screen = _log(browser)
    assert NAME in on_screen and PHONE in on_screen  # the citizen sees what they typed ...
    stored = _stored(browser)
    assert stored is not None
    for private in (DESCRIPTION, NAME, PHONE, "怎么称呼您"):
        assert private not in stored  # ... but the browser keeps none of it
    kept = json.loads(stored)
    assert "公积金怎么提取" in stored and WORK_ORDER in stored and kept["inForm"] is False

    browser.refresh()  # the conversation survives a reload, without the form
    WebDriverWait(browser, 20).until(lambda d: WORK_ORDER in _log(d))
    assert "公积金怎么提取" in _log(browser) and NAME not in _log(browser)
    _ask(browser, "社保怎么查", "住房公积金管理中心")  # after the work order, questions are kept again
    assert "社保怎么查" in (_stored(browser) or "")

    browser.find_element(By.ID, "end-chat").click()
    WebDriverWait(browser, 10).until(lambda d: "对话已结束" in _log(d))
    shot(browser, "widget-conversation-ended")
    assert _stored(browser) is None
    assert "公积金" not in _log(browser) and WORK_ORDER not in _log(browser)
    browser.refresh()
    WebDriverWait(browser, 10).until(lambda d: "您好" in _log(d))
    assert "公积金" not in _log(browser) and _stored(browser) is None


def test_stored_history_is_forgotten_after_a_day(site, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{site}/chat")
    browser.execute_script("localStorage.clear();")
    browser.refresh()
    _ask(browser, "公积金怎么提取", "住房公积金管理中心")
    browser.refresh()
    WebDriverWait(browser, 10).until(lambda d: "公积金怎么提取" in _log(d))  # within the day: still there

    state = json.loads(_stored(browser) or "{}")
    state["updated"] -= 25 * 3600 * 1000  # last message 25 hours ago
    browser.execute_script(f"localStorage.setItem('{STORE}', arguments[0]);", json.dumps(state))
    browser.refresh()
    WebDriverWait(browser, 10).until(lambda d: "您好" in _log(d))
    assert "公积金" not in _log(browser) and _stored(browser) is None


def test_a_request_in_one_sentence_leaves_no_phone_number_in_the_browser(site, browser):
    browser.get(f"{site}/chat")
    browser.execute_script("localStorage.clear();")
    browser.refresh()
    _ask(browser, f"我要投诉，{DESCRIPTION}，我叫{NAME}，电话 138 1234 5678", "请核对您的工单")
    _ask(browser, "确认", WORK_ORDER)
    assert "138 1234 5678" in _log(browser)  # on screen for the citizen ...
    stored = _stored(browser) or ""
    for private in ("138 1234 5678", PHONE, NAME, DESCRIPTION, "请核对您的工单"):
        assert private not in stored  # ... neither the request that opened the form nor the summary is kept
    kept = json.loads(stored)
    assert kept["inForm"] is False and WORK_ORDER in stored
    _ask(browser, "公积金怎么提取", "住房公积金管理中心")
    assert "公积金怎么提取" in (_stored(browser) or "")  # after the order, questions are kept again
