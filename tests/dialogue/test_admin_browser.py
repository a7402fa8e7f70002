"""Staff in real headless Chromium: an editor drafts, a reviewer publishes, a citizen gets it in the widget; a rollback.

Runs against the live dialogue stack, so "published" is proven where it matters: the answer comes
back through Rasa and the action server (another process) in the chat widget.
"""

from __future__ import annotations

import pytest

from tests.browser import shot, sign_in

pytestmark = [pytest.mark.dialogue, pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct-horse-battery"
QUESTION = "夜间流动摊贩临时经营许可怎么申请"
FIRST_ANSWER = "请向经营地所在街道办事处申请夜间临时经营许可，携带身份证原件。"
SECOND_ANSWER = "夜间临时经营许可已改为在粤省事小程序网上申请。"


@pytest.fixture(scope="module")
def staff(stack):
    from knowledge_base.staff.accounts import AccountStore
    from knowledge_base.storage.database import open_database

    db = open_database(stack["data"] / "kb.sqlite3")
    accounts = AccountStore(db)
    accounts.create_user("editor1", PASSWORD, "editor", display_name="李编辑", actor="test")
    accounts.create_user("reviewer1", PASSWORD, "reviewer", display_name="王审核", actor="test")
    yield accounts
    db.close()


def _ask_in_widget(browser, web, question: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{web}/chat")
    browser.execute_script("localStorage.clear()")  # a new citizen each time
    browser.get(f"{web}/chat")
    before = len(browser.find_elements(By.CSS_SELECTOR, ".msg"))
    browser.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
    WebDriverWait(browser, 60).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, ".msg")) > before + 1
            and d.find_element(By.ID, "typing").get_attribute("hidden")
        )
    )
    return browser.find_element(By.ID, "log").text


def _fill(browser, field: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.ID, field)
    element.clear()
    element.send_keys(text)


def test_editor_drafts_reviewer_publishes_citizen_gets_it_then_rollback(web, browser, staff):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    # The editor writes a new entry and submits it for review.
    sign_in(browser, web, "editor1", PASSWORD)
    browser.get(f"{web}/admin/entries/new")
    _fill(browser, "key", "TEST-NIGHT-1")
    _fill(browser, "question", QUESTION)
    _fill(browser, "similar", "夜市摆摊要办什么手续\n晚上摆地摊需要许可吗")
    _fill(browser, "answer", FIRST_ANSWER)
    _fill(browser, "department", "市城市管理和综合执法局")
    _fill(browser, "policy_title", "《城市市容和环境卫生管理条例》")
    shot(browser, "admin-editor-draft")
    browser.find_element(By.ID, "save-submit").click()
    wait.until(lambda d: "/admin/drafts/" in d.current_url)
    assert "待审核" in browser.find_element(By.TAG_NAME, "h1").text
    assert not browser.find_elements(By.ID, "publish")  # editors cannot publish
    shot(browser, "admin-draft-submitted")

    # Not yet published: the citizen is not given it.
    assert FIRST_ANSWER not in _ask_in_widget(browser, web, QUESTION)

    # The reviewer publishes it.
    sign_in(browser, web, "reviewer1", PASSWORD)
    browser.get(f"{web}/admin/drafts")
    shot(browser, "admin-review-queue")
    link = browser.find_element(By.XPATH, f"//tr[td[contains(., '{QUESTION}')]]//a")
    link.click()
    wait.until(lambda d: d.find_elements(By.ID, "publish")).__getitem__(0).click()
    wait.until(lambda d: "/admin/entries/" in d.current_url)
    assert "已发布" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    entry_url = browser.current_url
    shot(browser, "admin-published")

    # Within a second the action server (another process) answers with it in the widget.
    log = _ask_in_widget(browser, web, QUESTION)
    assert FIRST_ANSWER in log
    shot(browser, "widget-published-answer")

    # The editor changes it, the reviewer publishes the change (nobody publishes their own draft), then rolls it back.
    sign_in(browser, web, "editor1", PASSWORD)
    browser.get(entry_url + "/edit")
    _fill(browser, "answer", SECOND_ANSWER)
    browser.find_element(By.ID, "save-submit").click()
    wait.until(lambda d: "/admin/drafts/" in d.current_url)
    draft_url = browser.current_url
    sign_in(browser, web, "reviewer1", PASSWORD)
    browser.get(draft_url)
    wait.until(lambda d: d.find_elements(By.ID, "publish")).__getitem__(0).click()
    wait.until(lambda d: d.current_url.rstrip("/") == entry_url)
    assert SECOND_ANSWER in browser.find_element(By.CSS_SELECTOR, ".answer").text
    assert SECOND_ANSWER in _ask_in_widget(browser, web, QUESTION)
    browser.get(entry_url + "/history")
    assert "撰写：editor1 · 发布：reviewer1" in browser.find_element(By.TAG_NAME, "table").text
    shot(browser, "admin-history")
    browser.find_elements(By.CSS_SELECTOR, "button.rollback")[-1].click()  # the oldest revision: the first publish
    wait.until(lambda d: d.find_element(By.ID, "confirm-ok")).click()  # a rollback asks first (static/staff.js)
    wait.until(lambda d: d.current_url.rstrip("/") == entry_url)
    assert FIRST_ANSWER in browser.find_element(By.CSS_SELECTOR, ".answer").text
    shot(browser, "admin-rolled-back")
    assert FIRST_ANSWER in _ask_in_widget(browser, web, QUESTION)


def test_dashboard_queue_and_test_pane_render_with_real_traffic(web, browser, staff):
    from selenium.webdriver.common.by import By

    sign_in(browser, web, "reviewer1", PASSWORD)
    _ask_in_widget(browser, web, "我家楼下的外星人飞船停车费怎么交")  # nothing in the knowledge base answers this
    sign_in(browser, web, "reviewer1", PASSWORD)
    browser.get(f"{web}/admin/")
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg[role=img]")
    assert len(charts) == 4
    assert "咨询" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "admin-dashboard")
    browser.get(f"{web}/admin/queue")
    assert "外星人" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "admin-queue")
    browser.get(f"{web}/admin/test?q=社保卡丢了怎么补办")
    assert "决策" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "admin-test-pane")
