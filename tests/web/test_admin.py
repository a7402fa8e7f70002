"""The curation admin with Flask's test client, over the FAKE-embedder knowledge base of tests/conftest.py."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict

from knowledge_base.errors import EntryNotFound
from knowledge_base.fields import COLUMNS, FIELDS, FIELDS_BY_NAME, GUIDE_FIELDS, Kind
from knowledge_base.records import ServiceGuide, Status
from knowledge_base.staff.accounts import SIGN_IN_FAILED
from knowledge_base.transfer import read_entries
from tests.web.conftest import PASSWORD, csrf_of, sign_in
from web_widget.admin import entry_from_form, form_values

pytestmark = pytest.mark.unit

PAGES = [
    "/admin/",
    "/admin/entries",
    "/admin/entries/1",
    "/admin/entries/1/edit",
    "/admin/entries/1/history",
    "/admin/entries/new",
    "/admin/drafts",
    "/admin/test?q=社保缴费记录",
    "/admin/queue",
    "/admin/transfer",
    "/admin/dictionaries",
    "/admin/dictionaries/synonyms.tsv",
]


def _form(client, **fields):
    return {"csrf_token": client.csrf, **fields}


def _entry_id(app, key):
    return app.extensions["hotline"].kb.store.get_by_key(key).id


def _draft_form(client, **changes):
    fields = {
        "question": "怎么查询社保缴费记录",
        "similar_questions": "社保交了几个月在哪查\n社保缴费明细查询",
        "answer": "登录粤省事小程序查询社保缴费记录。",
        "department": "广东省人力资源和社会保障厅",
        "regions": "广东省",
        "policy_title": "《社会保险法》",
    }
    fields.update(changes)
    return _form(client, **fields)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_sign_in(client, path):
    reply = client.get(path)
    assert reply.status_code == 302 and "/staff/login" in reply.headers["Location"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_an_editor(editor_client, path):
    reply = editor_client.get(path)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
    assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", PAGES)
def test_operators_cannot_open_the_admin(operator_client, path):
    assert operator_client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/admin/users", "/admin/audit"])
def test_user_pages_are_for_administrators_only(app, path):
    assert sign_in(app, "reviewer").get(path).status_code == 403
    assert sign_in(app, "admin").get(path).status_code == 200


def test_wrong_password_and_lockout(app, client):
    app.extensions["hotline"].accounts.create_user("li", PASSWORD, "editor", actor="test")
    token = csrf_of(client)
    for _ in range(5):
        reply = client.post("/staff/login", data={"username": "li", "password": "wrong-password", "csrf_token": token})
        assert reply.status_code == 401 and "用户名或密码错误" in reply.get_data(as_text=True)
    reply = client.post("/staff/login", data={"username": "li", "password": PASSWORD, "csrf_token": token})
    # Locked: the same message as any other failure (nobody learns which usernames exist); the audit log knows.
    assert reply.status_code == 401 and SIGN_IN_FAILED in reply.get_data(as_text=True)
    log = app.extensions["hotline"].accounts.audit_log(actor="li")
    assert [r["action"] for r in log].count("login.failed") == 6 and log[0]["detail"]["reason"] == "locked"


def test_sign_in_without_csrf_token_is_refused(app, client):
    app.extensions["hotline"].accounts.create_user("li", PASSWORD, "editor", actor="test")
    reply = client.post("/staff/login", data={"username": "li", "password": PASSWORD})
    assert reply.status_code == 400 and "CSRF" in reply.get_data(as_text=True)


def test_post_with_a_wrong_csrf_token_is_refused_and_nothing_changes(app, editor_client):
    before = app.extensions["hotline"].workflow.drafts()
    reply = editor_client.post("/admin/drafts", data={**_draft_form(editor_client), "csrf_token": "forged"})
    assert reply.status_code == 400
    assert app.extensions["hotline"].workflow.drafts() == before


def test_session_expires_after_idle_minutes(app, editor_client):
    with editor_client.session_transaction() as session:
        session["seen"] -= app.extensions["hotline"].settings.session_minutes * 60 + 1
    assert editor_client.get("/admin/entries").status_code == 302


def test_sign_in_redirect_stays_on_this_site(app, client):
    app.extensions["hotline"].accounts.create_user("li", PASSWORD, "editor", actor="test")
    token = csrf_of(client)
    reply = client.post(
        "/staff/login?next=//evil.example/x", data={"username": "li", "password": PASSWORD, "csrf_token": token}
    )
    assert reply.status_code == 302 and "evil.example" not in reply.headers["Location"]


def test_draft_review_publish_reaches_search(app, fake_kb):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    reply = editor.post(
        "/admin/drafts",
        data=_draft_form(
            editor, key="T-NEW", question="居住证到期了怎么续签", answer="到派出所续签。", similar_questions=""
        ),
    )
    assert reply.status_code == 302
    draft_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    assert (
        fake_kb.search("居住证到期了怎么续签").best is None
        or fake_kb.search("居住证到期了怎么续签").best.entry.key != "T-NEW"
    )
    editor.post(f"/admin/drafts/{draft_id}/submit", data=_form(editor, draft_version="1"))
    # An editor cannot publish.
    assert editor.post(f"/admin/drafts/{draft_id}/publish", data=_form(editor, draft_version="2")).status_code == 403
    reply = reviewer.post(f"/admin/drafts/{draft_id}/publish", data=_form(reviewer, draft_version="2"))
    assert reply.status_code == 302
    assert fake_kb.search("居住证到期了怎么续签").best.entry.key == "T-NEW"
    audit = [r["action"] for r in app.extensions["hotline"].accounts.audit_log()]
    assert {"draft.save", "draft.submit", "entry.publish"} <= set(audit)


def test_second_save_of_the_same_draft_is_refused_and_the_text_kept(app):
    first, second = sign_in(app, "editor", "wang"), sign_in(app, "editor", "zhao")
    entry_id = _entry_id(app, "T-SB-1")
    reply = first.post("/admin/drafts", data=_draft_form(first, entry_id=str(entry_id), entry_version="1"))
    draft_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    assert (
        first.post(
            f"/admin/drafts/{draft_id}", data=_draft_form(first, answer="王的改动", draft_version="1")
        ).status_code
        == 302
    )
    reply = second.post(f"/admin/drafts/{draft_id}", data=_draft_form(second, answer="赵的改动", draft_version="1"))
    assert reply.status_code == 409
    html = reply.get_data(as_text=True)
    assert "赵的改动" in html and "保存被拒绝" in html
    assert app.extensions["hotline"].workflow.draft(draft_id).entry.answer == "王的改动"


def test_second_editor_of_the_same_entry_is_refused_at_save_and_keeps_the_text(app):
    first, second = sign_in(app, "editor", "wang"), sign_in(app, "editor", "zhao")
    entry_id = str(_entry_id(app, "T-SB-1"))
    assert first.post("/admin/drafts", data=_draft_form(first, entry_id=entry_id, entry_version="1")).status_code == 302
    reply = second.post(
        "/admin/drafts", data=_draft_form(second, entry_id=entry_id, entry_version="1", answer="赵的答案")
    )
    assert reply.status_code == 409
    html = reply.get_data(as_text=True)
    assert "已有 wang 的进行中草稿" in html and "赵的答案" in html
    assert [d.author for d in app.extensions["hotline"].workflow.drafts()] == ["wang"]


def test_saving_over_an_entry_changed_since_it_was_opened_is_refused(app, fake_kb):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    entry_id = _entry_id(app, "T-SB-1")
    reviewer.post(
        f"/admin/entries/{entry_id}/status", data=_form(reviewer, status="archived", version="1", confirmed="1")
    )
    reply = editor.post("/admin/drafts", data=_draft_form(editor, entry_id=str(entry_id), entry_version="1"))
    assert reply.status_code == 409 and "现为第 2 版" in reply.get_data(as_text=True)


def test_publishing_a_draft_of_an_entry_changed_meanwhile_is_refused(app, fake_kb):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    entry_id = _entry_id(app, "T-SB-1")
    old = editor.post(
        "/admin/drafts", data=_draft_form(editor, entry_id=str(entry_id), entry_version="1", answer="旧稿")
    )
    old_id = int(old.headers["Location"].rsplit("/", 1)[1])
    reviewer.post(
        f"/admin/entries/{entry_id}/status", data=_form(reviewer, status="archived", version="1", confirmed="1")
    )
    reply = reviewer.post(
        f"/admin/drafts/{old_id}/publish", data=_form(reviewer, draft_version="1"), follow_redirects=True
    )
    assert "操作被拒绝" in reply.get_data(as_text=True)
    assert fake_kb.get(entry_id).answer != "旧稿"


def test_queue_adds_into_the_open_draft_of_an_entry(app, fake_kb):
    svc = app.extensions["hotline"]
    editor = sign_in(app, "editor")
    entry_id = _entry_id(app, "T-SB-1")
    editor.post("/admin/drafts", data=_draft_form(editor, entry_id=str(entry_id), entry_version="1"))
    reply = editor.post("/admin/queue/add", data=_form(editor, entry_id=str(entry_id), question=["社保记录去哪查"]))
    assert reply.status_code == 302
    drafts = svc.workflow.drafts()
    assert len(drafts) == 1 and "社保记录去哪查" in drafts[0].entry.similar_questions and drafts[0].version == 2


def test_invalid_draft_is_shown_again_with_the_reason(editor_client):
    reply = editor_client.post(
        "/admin/drafts", data=_draft_form(editor_client, question="", effective_date="2026-13-01")
    )
    assert reply.status_code == 400
    assert "未保存" in reply.get_data(as_text=True)


def test_hostile_text_is_escaped_everywhere(app, fake_kb):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    hostile = "<script>alert(1)</script>' OR 1=1; --"
    reply = editor.post(
        "/admin/drafts", data=_draft_form(editor, key="T-X", question=hostile + "怎么办", answer=hostile)
    )
    draft_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    reviewer.post(f"/admin/drafts/{draft_id}/publish", data=_form(reviewer, draft_version="1"))
    entry_id = _entry_id(app, "T-X")
    for path in (
        f"/admin/drafts/{draft_id}",
        f"/admin/entries/{entry_id}",
        "/admin/entries",
        f"/admin/entries/{entry_id}/history",
    ):
        html = reviewer.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_rollback_is_a_new_revision(app, fake_kb):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    entry_id = _entry_id(app, "T-SB-1")
    original = fake_kb.get(entry_id)
    reply = editor.post(
        "/admin/drafts", data=_draft_form(editor, entry_id=str(entry_id), entry_version="1", answer="改后的答案")
    )
    draft_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    reviewer.post(f"/admin/drafts/{draft_id}/publish", data=_form(reviewer, draft_version="1"))
    first = fake_kb.revisions(entry_id)[0]
    page = reviewer.get(f"/admin/entries/{entry_id}/revisions/{first.id}?against=current").get_data(as_text=True)
    assert "diff-del" in page or "diff-add" in page
    stale = reviewer.post(
        f"/admin/entries/{entry_id}/rollback/{first.id}", data=_form(reviewer, version="1", confirmed="1")
    )
    assert stale.status_code == 302 and fake_kb.get(entry_id).answer == "改后的答案"
    reviewer.post(f"/admin/entries/{entry_id}/rollback/{first.id}", data=_form(reviewer, version="2", confirmed="1"))
    restored = fake_kb.get(entry_id)
    assert restored.answer == original.answer and restored.version == 3
    assert (
        editor.post(f"/admin/entries/{entry_id}/rollback/{first.id}", data=_form(editor, version="3")).status_code
        == 403
    )


def test_archive_takes_an_entry_out_of_search(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    entry_id = _entry_id(app, "T-SB-1")
    reviewer.post(
        f"/admin/entries/{entry_id}/status", data=_form(reviewer, status="archived", version="1", confirmed="1")
    )
    assert fake_kb.get(entry_id).status is Status.ARCHIVED
    assert all(h.entry.id != entry_id for h in fake_kb.search("怎么查询社保缴费记录").hits)


def test_quality_checks_warn_about_duplicates_and_missing_policy(app):
    editor = sign_in(app, "editor")
    reply = editor.post(
        "/admin/drafts", data=_draft_form(editor, key="T-DUP", policy_title="", answer="重复"), follow_redirects=True
    )
    html = reply.get_data(as_text=True)
    assert "几乎相同" in html and "T-SB-1" in html and "没有政策依据" in html


def test_export_and_import_round_trip_and_a_bad_file_changes_nothing(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    exported = reviewer.get("/admin/export?format=jsonl")
    assert exported.status_code == 200
    rows = [json.loads(line) for line in exported.get_data(as_text=True).splitlines() if line.startswith("{")]
    assert {r["id"] for r in rows} >= {"T-SB-1", "T-GJJ-SZ"}
    version = fake_kb.store.kb_version()
    bad = io.BytesIO('id,question,answer\nT-1,,无问题\nT-2,好问题,"=HYPERLINK(""x"")"\n'.encode())
    reply = reviewer.post(
        "/admin/import",
        data={"csrf_token": reviewer.csrf, "file": (bad, "bad.csv")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 400 and "没有写入任何内容" in reply.get_data(as_text=True)
    assert fake_kb.store.kb_version() == version
    fake = io.BytesIO(b"\x00\x01 not a workbook")
    reply = reviewer.post(
        "/admin/import",
        data={"csrf_token": reviewer.csrf, "file": (fake, "fake.xlsx")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 400 and fake_kb.store.kb_version() == version
    good = io.BytesIO("id,question,answer\nT-NEW-1,新问题怎么办,新答案\n".encode())
    reply = reviewer.post(
        "/admin/import",
        data={"csrf_token": reviewer.csrf, "file": (good, "good.csv")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 200 and "新增 1 条" in reply.get_data(as_text=True)


def test_imports_need_a_reviewer_and_oversized_uploads_are_refused(app):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    small = io.BytesIO(b"id,question,answer\n")
    reply = editor.post(
        "/admin/import", data={"csrf_token": editor.csrf, "file": (small, "a.csv")}, content_type="multipart/form-data"
    )
    assert reply.status_code == 403
    huge = io.BytesIO(b"x" * (21 * 1024 * 1024))
    reply = reviewer.post(
        "/admin/import", data={"csrf_token": reviewer.csrf, "file": (huge, "a.csv")}, content_type="multipart/form-data"
    )
    assert reply.status_code == 413
    reply = reviewer.post(
        "/admin/import",
        data={"csrf_token": reviewer.csrf, "file": (io.BytesIO(b"x"), "a.exe")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 400


def test_too_many_similar_questions_are_refused(editor_client):
    many = "\n".join(f"问法{i}" for i in range(10_000))
    reply = editor_client.post("/admin/drafts", data=_draft_form(editor_client, similar_questions=many))
    assert reply.status_code == 400 and "最多 200" in reply.get_data(as_text=True)


def test_dictionary_edit_applies_without_restart(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    table = reviewer.get("/admin/dictionaries/synonyms.tsv").get_data(as_text=True)
    assert "社会保险" in table
    store = app.extensions["hotline"].dictionaries
    content = store.table("synonyms.tsv").content + "\n住房公积金\t房积金\n"
    reply = reviewer.post("/admin/dictionaries/synonyms.tsv", data=_form(reviewer, content=content, version="0"))
    assert reply.status_code == 302
    assert fake_kb.normaliser.normalise("房积金怎么提取") == fake_kb.normaliser.normalise("住房公积金怎么提取")
    bad = reviewer.post(
        "/admin/dictionaries/synonyms.tsv", data=_form(reviewer, content="社保\t社保\n甲\t社保\n", version="1")
    )
    assert bad.status_code == 400 and "未保存" in bad.get_data(as_text=True)
    stale = reviewer.post("/admin/dictionaries/synonyms.tsv", data=_form(reviewer, content=content, version="0"))
    assert stale.status_code == 400
    editor = sign_in(app, "editor")
    assert (
        editor.post("/admin/dictionaries/synonyms.tsv", data=_form(editor, content=content, version="1")).status_code
        == 403
    )


def test_users_are_managed_by_administrators_and_one_admin_remains(app):
    admin = sign_in(app, "admin")
    reply = admin.post(
        "/admin/users", data=_form(admin, action="create", username="chen", password="short", role="editor")
    )
    assert reply.status_code == 400 and "密码至少需要 10 个字符" in reply.get_data(as_text=True)
    reply = admin.post(
        "/admin/users", data=_form(admin, action="create", username="chen", password=PASSWORD, role="editor")
    )
    assert reply.status_code == 302
    reply = admin.post("/admin/users", data=_form(admin, action="disable", username="admin1", confirmed="1"))
    assert reply.status_code == 400
    assert "user.create" in [r["action"] for r in app.extensions["hotline"].accounts.audit_log()]


def test_curation_queue_clusters_failures_and_adds_a_similar_question(app, fake_kb):
    svc = app.extensions["hotline"]
    for query in ("社保缴费记录哪里能看", "社保缴费记录哪里能看", "社保缴费记录在哪看"):
        svc.interactions.log_answer(
            channel="web",
            sender_id="s1",
            query=query,
            decision="no_answer",
            entry_key="",
            score=None,
            kb_version=1,
            thresholds={},
            candidates=[],
        )
    editor = sign_in(app, "editor")
    html = editor.get("/admin/queue").get_data(as_text=True)
    assert "社保缴费记录哪里能看" in html and "未能回答" in html
    entry_id = _entry_id(app, "T-SB-1")
    reply = editor.post(
        "/admin/queue/add", data=_form(editor, entry_id=str(entry_id), question=["社保缴费记录哪里能看"])
    )
    assert reply.status_code == 302
    draft = svc.workflow.drafts()[0]
    assert "社保缴费记录哪里能看" in draft.entry.similar_questions
    assert "社保缴费记录哪里能看" not in editor.get("/admin/queue").get_data(as_text=True)


def test_test_pane_explains_the_decision(editor_client):
    html = editor_client.get("/admin/test?q=深圳公积金提取流程&region=深圳").get_data(as_text=True)
    assert "澄清 94.4%（config.yml）" in html  # where each tuned value comes from
    assert "决策" in html and "T-GJJ-SZ" in html and "阈值" in html
    assert editor_client.get("/admin/test?q=" + "长" * 5000).status_code == 200


# -- one description of the fields: the form reads and shows them as import and export do ---------------


class _FormFields(HTMLParser):
    """The edit form's labels (by the name of the control they label) and the values its controls show."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self._names: dict[str, str] = {}  # control id -> name
        self._label_for: str | None = None
        self._label_text = ""
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "label" and "for" in a:
            self._label_for, self._label_text = a["for"], ""
        elif tag == "br" and self._label_for is not None:
            self.labels[self._label_for] = self._label_text.strip()  # the hint after <br> is not the label
            self._label_for = None
        elif tag in ("input", "textarea") and a.get("name") and a.get("id"):
            self._names[a["id"]] = a["name"]
            if tag == "input" and a.get("type") != "hidden":
                self.values[a["name"]] = a.get("value", "")
            if tag == "textarea":
                self._textarea, self.values[a["name"]] = a["name"], ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label_for is not None:
            self.labels[self._label_for] = self._label_text.strip()
            self._label_for = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._label_for is not None:
            self._label_text += data
        if self._textarea is not None:
            self.values[self._textarea] += data

    def by_name(self) -> dict[str, str]:
        return {self._names[i]: text for i, text in self.labels.items() if i in self._names}


