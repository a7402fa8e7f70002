"""A citizen reading the chat widget in real headless Chromium: keyboard, focus ring, 320 px, large font, long answers.

The dialogue is a scripted relay speaking as the action server does: an answer with 有用 / 没用 first, then the
answer's source as a message of its own (actions/answer.py). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from knowledge_base.settings import load_settings
from tests.browser import serve, shot, start_chromium
from web_widget import create_app

pytestmark = [pytest.mark.browser]

LONG_ANSWER = "\n".join(f"第{i}步：按照办事指南准备材料并到窗口办理，办理过程中请保留好回执。" for i in range(1, 41))


class LongAnswers:
    def send(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "text": LONG_ANSWER,
                "buttons": [
                    {"title": "有用", "payload": "/feedback_useful"},
                    {"title": "没用", "payload": "/feedback_useless"},
                ],
            },
            {"custom": {"type": "source", "department": "市政务服务数据管理局", "policy_title": "办事指南"}},
        ]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    settings = load_settings(None, environ={}, data_dir=str(tmp_path_factory.mktemp("data")), rate_limit_per_minute=0)
    yield from serve(create_app(settings, relay=LongAnswers()))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"), width=1280, height=900)
    yield driver
    driver.quit()


def _luminance(css: str) -> float:
    parts = css[css.index("(") + 1 : css.index(")")].split(",")
    channels = []
    for value in (float(p) / 255 for p in parts[:3]):
        channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _active_id(driver: Any) -> str:
    return str(driver.execute_script("return document.activeElement && document.activeElement.id"))


def _visible_in_log(driver: Any, script: str) -> bool:
    return bool(
        driver.execute_script(
            "var log = document.getElementById('log').getBoundingClientRect();"
            f"var r = ({script}).getBoundingClientRect();"
            "return r.top >= log.top - 1 && r.top < log.bottom;"
        )
    )


def test_keyboard_opening_focus_ring_long_answer_and_reload(site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(f"{site}/demo")
    browser.execute_script("localStorage.clear();")
    browser.refresh()
    opener = wait.until(lambda d: d.find_element(By.ID, "hotline-widget-open"))
    wait.until(
        lambda d: d.execute_script(
            "return document.getElementById('hotline-widget-frame').contentDocument"
            " && document.getElementById('hotline-widget-frame').contentDocument"
            ".readyState === 'complete'"
        )
    )
    browser.execute_script("arguments[0].focus();", opener)
    ActionChains(browser).send_keys(Keys.ENTER).perform()  # opened by keyboard
    frame = browser.find_element(By.ID, "hotline-widget-frame")
    browser.switch_to.frame(frame)
    wait.until(lambda d: _active_id(d) == "question")

    # The focus ring has at least 3:1 against what is around it: the input on white, 大字 on the red header.
    box = browser.find_element(By.ID, "question")
    ring = box.value_of_css_property("outline-color")
    assert _contrast(ring, browser.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")) >= 3
    assert _contrast(ring, "rgb(255, 255, 255)") >= 3
    for _ in range(6):
        if _active_id(browser) == "font-toggle":
            break
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert _active_id(browser) == "font-toggle"
    toggle = browser.find_element(By.ID, "font-toggle")
    header = browser.find_element(By.CSS_SELECTOR, ".chat-header").value_of_css_property("background-color")
    assert toggle.value_of_css_property("outline-style") == "solid"
    assert _contrast(toggle.value_of_css_property("outline-color"), header) >= 3

    # A long answer is shown from its first line; 有用 / 没用 come after the source card.
    box.click()
    box.send_keys("社保卡怎么补办", Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.bot .source"))
    row = browser.find_element(By.CSS_SELECTOR, ".msg.bot:last-child")
    assert [c.get_attribute("class") for c in row.find_elements(By.XPATH, "./*")][-2:] == ["source", "choices"]
    assert _visible_in_log(browser, "document.querySelectorAll('.msg.bot .bubble')[1]")
    assert browser.execute_script("var l = document.getElementById('log'); return l.scrollHeight > l.clientHeight")
    browser.switch_to.default_content()
    shot(browser, "widget-long-answer-from-its-start")

    # Large font enlarges the frame.
    small = frame.rect
    browser.switch_to.frame(frame)
    browser.find_element(By.ID, "font-toggle").click()
    browser.switch_to.default_content()
    wait.until(lambda d: frame.rect["width"] > small["width"] and frame.rect["height"] > small["height"])
    shot(browser, "widget-large-font-frame")
    browser.switch_to.frame(frame)
    browser.find_element(By.ID, "font-toggle").click()

    # After a reload the history opens at the latest exchange, not at the greeting.
    box = browser.find_element(By.ID, "question")
    box.send_keys("医保怎么转移", Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".source")) == 2)
    browser.switch_to.default_content()
    browser.get(f"{site}/chat")  # the widget's page itself, as the frame shows it after a reload
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg")) >= 4)
    assert _visible_in_log(browser, "Array.prototype.slice.call(document.querySelectorAll('.msg.me')).pop()")
    assert browser.execute_script("return document.getElementById('log').scrollTop") > 0


def test_at_320_px_the_widget_fits_and_keeps_send_and_large_font_in_view(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(320, 640)
    try:
        browser.get(f"{site}/demo")
        opener = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "hotline-widget-open"))
        opener.click()
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 320
        frame = browser.find_element(By.ID, "hotline-widget-frame")
        browser.switch_to.frame(frame)
        for big in (False, True):
            if big:
                browser.find_element(By.ID, "font-toggle").click()
            width = browser.execute_script("return document.documentElement.clientWidth")
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width, big
            for element_id in ("send", "font-toggle", "question"):
                rect = browser.find_element(By.ID, element_id).rect
                assert rect["x"] >= 0 and rect["x"] + rect["width"] <= width + 0.5, (element_id, big, rect, width)
                assert browser.find_element(By.ID, element_id).is_displayed()
        browser.switch_to.default_content()
        shot(browser, "widget-320px-large-font-frame")
        browser.switch_to.frame(frame)
        browser.find_element(By.ID, "font-toggle").click()
        browser.switch_to.default_content()
    finally:
        browser.set_window_size(1280, 900)
