"""Staff in real headless Chromium: destructive actions ask first, a draft outlives the end of its session,
and the operator's work order starts empty for every caller. The app runs on the FAKE embedder's
knowledge base (tests/conftest.py's entries): these tests are about the pages, not the search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from knowledge_base.factory import open_store
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.textnorm import TextNormaliser
from knowledge_base.settings import load_settings
from knowledge_base.storage.database import open_database
from tests.browser import serve, shot, sign_in, start_chromium, wait_for_text
from tests.conftest import sample_entries
from web_widget import create_app

pytestmark = [pytest.mark.browser]

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("staff-data")
    settings = load_settings(None, environ={}, data_dir=str(data), redis_url="", allow_self_publish=True)
    db = open_database(data / "kb.sqlite3")
    kb = KnowledgeBase(open_store(settings, db), FakeEmbedder(), TextNormaliser.from_dir(), settings=settings)
    kb.import_entries(sample_entries(), author="setup")
    app = create_app(settings, kb=kb, db=db)
    services = app.extensions["hotline"]
    for name, role in (("editor1", "editor"), ("reviewer1", "reviewer"), ("admin1", "admin"), ("op1", "operator")):
        services.accounts.create_user(name, PASSWORD, role, display_name=name, actor="test")
    for url in serve(app):
        yield {"url": url, "kb": kb, "services": services}
    db.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def _answer(browser: Any, button: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    dialog = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "confirm-dialog"))
    WebDriverWait(browser, 10).until(lambda d: dialog.is_displayed())
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-cancel"  # the safe choice first
    browser.find_element(By.ID, button).click()


def test_rollback_archive_discard_and_disable_ask_first(web, browser):
    from selenium.webdriver.common.by import By

    base, kb, services = web["url"], web["kb"], web["services"]
    entry = kb.store.get_by_key("T-SB-1")
    sign_in(browser, base, "reviewer1", PASSWORD)

    # Archive: 取消 keeps the entry published, 确定归档 archives it.
    browser.get(f"{base}/admin/entries/{entry.id}")
    browser.find_element(By.ID, "archive").click()
    assert "确定归档吗" in browser.find_element(By.ID, "confirm-text").text
    shot(browser, "staff-confirm-archive")
    _answer(browser, "confirm-cancel")
    assert kb.get(entry.id).status.value == "published" and browser.current_url.endswith(f"/entries/{entry.id}")
    browser.find_element(By.ID, "archive").click()
    _answer(browser, "confirm-ok")
    wait_for_text(browser, "已归档")
    assert kb.get(entry.id).status.value == "archived"

    # Rollback to the first revision: asked, then done as a new version.
    browser.get(f"{base}/admin/entries/{entry.id}/history")
    browser.find_elements(By.CSS_SELECTOR, "button.rollback")[-1].click()
    _answer(browser, "confirm-cancel")
    assert kb.get(entry.id).version == 2
    browser.find_elements(By.CSS_SELECTOR, "button.rollback")[-1].click()
    _answer(browser, "confirm-ok")
    wait_for_text(browser, "已回滚")
    assert kb.get(entry.id).version == 3 and kb.get(entry.id).status.value == "published"

    # Discarding a draft.
    draft = services.workflow.save(kb.get(entry.id).replace(answer="草稿里的答案"), author="reviewer1")
    browser.get(f"{base}/admin/drafts/{draft.id}")
    browser.find_element(By.ID, "discard").click()
    _answer(browser, "confirm-cancel")
    assert services.workflow.draft(draft.id).is_open
    browser.find_element(By.ID, "discard").click()
    _answer(browser, "confirm-ok")
    wait_for_text(browser, "草稿已放弃")
    assert not services.workflow.draft(draft.id).is_open

    # Disabling a user.
    sign_in(browser, base, "admin1", PASSWORD)
    browser.get(f"{base}/admin/users")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "editor1" in r.text)
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    assert "editor1" in browser.find_element(By.ID, "confirm-text").text
    _answer(browser, "confirm-cancel")
    assert not services.accounts.user("editor1").disabled
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "editor1" in r.text)
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    _answer(browser, "confirm-ok")
    wait_for_text(browser, "已停用 editor1")
    assert services.accounts.user("editor1").disabled
    services.accounts.set_disabled("editor1", False, actor="test")


def test_a_draft_typed_when_the_session_ends_is_restored_after_signing_in(web, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, kb, services = web["url"], web["kb"], web["services"]
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))  # pages reload
    entry = kb.store.get_by_key("T-GJJ-SZ")
    sign_in(browser, base, "editor1", PASSWORD)
    browser.get(f"{base}/admin/entries/{entry.id}/edit")
    typed = "深圳：登录深圳公积金网上办事大厅，选择“提取”，上传身份证和银行卡后提交，约三个工作日到账。"
    answer = browser.find_element(By.ID, "answer")
    answer.clear()
    answer.send_keys(typed)
    browser.find_element(By.ID, "guide-materials").send_keys("身份证、银行卡")

    browser.delete_cookie("hotline_session")  # the session ended: the browser let its cookie go
    browser.find_element(By.ID, "save-draft").click()
    wait.until(lambda d: "/staff/login" in d.current_url)
    assert "会话已过期" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.ID, "username").send_keys("editor1")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    wait.until(lambda d: d.current_url.endswith(f"/admin/entries/{entry.id}/edit"))
    restored = wait.until(lambda d: d.find_element(By.ID, "restored"))
    assert "会话已过期" in restored.text
    assert browser.find_element(By.ID, "answer").get_attribute("value") == typed
    assert browser.find_element(By.ID, "guide-materials").get_attribute("value") == "身份证、银行卡"
    shot(browser, "staff-draft-restored-after-sign-in")
    browser.find_element(By.ID, "save-draft").click()
    wait.until(lambda d: "/admin/drafts/" in d.current_url)
    [draft] = [d for d in services.workflow.drafts() if d.entry_id == entry.id]
    assert draft.entry.answer == typed and draft.entry.guide.materials == "身份证、银行卡"
    # Nothing is kept any longer: the form opens with the saved draft, without the notice.
    browser.get(f"{base}/admin/drafts/{draft.id}")
    assert not browser.find_elements(By.ID, "restored")


def test_the_work_order_form_starts_empty_for_each_caller(web, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base = web["url"]
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))  # pages reload
    sign_in(browser, base, "op1", PASSWORD)
    browser.get(f"{base}/operator")
    box = wait.until(lambda d: d.find_element(By.ID, "q"))
    box.send_keys("社保缴费记录", Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))

    def open_form() -> None:
        browser.find_element(By.ID, "order-open").click()
        wait.until(lambda d: d.find_element(By.ID, "order-form").is_displayed())

    open_form()
    assert "T-SB-1" in browser.find_element(By.ID, "order-entries").text
    browser.find_element(By.ID, "order-name").send_keys("张三")
    browser.find_element(By.ID, "order-phone").send_keys("13800000000")
    browser.find_element(By.ID, "new-call").click()  # the next caller
    assert not browser.find_element(By.ID, "order-form").is_displayed()
    assert box.get_attribute("value") == ""
    open_form()
    for name in ("order-name", "order-phone", "order-description", "order-question"):
        assert browser.find_element(By.ID, name).get_attribute("value") == "", name
    assert "尚未查看条目" in browser.find_element(By.ID, "order-entries").text

    # After a work order is submitted, the next one starts empty too.
    box.send_keys("深圳公积金提取", Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
    browser.find_element(By.ID, "order-description").send_keys("来电人要求回电")
    browser.find_element(By.ID, "order-name").send_keys("李四")
    browser.find_element(By.CSS_SELECTOR, "#order-form button[type=submit]").click()
    wait_for_text(browser, "工单已创建", "#notice")
    open_form()
    assert browser.find_element(By.ID, "order-name").get_attribute("value") == ""
    assert "尚未查看条目" in browser.find_element(By.ID, "order-entries").text