def _form_fields(html: str) -> _FormFields:
    parser = _FormFields()
    parser.feed(html.split('id="entry-form"', 1)[1].split("</form>", 1)[0])
    return parser


# the form's control for the entry's 编号 is named "key"; the file column is "id"
_FORM_NAME_OF = {"id": "key"}

SHORT_LISTS = ["社保，转移\n医保", " 甲 ; 乙；丙,\n\n丁、戊 ", "一\r\n二\r\n"]
LIST_CASES = [
    *[("tags", text) for text in SHORT_LISTS],
    *[("similar_questions", text) for text in [*SHORT_LISTS, "社保，怎么转移？\r\n身份证、户口本丢了\r\n"]],
    ("regions", "广东省/深圳市、广东省/广州市"),
    ("regions", "广东省/深圳市\r\n广东省，湖南省;海南省 ；广西壮族自治区\n"),
]


@pytest.mark.parametrize(("name", "text"), LIST_CASES)
def test_the_form_and_the_import_read_a_list_alike(tmp_path, name, text):
    from_form = entry_from_form(MultiDict({"question": "问", name: text}), entry_id=None, version=0)
    path = tmp_path / "kb.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["标准问", FIELDS_BY_NAME[name].label], ["问", text]])
    (imported,) = read_entries(path)
    assert getattr(from_form, name) == getattr(imported, name)
    assert tuple(map(str, getattr(from_form, name))) == FIELDS_BY_NAME[name].split(text)


