"""The dispatcher in real headless Chromium: the overdue order stands out, an order goes from 待受理 to 已回访
through the page's own forms (the suggestion preselected), and the phone is shown for the return visit only.

The app runs on the FAKE embedder's knowledge base; the pages, the CSP (no inline style) and the forms are
what is tested here, the matching is tested with the real model in tests/unit/test_departments.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from knowledge_base.factory import open_store
from knowledge_base.orders.departments import DepartmentList, read_departments
from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.textnorm import TextNormaliser
from knowledge_base.settings import load_settings
from knowledge_base.storage.database import open_database
from tests.browser import serve, shot, sign_in, start_chromium, wait_for_text
from web_widget import create_app

pytestmark = [pytest.mark.browser]

PASSWORD = "correct-horse-battery"
SAMPLE = Path(__file__).resolve().parents[2] / "knowledge_base" / "sample" / "departments.csv"


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("dispatch-data")
    settings = load_settings(None, environ={}, data_dir=str(data), redis_url="")
    db = open_database(data / "kb.sqlite3")
    kb = KnowledgeBase(open_store(settings, db), FakeEmbedder(), TextNormaliser.from_dir(), settings=settings)
    app = create_app(settings, kb=kb, db=db)
    services = app.extensions["hotline"]
    DepartmentList(db).import_departments(read_departments(SAMPLE), actor="setup")
    services.accounts.create_user("disp1", PASSWORD, "dispatcher", display_name="派单员甲", actor="test")
    for url in serve(app):
        yield {"url": url, "book": services.interactions.orders, "services": services}
    db.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def test_dispatcher_moves_an_order_through_its_life(web, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, book, services = web["url"], web["book"], web["services"]
    reason = "职责“噪音污染投诉”与诉求最接近（相似度 95%），命中关键词：噪音"
    late = book.create(
        channel="web", sender_id="s1", description="路灯坏了半个月", kind="complaint",
        now=datetime.now() - timedelta(days=8), suggestion=("市城市管理和综合执法局", "路灯"),
    )  # fmt: skip
    order = book.create(
        channel="web", sender_id="s2", description="楼下工地每晚施工，噪音太大", kind="complaint",
        phone="13812345678", address="禅城区某某路 1 号", suggestion=("市生态环境局", reason),
    )  # fmt: skip
    sign_in(browser, base, "disp1", PASSWORD)

    browser.get(f"{base}/dispatch")
    row = browser.find_element(By.XPATH, f"//tr[td/a[text()='{late.number}']]")
    assert "超期 3 天" in row.text and "overdue" in row.get_attribute("class")
    assert row.find_element(By.TAG_NAME, "td").value_of_css_property("background-color") == "rgba(253, 236, 234, 1)"
    assert "13812345678" not in browser.page_source
    shot(browser, "dispatch-list")

    browser.find_element(By.LINK_TEXT, order.number).click()
    wait_for_text(browser, order.number, "h1")
    assert reason in browser.find_element(By.TAG_NAME, "main").text
    assert (
        Select(browser.find_element(By.ID, "department")).first_selected_option.get_attribute("value") == "市生态环境局"
    )
    browser.find_element(By.XPATH, "//button[text()='派单']").click()
    wait_for_text(browser, "已改为“已派单”")
    browser.find_element(By.XPATH, "//button[text()='开始办理']").click()
    wait_for_text(browser, "已改为“办理中”")
    browser.find_element(By.ID, "reply").send_keys("已责令施工方晚十点后停止施工。")
    browser.find_element(By.NAME, "general").click()
    browser.find_element(By.XPATH, "//button[text()='办结']").click()
    wait_for_text(browser, "已改为“已办结”")
    assert "13812345678" not in browser.page_source

    browser.find_element(By.XPATH, "//button[text()='显示电话（回访用）']").click()
    wait_for_text(browser, "13812345678", "dd.phone")
    browser.find_element(By.CSS_SELECTOR, "input[name=result][value=satisfied]").click()
    browser.find_element(By.XPATH, "//button[text()='记录回访']").click()
    wait_for_text(browser, "已改为“已回访”")
    history = browser.find_element(By.CSS_SELECTOR, "ol.history").text
    for words in (
        "派单（承办部门：市生态环境局）",
        "开始办理",
        "办结（答复：已责令施工方晚十点后停止施工。",
        "回访（回访结果：满意）",
    ):
        assert words in history
    shot(browser, "dispatch-order-visited")
    final = book.get(order.number)
    assert (final.status, final.department, final.general_reply) == ("visited", "市生态环境局", True)
    actions = [r["action"] for r in services.accounts.audit_log(target=order.number)]
    assert actions[:5] == [
        "work_order.visit", "work_order.reveal_phone", "work_order.finish", "work_order.start", "work_order.assign",
    ]  # fmt: skip
