"""Staff pages a non-technical civil servant can use: Chinese messages, plain times and percentages, confirmations,
a draft that survives the end of a session, and a curation queue that does not push a far-off suggestion."""

from __future__ import annotations

import csv
import io
import re

import pytest

from knowledge_base.records import Decision
from knowledge_base.search.ranking import Thresholds, decide, reason_in_chinese
from knowledge_base.staff.curation import SUGGESTION_FLOOR
from tests.web.conftest import sign_in

ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\d\d:\d\d:\d\d")
SHOWN_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
PERCENT = re.compile(r"(\d+)%")


def _form(client, **fields):
    return {"csrf_token": client.csrf, **fields}


def _entry_id(app, key):
    return app.extensions["hotline"].kb.store.get_by_key(key).id


def _draft(client, **fields):
    base = {"question": "怎么查询社保缴费记录", "answer": "登录粤省事查询。", "action": "save"}
    return _form(client, **{**base, **fields})


def _log_failure(app, query: str) -> None:
    app.extensions["hotline"].interactions.log_answer(
        channel="web",
        sender_id="s-" + query,
        query=query,
        decision="no_answer",
        entry_key="",
        score=None,
        kb_version=1,
        thresholds={},
        candidates=[],
    )


# -- times, percentages, codes ----------------------------------------------------------


def test_times_read_as_date_and_minute_on_every_page_staff_read(app, fake_kb):
    editor, reviewer, admin = sign_in(app, "editor"), sign_in(app, "reviewer"), sign_in(app, "admin")
    entry_id = _entry_id(app, "T-SB-1")
    saved = editor.post("/admin/drafts", data=_draft(editor, entry_id=str(entry_id), entry_version="1"))
    draft_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    reviewer.post(f"/admin/drafts/{draft_id}/publish", data=_form(reviewer, draft_version="1"))
    editor.post("/admin/drafts", data=_draft(editor, question="还在编辑的新问题"))  # an open draft for the list
    revision_id = fake_kb.revisions(entry_id)[-1].id
    pages = [
        (editor, "/admin/drafts"),
        (editor, f"/admin/drafts/{draft_id}"),
        (editor, f"/admin/entries/{entry_id}"),
        (editor, f"/admin/entries/{entry_id}/history"),
        (editor, f"/admin/entries/{entry_id}/revisions/{revision_id}"),
        (admin, "/admin/audit"),
    ]
    for client, path in pages:
        html = client.get(path).get_data(as_text=True)
        main = html.split('<main id="main"', 1)[1]
        assert SHOWN_TIME.search(main), path
        assert not ISO_SECONDS.search(main), (path, ISO_SECONDS.search(main))


def test_the_audit_log_names_actions_and_details_in_chinese(app, fake_kb):
    editor, admin = sign_in(app, "editor"), sign_in(app, "admin")
    editor.post("/admin/drafts", data=_draft(editor, question="新的问题"))
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert "保存草稿" in html and "登录" in html and "草稿：" in html
    for code in ("draft.save", "login<", "user.create"):
        assert f">{code}" not in html