def test_every_list_field_is_tried_in_the_form_and_the_import():
    assert {name for name, _ in LIST_CASES} == {f.name for f in FIELDS if f.kind is Kind.LIST}


def test_the_form_labels_are_the_export_headers(app, editor_client):
    labels = _form_fields(editor_client.get("/admin/entries/new").get_data(as_text=True)).by_name()
    reviewer = sign_in(app, "reviewer")
    exported = reviewer.get("/admin/export?format=csv").get_data(as_text=True).lstrip("\ufeff")
    headers = dict(zip(COLUMNS, next(csv.reader(io.StringIO(exported))), strict=True))
    shown = {name: headers[name] for name in headers if _FORM_NAME_OF.get(name, name) in labels}
    assert shown == {name: labels[_FORM_NAME_OF.get(name, name)] for name in shown}
    assert set(shown) == {f.name for f in FIELDS if f.imported} - {"status"}  # status is set by the workflow


def test_form_save_form_round_trips(app, editor_client):
    svc = app.extensions["hotline"]
    typed = _draft_form(
        editor_client,
        key="T-RT",
        question="社保怎么转移？",
        similar_questions="社保，怎么转移？\r\n身份证、户口本丢了",
        regions="广东省/深圳市、广东省/广州市",
        tags="社保，转移; 医保",
        policy_number="粤府〔2024〕12号",
        effective_date="2024-01-01",
    )
    reply = editor_client.post("/admin/drafts", data=typed)
    draft_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    saved = svc.workflow.draft(draft_id).entry
    assert saved.tags == ("社保", "转移", "医保")
    assert saved.similar_questions == ("社保，怎么转移？", "身份证、户口本丢了")
    shown = _form_fields(editor_client.get(f"/admin/drafts/{draft_id}").get_data(as_text=True)).values
    assert shown == form_values(saved)
    assert shown["tags"] == "社保\n转移\n医保"
    # saving the form as shown changes nothing, and shows the same form again
    again = editor_client.post(f"/admin/drafts/{draft_id}", data=_form(editor_client, draft_version="1", **shown))
    assert again.status_code == 302
    resaved = svc.workflow.draft(draft_id)
    assert resaved.version == 2 and resaved.entry.content() == saved.content() and resaved.entry.key == saved.key
    assert _form_fields(editor_client.get(f"/admin/drafts/{draft_id}").get_data(as_text=True)).values == shown


