"""A citizen in real headless Chromium: the demo site, the widget, a clarification click, an answer with its source.

Runs against the live dialogue stack (real Rasa, action server, knowledge base). Screenshots go to
test-artifacts/ for people to look at.
"""

from __future__ import annotations

import pytest

from tests.browser import shot

pytestmark = [pytest.mark.dialogue, pytest.mark.browser, pytest.mark.slow]


def test_citizen_asks_clicks_a_clarification_and_gets_the_sourced_answer(web, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(f"{web}/demo")
    opener = wait.until(ec.element_to_be_clickable((By.ID, "hotline-widget-open")))
    opener.click()
    assert opener.get_attribute("aria-expanded") == "true"
    browser.switch_to.frame(browser.find_element(By.ID, "hotline-widget-frame"))
    box = wait.until(ec.element_to_be_clickable((By.ID, "question")))
    box.send_keys("公积金提取", Keys.ENTER)  # keyboard only
    choice = wait.until(
        lambda d: [
            b for b in d.find_elements(By.CSS_SELECTOR, ".choice") if b.text not in ("都不是", "有用", "没用", "转人工")
        ]
    )
    browser.switch_to.default_content()
    shot(browser, "widget-clarification")
    browser.switch_to.frame(browser.find_element(By.ID, "hotline-widget-frame"))
    chosen = choice[0].text
    choice[0].click()
    source = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".source")))
    assert "承办单位" in source.text
    assert chosen in browser.find_element(By.ID, "log").text
    browser.switch_to.default_content()
    shot(browser, "widget-answer")


def test_conversation_survives_a_reload_and_fits_320px(web, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{web}/chat")
    before = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "log").text)
    browser.refresh()
    after = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "log").text)
    assert "公积金" in before and after == before
    browser.set_window_size(320, 640)
    browser.find_element(By.ID, "font-toggle").click()
    assert browser.find_element(By.ID, "font-toggle").get_attribute("aria-pressed") == "true"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 320
    shot(browser, "widget-320px-large-font")
    browser.set_window_size(1280, 900)
