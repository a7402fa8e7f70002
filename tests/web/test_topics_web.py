"""The dashboard's 舆情预警 block: an active hot-topic alert at the top, with its entry linked; an ended one gone."""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import pytest

from knowledge_base.orders.topics import HotTopics
from tests.web.conftest import sign_in

pytestmark = pytest.mark.unit


def test_the_dashboard_shows_an_active_alert_and_not_an_ended_one(app):
    svc = app.extensions["hotline"]
    editor = sign_in(app, "editor")
    assert "舆情预警" not in editor.get("/admin/").get_data(as_text=True)

    hour = datetime.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    for i in range(12):
        svc.db.execute(
            "INSERT INTO answer_log (created_at, channel, sender_id, query, decision, entry_key, score, kb_version, "
            "thresholds, candidates) VALUES (?, 'web', ?, ?, 'answer', 'T-SB-1', 0.9, 1, '{}', '[]')",
            ((hour + timedelta(minutes=i)).isoformat(), f"s{i}", "社保缴费记录怎么查，电话13812345678"),
        )
    topics = HotTopics(svc.db, svc.queue, factor=3.0, min_count=10)
    [alert] = topics.check(hour + timedelta(hours=1, minutes=1)).created
    page = html.unescape(editor.get("/admin/").get_data(as_text=True))
    assert page.index("舆情预警") < page.index("咨询 ")  # at the top, above the figures
    assert "怎么查询社保缴费记录" in page and "12 次（往常同一时段平均 0.0 次）" in page
    assert "社保缴费记录怎么查，电话138****5678" in page and "13812345678" not in page
    entry_id = svc.kb.store.get_by_key("T-SB-1").id
    assert f'href="/admin/entries/{entry_id}"' in page
    assert alert.started_at.strftime("%m-%d %H:00") in page

    topics.check(hour + timedelta(hours=2, minutes=1))  # a calm hour: the alert ends
    assert "舆情预警" not in editor.get("/admin/").get_data(as_text=True)
