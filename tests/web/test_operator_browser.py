"""An operator on a live call, in real headless Chromium, over the REAL knowledge base.

The app runs on a werkzeug server in a thread, answering from the sample knowledge base
embedded by the real model (the ``real_embedder`` fixture). The operator signs in through
the form, types a caller's question from the sample's test set, gets the expected entry
first, copies its answer to the clipboard and reports it used. Screenshots go to
test-artifacts/ for people to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from knowledge_base.factory import open_store
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.textnorm import TextNormaliser
from knowledge_base.settings import load_settings
from knowledge_base.staff.operator_log import OperatorLog
from knowledge_base.storage.database import open_database
from knowledge_base.transfer import read_entries
from tests.browser import serve, shot, start_chromium
from tests.conftest import REPO
from web_widget import create_app

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SAMPLE = REPO / "knowledge_base" / "sample"
OPERATOR, PASSWORD = "op-browser", "correct-horse-battery"
# A colloquial caller's question of the sample's test set, and the entry that answers it.
GOLD = "GD-SB-001"


def _question() -> str:
    for line in (SAMPLE / "test_questions.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["gold_id"] == GOLD and case.get("kind") == "colloquial":
            return str(case["query"])
    raise AssertionError(f"no colloquial test question for {GOLD} in the sample")


@pytest.fixture(scope="module")
def web(real_embedder, tmp_path_factory) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("operator-data")
    settings = load_settings(REPO / "config.yml", environ={}, data_dir=str(data), redis_url="")
    db = open_database(data / "kb.sqlite3")
    kb = KnowledgeBase(open_store(settings, db), real_embedder, TextNormaliser.from_dir(), settings=settings)
    kb.import_entries(read_entries(SAMPLE / "guangdong_kb.yaml"), author="setup")
    app = create_app(settings, kb=kb, db=db)
    accounts = app.extensions["hotline"].accounts
    accounts.create_user(OPERATOR, PASSWORD, "operator", display_name="话务员甲", actor="test")
    for url in serve(app):
        yield {"url": url, "kb": kb, "db": db}
    db.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def clipboard(driver) -> str:
    """The system clipboard's text, read as a page would (the permission is granted over CDP)."""
    return str(
        driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "navigator.clipboard.readText().then(done, function (e) { done('clipboard error: ' + e); });"
        )
    )


def test_operator_finds_copies_and_reports_the_answer(web, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    question = _question()
    expected = web["kb"].store.get_by_key(GOLD).answer

    # Signed out, the console sends the operator to the sign-in form, which brings them back.
    browser.get(f"{web['url']}/operator")
    wait.until(ec.element_to_be_clickable((By.ID, "username"))).send_keys(OPERATOR)
    browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
    box = wait.until(ec.element_to_be_clickable((By.ID, "q")))
    assert browser.current_url.endswith("/operator")
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": web["url"], "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )

    # Type the caller's question; Enter picks the first result of the whole question.
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: d.switch_to.active_element.get_attribute("id") == "hit-1")
    first = browser.find_element(By.ID, "hit-1")
    assert first.get_attribute("data-key") == GOLD, browser.find_element(By.ID, "results").text
    assert "picked" in first.get_attribute("class")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results .hit")) == 5
    shot(browser, "operator-console-results")

    # Copy with the card's button: the clipboard holds exactly the answer.
    first.find_element(By.CSS_SELECTOR, "button.copy").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "notice"), "已复制第1条答案"))
    assert clipboard(browser) == expected

    # Alt+2 copies the second answer without leaving the keyboard.
    second = browser.find_element(By.ID, "hit-2")
    second_answer = second.find_element(By.CSS_SELECTOR, ".answer").text
    ActionChains(browser).key_down(Keys.ALT).send_keys("2").key_up(Keys.ALT).perform()
    wait.until(ec.text_to_be_present_in_element((By.ID, "notice"), "已复制第2条答案"))
    assert clipboard(browser).split() == second_answer.split()

    # The read-aloud version: dates and numbers as a caller hears them.
    first.find_element(By.CSS_SELECTOR, "button.read").click()
    spoken = wait.until(ec.visibility_of_element_located((By.ID, "hit-1-spoken")))
    assert "承办单位是广东省人力资源和社会保障厅" in spoken.text and "2024年1月1日" in spoken.text

    # Reported used: the row the curation queue and the dashboard read.
    first.find_element(By.CSS_SELECTOR, "button.used").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#hit-1 button.used"), "已记录"))
    [report] = OperatorLog(web["db"]).reports()
    assert (report.operator, report.outcome, report.entry_key, report.query) == (OPERATOR, "used", GOLD, question)
    assert report.kb_version == web["kb"].kb_version

    # Esc clears for the next caller; the console fits a 320 px screen.
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait.until(lambda d: d.switch_to.active_element.get_attribute("id") == "q")
    assert box.get_attribute("value") == "" and not browser.find_elements(By.CSS_SELECTOR, "#results .hit")
    browser.set_window_size(320, 800)
    box.send_keys(question, Keys.ENTER)
    wait.until(lambda d: d.switch_to.active_element.get_attribute("id") == "hit-1")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 320
    shot(browser, "operator-console-320px")
    browser.set_window_size(1280, 900)