def test_history_names_revisions_in_chinese(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    entry_id = _entry_id(app, "T-SB-1")
    first = fake_kb.revisions(entry_id)[0]
    reviewer.post(
        f"/admin/entries/{entry_id}/status", data=_form(reviewer, status="archived", version="1", confirmed="1")
    )
    reviewer.post(f"/admin/entries/{entry_id}/rollback/{first.id}", data=_form(reviewer, version="2", confirmed="1"))
    html = reviewer.get(f"/admin/entries/{entry_id}/history").get_data(as_text=True)
    assert f"回滚到修订 {first.id}" in html and "导入" in html
    assert "rollback to revision" not in html and ">import<" not in html


def test_the_test_pane_gives_its_reason_in_chinese_and_never_more_than_100_percent(app, fake_kb):
    editor = sign_in(app, "editor")
    html = editor.get("/admin/test", query_string={"q": "怎么查询社保缴费记录"}).get_data(as_text=True)
    reason = re.search(r'<p id="reason">原因：([^<]*)</p>', html)
    assert reason and "最高匹配度" in reason.group(1), html
    assert not re.search(r"[a-z]{4,}", reason.group(1))  # no English words (threshold names, "score", ...)
    scores = [int(n) for n in PERCENT.findall(html.split('<section class="card result"', 1)[1])]
    assert scores and max(scores) <= 100


@pytest.mark.parametrize(
    ("scores", "decision", "words"),
    [
        ([0.97, 0.90], Decision.ANSWER, "直接答复"),
        ([1.03], Decision.ANSWER, "最高匹配度 100%"),
        ([0.95, 0.945], Decision.CLARIFY, "只领先第二名 0.5 个百分点"),
        ([0.85, 0.84], Decision.CLARIFY, "在澄清线 80% 和直接答复线 90% 之间"),
        ([0.5], Decision.NO_ANSWER, "低于澄清线 80%"),
        ([], Decision.NO_ANSWER, "没有找到任何候选条目"),
    ],
)
def test_the_chinese_reason_follows_the_same_rule_as_the_decision(scores, decision, words):
    t = Thresholds(answer_threshold=0.9, answer_margin=0.02, clarify_threshold=0.8, clarify_window=0.04)
    assert decide(scores, t).decision is decision
    assert words in reason_in_chinese(scores, t)
    assert decide(scores, t).reason.isascii()  # what logs and benchmarks record stays as it was


def test_scores_are_percentages_capped_at_100(app):
    from web_widget.filters import percent

    assert [percent(x) for x in (1.031, 1.0, 0.999, 0.5, -0.2, None)] == ["100%", "100%", "99%", "50%", "0%", ""]


# -- import and export ----------------------------------------------------------------------


def test_export_writes_statuses_in_words(app, fake_kb):
    reply = sign_in(app, "editor").get("/admin/export", query_string={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(reply.get_data().decode("utf-8-sig"))))
    assert rows and {r["状态"] for r in rows} <= {"已发布", "已归档", "草稿", "待审核"}


def test_a_rejected_import_names_the_chosen_file_row_and_chinese_column(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    data = "编号,标准问,生效日期,状态\nX-1,问题一,明年,已发布\nX-2,问题二,2024-01-01,published\n".encode()
    reply = reviewer.post(
        "/admin/import",
        data=_form(reviewer, file=(io.BytesIO(data), "十一月条目.csv")),
        content_type="multipart/form-data",
    )
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400
    assert "十一月条目.csv 第 2 行「生效日期」：“明年”不是日期" in html
    assert "upload" not in html and "effective_date" not in html


# -- confirmations without a script ---------------------------------------------------------


def test_without_confirmation_a_destructive_action_shows_a_confirmation_page_and_changes_nothing(app, fake_kb):
    reviewer, admin, editor = sign_in(app, "reviewer"), sign_in(app, "admin"), sign_in(app, "editor")
    entry_id = _entry_id(app, "T-SB-1")
    first = fake_kb.revisions(entry_id)[0]
    saved = editor.post("/admin/drafts", data=_draft(editor, question="另一个问题"))
    draft_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    asks = [
        (reviewer, f"/admin/entries/{entry_id}/status", {"status": "archived", "version": "1"}, "确定归档"),
        (reviewer, f"/admin/entries/{entry_id}/rollback/{first.id}", {"version": "1"}, "确定回滚"),
        (editor, f"/admin/drafts/{draft_id}/discard", {"draft_version": "1"}, "确定放弃草稿"),
        (admin, "/admin/users", {"action": "disable", "username": "editor1"}, "确定停用"),
    ]
    for client, path, fields, button in asks:
        reply = client.post(path, data=_form(client, **fields))
        html = reply.get_data(as_text=True)
        assert reply.status_code == 200 and button in html and 'name="confirmed" value="1"' in html, path
        for name, value in fields.items():
            assert f'name="{name}" value="{value}"' in html
    svc = app.extensions["hotline"]
    assert fake_kb.get(entry_id).version == 1 and fake_kb.get(entry_id).status.value == "published"
    assert svc.workflow.draft(draft_id).is_open and not svc.accounts.user("editor1").disabled
    # The second step does it.
    editor.post(f"/admin/drafts/{draft_id}/discard", data=_form(editor, draft_version="1", confirmed="1"))
    assert not svc.workflow.draft(draft_id).is_open


def test_forms_of_destructive_actions_carry_their_question_for_the_script(app, fake_kb):
    reviewer, admin = sign_in(app, "reviewer"), sign_in(app, "admin")
    entry_id = _entry_id(app, "T-SB-1")
    assert 'data-confirm="归档后' in reviewer.get(f"/admin/entries/{entry_id}").get_data(as_text=True)
    assert 'data-confirm="停用后' in admin.get("/admin/users").get_data(as_text=True)
    assert '<script src="/static/staff.js"' in admin.get("/admin/users").get_data(as_text=True)


# -- a session that ends while a draft is open ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fields", "back"),
    [
        ("/admin/drafts", {"entry_id": "ENTRY", "entry_version": "1"}, "/admin/entries/ENTRY/edit"),
        ("/admin/drafts", {}, "/admin/entries/new"),
    ],
)
def test_a_draft_posted_after_the_session_ended_goes_back_to_its_form_after_sign_in(app, fake_kb, path, fields, back):
    editor = sign_in(app, "editor")
    entry_id = str(_entry_id(app, "T-SB-1"))
    fields = {k: v.replace("ENTRY", entry_id) for k, v in fields.items()}
    back = back.replace("ENTRY", entry_id)
    with editor.session_transaction() as session:
        session["seen"] = 0  # idle far longer than session_minutes
    reply = editor.post(path, data=_draft(editor, answer="刚打好的一大段答案", **fields))
    assert reply.status_code == 302
    location = reply.headers["Location"]
    assert location.startswith("/staff/login") and "expired=1" in location
    assert f"next={back}&" in location
    assert app.extensions["hotline"].workflow.drafts() == []
    assert "会话已过期" in editor.get(location).get_data(as_text=True)
    # The form says where the browser must keep the text and where to sign in again.
    html = sign_in(app, "editor").get(back).get_data(as_text=True)
    assert 'data-session-url="/admin/api/session"' in html and "expired=1" in html


def test_the_session_check_answers_401_once_the_session_ended(app, fake_kb):
    editor = sign_in(app, "editor")
    assert editor.get("/admin/api/session").get_json() == {"ok": True}
    with editor.session_transaction() as session:
        session["seen"] = 0
    reply = editor.get("/admin/api/session")
    assert reply.status_code == 401


# -- the curation queue does not push a far-off suggestion ---------------------------------------


def test_a_far_off_suggestion_is_not_the_primary_action(app, fake_kb):
    _log_failure(app, "我要投诉噪音")  # nothing in the knowledge base is about noise
    _log_failure(app, "社保缴费明细查询")  # an entry's own similar question: as close as can be
    html = sign_in(app, "editor").get("/admin/queue").get_data(as_text=True)
    sections = {s.split("</h2>", 1)[0]: s for s in html.split('<section class="card"')[1:]}
    noise = next(s for h, s in sections.items() if "我要投诉噪音" in h)
    close = next(s for h, s in sections.items() if "社保缴费明细查询" in h)
    assert 'class="button primary new-entry"' in noise and 'class="add-similar"' in noise
    assert "很可能不是同一个问题" in noise
    assert 'class="add-similar primary"' in close and "primary new-entry" not in close
    assert int(re.search(r"相似度 (\d+)%", close).group(1)) >= 99
    clusters = {c.representative: c for c in app.extensions["hotline"].queue.clusters()}
    assert clusters["我要投诉噪音"].suggestion.dense < SUGGESTION_FLOOR <= clusters["社保缴费明细查询"].suggestion.dense