# -- the service guide (办事指南) -------------------------------------------------------------------------


def test_the_edit_form_groups_the_guide_under_its_heading(editor_client):
    html = editor_client.get("/admin/entries/new").get_data(as_text=True)
    guide = html[html.index('id="guide-fields"') :]
    assert "办事指南（可选）" in guide
    labels = _form_fields(html).by_name()
    for field in GUIDE_FIELDS:
        assert labels[field.name] == field.label and f'name="{field.name}"' in guide


def test_the_guide_goes_from_the_form_through_review_to_the_entry_and_the_test_pane(app, fake_kb):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    typed = _draft_form(
        editor,
        key="T-GUIDE",
        question="居住证签注怎么办理",
        answer="每年到社区服务站或在粤省事签注。",
        similar_questions="",
        materials="居住证\r\n身份证",
        location="居住地社区服务站",
        online="粤省事",
    )
    reply = editor.post("/admin/drafts", data=typed)
    assert reply.status_code == 302
    draft_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    draft = app.extensions["hotline"].workflow.draft(draft_id)
    assert draft.entry.guide == ServiceGuide(materials="居住证\n身份证", location="居住地社区服务站", online="粤省事")
    shown = _form_fields(editor.get(f"/admin/drafts/{draft_id}").get_data(as_text=True)).values
    assert shown["materials"] == "居住证\n身份证" and shown["fees"] == ""
    reply = reviewer.post(f"/admin/drafts/{draft_id}/publish", data=_form(reviewer, draft_version="1"))
    assert reply.status_code == 302
    stored = fake_kb.store.get_by_key("T-GUIDE")
    assert stored.guide == draft.entry.guide
    page = reviewer.get(f"/admin/entries/{stored.id}").get_data(as_text=True)
    section = page[page.index('id="entry-guide"') :]
    order = [section.index(text) for text in ("申请材料", "居住证\n身份证", "办理地点", "网上办理")]
    assert order == sorted(order)
    assert "收费标准" not in section  # only the aspects that have text
    pane = editor.get("/admin/test", query_string={"q": "居住证签注怎么办理"}).get_data(as_text=True)
    guide = pane[pane.index('id="test-guide"') :]
    assert "居住证签注怎么办理" in guide and "申请材料" in guide and "居住地社区服务站" in guide
    # and editing the published entry starts from its guide
    edit = _form_fields(editor.get(f"/admin/entries/{stored.id}/edit").get_data(as_text=True)).values
    assert edit["location"] == "居住地社区服务站"


