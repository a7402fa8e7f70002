"""The admin's 检索校准 page: who may fit and apply, CSRF, the audit log, and searches following the applied values."""

from __future__ import annotations

import pytest

from knowledge_base.search.calibration import Calibration, CalibrationStore
from tests.web.conftest import sign_in

pytestmark = pytest.mark.unit

FITTED = Calibration(
    values={"lexical_weight": 0.12, "answer_threshold": 0.9, "answer_margin": 0.01, "clarify_threshold": 0.85},
    measured={
        "n_questions": 40,
        "n_answerable": 40,
        "hit_at_1": 0.8,
        "mrr_at_10": 0.85,
        "answer_rate": 0.5,
        "clarify_rate": 0.4,
        "no_answer_rate": 0.1,
        "wrong_answer_rate": 0.01,
        "weights": [[0.0, 0.75, 0.8], [0.12, 0.8, 0.85]],
        "reliable": True,
    },
    method="测试拟合",
    fitted_by="tester",
    fitted_at="2026-01-01T00:00:00",
)


def _calibrations(app) -> CalibrationStore:
    return CalibrationStore(app.extensions["hotline"].db)


def _form(client, **fields):
    return {"csrf_token": client.csrf, **fields}


def test_editors_see_the_values_in_effect_and_cannot_apply(app, fake_kb):
    editor = sign_in(app, "editor")
    page = editor.get("/admin/calibration").get_data(as_text=True)
    assert "检索校准" in page and "词汇匹配权重" in page and "config.yml" in page
    assert "需要审核员权限" in page and ">应用<" not in page
    _calibrations(app).save_pending(FITTED)
    assert editor.post("/admin/calibration/apply", data=_form(editor)).status_code == 403
    assert editor.post("/admin/calibration/fit", data=_form(editor)).status_code == 403
    assert fake_kb.settings.lexical_weight == fake_kb.configured_settings.lexical_weight == 0.03  # nothing applied
    assert "检索校准" in editor.get("/admin/").get_data(as_text=True)  # linked from the navigation


def test_operators_and_strangers_are_kept_out(app):
    assert app.test_client().get("/admin/calibration").status_code in (302, 401)
    operator = sign_in(app, "operator")
    assert operator.get("/admin/calibration").status_code == 403


def test_apply_needs_the_csrf_token(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    _calibrations(app).save_pending(FITTED)
    assert reviewer.post("/admin/calibration/apply", data={}).status_code == 400
    assert _calibrations(app).applied() is None


def test_reviewer_applies_the_fit_searches_use_it_and_the_audit_log_says_so_in_chinese(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    _calibrations(app).save_pending(FITTED)
    page = reviewer.get("/admin/calibration").get_data(as_text=True)
    assert "待应用的拟合结果" in page and "0.12" in page and ">应用<" in page
    version = fake_kb.store.kb_version()
    reply = reviewer.post("/admin/calibration/apply", data=_form(reviewer))
    assert reply.status_code == 302
    assert fake_kb.store.kb_version() == version + 1
    found = fake_kb.search("社保缴费记录怎么查")
    assert found.thresholds["lexical_weight"] == 0.12 and found.thresholds["answer_threshold"] == 0.9
    assert fake_kb.sources["lexical_weight"] == "calibration"
    applied = _calibrations(app).applied()
    assert applied is not None and applied.applied_by == "reviewer1"
    audit = app.extensions["hotline"].accounts.audit_log(actor="reviewer1")
    entry = next(r for r in audit if r["action"] == "calibration.apply")
    assert entry["detail"]["操作"] == "应用检索校准" and entry["detail"]["词汇匹配权重"] == "0.03 → 0.12"
    page = reviewer.get("/admin/calibration").get_data(as_text=True)
    assert "已应用的校准" in page and "恢复默认" in page
    # A second apply finds nothing pending: it says so instead of failing.
    again = reviewer.post("/admin/calibration/apply", data=_form(reviewer), follow_redirects=True)
    assert "没有待应用的校准结果" in again.get_data(as_text=True)


def test_reset_goes_back_to_config(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    _calibrations(app).save_pending(FITTED)
    reviewer.post("/admin/calibration/apply", data=_form(reviewer))
    assert fake_kb.settings.lexical_weight == 0.12
    reply = reviewer.post("/admin/calibration/reset", data=_form(reviewer), follow_redirects=True)
    assert "已恢复默认值" in reply.get_data(as_text=True)
    assert fake_kb.search("社保缴费记录怎么查").thresholds["lexical_weight"] == 0.03
    assert fake_kb.sources["lexical_weight"] == "config" and _calibrations(app).applied() is None
    actions = [r["action"] for r in app.extensions["hotline"].accounts.audit_log(actor="reviewer1")]
    assert "calibration.reset" in actions


def test_reviewer_runs_the_fit_and_it_waits_for_review(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    reply = reviewer.post("/admin/calibration/fit", data=_form(reviewer), follow_redirects=True)
    text = reply.get_data(as_text=True)
    assert "不可靠" in text  # four similar questions in the test KB
    pending = _calibrations(app).pending()
    assert pending is not None and pending.fitted_by == "reviewer1" and "lexical_weight" in pending.values
    assert _calibrations(app).applied() is None and fake_kb.settings.lexical_weight == 0.03
    assert "calibration.fit" in [r["action"] for r in app.extensions["hotline"].accounts.audit_log()]