def test_entries_without_a_guide_say_so(editor_client):
    html = editor_client.get("/admin/entries/1").get_data(as_text=True)
    assert "未填写办事指南" in html
    pane = editor_client.get("/admin/test?q=怎么查询社保缴费记录").get_data(as_text=True)
    assert 'id="test-guide"' in pane and "未填写办事指南" in pane


@pytest.mark.parametrize(("value", "words"), [("身份证\x07", "控制字符"), ("材" * 10_001, "最多 5000 个字")])
def test_a_bad_aspect_in_the_form_is_refused_naming_it_and_the_text_is_kept(app, editor_client, value, words):
    drafts_before = len(app.extensions["hotline"].workflow.drafts())
    reply = editor_client.post("/admin/drafts", data=_draft_form(editor_client, key="T-BAD-GUIDE", materials=value))
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400 and "未保存：「申请材料」" in html and words in html
    assert "登录粤省事小程序查询社保缴费记录。" in html  # everything typed is shown again
    assert len(app.extensions["hotline"].workflow.drafts()) == drafts_before


def test_a_bad_aspect_cell_rejects_the_import_naming_row_and_column(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    version = fake_kb.store.kb_version()
    text = "编号,标准问,答案,申请材料\nT-G1,好问题,好答案,身份证\nT-G2,另一个问题,答案,身份证\x01户口簿\n"
    reply = reviewer.post(
        "/admin/import",
        data={"csrf_token": reviewer.csrf, "file": (io.BytesIO(text.encode()), "guide.csv")},
        content_type="multipart/form-data",
    )
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400 and "没有写入任何内容" in html
    assert "guide.csv 第 3 行「申请材料」：「申请材料」含有控制字符" in html
    assert fake_kb.store.kb_version() == version
    with pytest.raises(EntryNotFound):
        fake_kb.store.get_by_key("T-G1")  # nothing stored, not even the good row
    good = "编号,标准问,答案,申请材料,咨询电话\nT-G1,好问题,好答案,身份证,12345\n"
    reply = reviewer.post(
        "/admin/import",
        data={"csrf_token": reviewer.csrf, "file": (io.BytesIO(good.encode()), "guide.csv")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 200
    assert fake_kb.store.get_by_key("T-G1").guide == ServiceGuide(materials="身份证", enquiry_phone="12345")
    exported = reviewer.get("/admin/export?format=csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {r["编号"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert rows["T-G1"]["申请材料"] == "身份证" and rows["T-G1"]["咨询电话"] == "12345"


def test_the_revision_diff_shows_a_changed_aspect(app, fake_kb):
    svc = app.extensions["hotline"]
    entry = fake_kb.store.get_by_key("T-SB-1")
    svc.kb.update(entry.replace(guide=ServiceGuide(fees="不收费")), author="tester")
    revision = svc.kb.revisions(entry.id)[-1]
    html = sign_in(app, "editor").get(f"/admin/entries/{entry.id}/revisions/{revision.id}").get_data(as_text=True)
    changed = html[html.index("收费标准") :]
    assert "✱" in changed[:200] and "不收费" in changed
