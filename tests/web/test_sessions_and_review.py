"""Sessions that end on the server, https-only cookies, one sign-in failure message, the per-address
sign-in limit, and four eyes on publishing; Flask's test client over the fake knowledge base."""

from __future__ import annotations

import dataclasses
import re
from http.cookies import SimpleCookie

import pytest

from knowledge_base.staff.accounts import SIGN_IN_FAILED
from tests.web.conftest import PASSWORD, csrf_of, sign_in
from web_widget import create_app

pytestmark = pytest.mark.unit


def _accounts(app):
    return app.extensions["hotline"].accounts


def _session_cookie(client) -> str:
    cookie = client.get_cookie("hotline_session")
    assert cookie is not None
    return str(cookie.value)


def _with_cookie(app, value: str):
    """Another browser holding a copy of a session cookie."""
    thief = app.test_client()
    thief.set_cookie("hotline_session", value)
    return thief


def _login(client, username: str, password: str, ip: str = "127.0.0.1"):
    token = csrf_of(client)
    return client.post(
        "/staff/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


# -- sessions --------------------------------------------------------------------------------


def test_a_copied_cookie_stops_working_after_sign_out(app):
    admin = sign_in(app, "admin")
    copy = _session_cookie(admin)
    assert _with_cookie(app, copy).get("/admin/users").status_code == 200  # a copy works while signed in
    assert admin.post("/staff/logout", data={"csrf_token": admin.csrf}).status_code == 302
    assert admin.get("/admin/users").status_code == 302  # this browser is out
    replay = _with_cookie(app, copy).get("/admin/users")
    assert replay.status_code == 302 and "/staff/login" in replay.headers["Location"]
    assert "user.sessions_ended" in {r["action"] for r in _accounts(app).audit_log(actor="admin1")}


@pytest.mark.parametrize(
    ("action", "fields"),
    [("password", {"password": "a-brand-new-passphrase"}), ("role", {"role": "operator"}), ("disable", {})],
)
def test_a_password_reset_role_change_or_disabling_ends_the_accounts_other_sessions(app, action, fields):
    editor, admin = sign_in(app, "editor"), sign_in(app, "admin")
    assert editor.get("/admin/drafts").status_code == 200
    reply = admin.post(
        "/admin/users",
        data={"csrf_token": admin.csrf, "action": action, "username": "editor1", "confirmed": "1", **fields},
    )
    assert reply.status_code == 302
    assert editor.get("/admin/drafts").status_code == 302  # signed out on the server
    assert editor.get("/operator/api/work_orders").status_code == 401
    assert admin.get("/admin/users").status_code == 200  # the administrator who did it stays in


def test_an_administrators_own_new_password_keeps_their_session_and_ends_their_others(app):
    admin, elsewhere = sign_in(app, "admin"), sign_in(app, "admin")
    reply = admin.post(
        "/admin/users",
        data={"csrf_token": admin.csrf, "action": "password", "username": "admin1", "password": "another-passphrase"},
    )
    assert reply.status_code == 302
    assert admin.get("/admin/users").status_code == 200
    assert elsewhere.get("/admin/users").status_code == 302


def test_cookies_are_secure_and_hsts_sent_only_with_https_only(settings, fake_kb, relay):
    plain = create_app(settings, kb=fake_kb, relay=relay)
    reply = plain.test_client().get("/staff/login")
    assert "Strict-Transport-Security" not in reply.headers
    assert "secure" not in reply.headers["Set-Cookie"].lower()

    https = create_app(dataclasses.replace(settings, https_only=True), kb=fake_kb, relay=relay)
    client = https.test_client()
    reply = client.get("/staff/login", base_url="https://localhost")
    assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
    morsel = SimpleCookie(reply.headers["Set-Cookie"])["hotline_session"]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert client.get("/chat", base_url="https://localhost").headers["Strict-Transport-Security"]


# -- sign-in ---------------------------------------------------------------------------------


def _message(reply) -> str:
    found = re.search(r'<p class="flash error" role="alert">([^<]*)</p>', reply.get_data(as_text=True))
    assert found, reply.get_data(as_text=True)
    return found.group(1)


def test_every_sign_in_failure_gets_the_same_message(app):
    accounts = _accounts(app)
    for name in ("known", "locked", "off"):
        accounts.create_user(name, PASSWORD, "editor", actor="test")
    accounts.set_disabled("off", True, actor="test")
    for _ in range(5):
        _login(app.test_client(), "locked", "wrong-password")
    replies = {
        "unknown user": _login(app.test_client(), "nobody-here", PASSWORD),
        "wrong password": _login(app.test_client(), "known", "wrong-password"),
        "locked": _login(app.test_client(), "locked", PASSWORD),  # the right password, while locked
        "disabled": _login(app.test_client(), "off", PASSWORD),
    }
    assert {why: (r.status_code, _message(r)) for why, r in replies.items()} == {
        why: (401, SIGN_IN_FAILED) for why in replies
    }
    reasons = {r["detail"].get("reason") for r in accounts.audit_log() if r["action"] == "login.failed"}
    assert {"unknown user", "wrong password", "locked", "disabled"} <= reasons  # administrators can tell


def test_one_address_is_stopped_after_its_failures_and_others_are_not(settings, fake_kb, relay):
    app = create_app(dataclasses.replace(settings, signin_failures_per_address=3), kb=fake_kb, relay=relay)
    _accounts(app).create_user("wang", PASSWORD, "editor", actor="test")
    for name in ("a1", "b2", "c3"):  # different (unknown) usernames: the per-account lockout never sees them
        assert _login(app.test_client(), name, "guess", ip="203.0.113.9").status_code == 401
    refused = _login(app.test_client(), "wang", PASSWORD, ip="203.0.113.9")  # even the right password
    assert refused.status_code == 429 and _message(refused) == SIGN_IN_FAILED
    assert "login.throttled" in {r["action"] for r in _accounts(app).audit_log(actor="wang")}
    assert _login(app.test_client(), "wang", PASSWORD, ip="198.51.100.7").status_code == 302


def test_the_address_limit_counts_only_the_last_15_minutes(settings, fake_kb, relay):
    app = create_app(dataclasses.replace(settings, signin_failures_per_address=2), kb=fake_kb, relay=relay)
    accounts = _accounts(app)
    accounts.create_user("wang", PASSWORD, "editor", actor="test")
    for _ in range(2):
        _login(app.test_client(), "nobody", "guess", ip="203.0.113.9")
    assert _login(app.test_client(), "wang", PASSWORD, ip="203.0.113.9").status_code == 429
    accounts.db.execute("UPDATE audit_log SET created_at='2000-01-01T00:00:00' WHERE action='login.failed'")
    assert _login(app.test_client(), "wang", PASSWORD, ip="203.0.113.9").status_code == 302


# -- four eyes -------------------------------------------------------------------------------


def _save_draft(client, **fields) -> int:
    data = {
        "csrf_token": client.csrf,
        "key": "T-4EYES",
        "question": "居住证到期了怎么续签",
        "answer": "到派出所续签。",
        "department": "公安局",
        **fields,
    }
    reply = client.post("/admin/drafts", data=data)
    assert reply.status_code == 302, reply.get_data(as_text=True)
    return int(reply.headers["Location"].rsplit("/", 1)[1])


def _publish(client, draft_id: int, version: int = 1):
    return client.post(
        f"/admin/drafts/{draft_id}/publish",
        data={"csrf_token": client.csrf, "draft_version": str(version)},
        follow_redirects=True,
    )


def test_a_reviewer_cannot_publish_their_own_draft_by_default(app, fake_kb):
    reviewer = sign_in(app, "reviewer")
    draft_id = _save_draft(reviewer)
    reply = _publish(reviewer, draft_id)
    html = reply.get_data(as_text=True)
    assert "不能发布自己撰写的草稿" in html and "另一位审核员" in html
    assert app.extensions["hotline"].workflow.draft(draft_id).state == "draft"
    assert (
        fake_kb.search("居住证到期了怎么续签").best is None
        or fake_kb.search("居住证到期了怎么续签").best.entry.key != "T-4EYES"
    )
    assert "draft.publish_own_refused" in {r["action"] for r in _accounts(app).audit_log(actor="reviewer1")}

    # A second reviewer publishes it; the history names both.
    other = sign_in(app, "reviewer", "reviewer2")
    assert "已发布" in _publish(other, draft_id).get_data(as_text=True)
    entry_id = app.extensions["hotline"].kb.store.get_by_key("T-4EYES").id
    history = other.get(f"/admin/entries/{entry_id}/history").get_data(as_text=True)
    assert "撰写：reviewer1 · 发布：reviewer2" in history


def test_an_editors_draft_published_by_a_reviewer_shows_both_in_the_history(app):
    editor, reviewer = sign_in(app, "editor"), sign_in(app, "reviewer")
    draft_id = _save_draft(editor)
    assert "已发布" in _publish(reviewer, draft_id).get_data(as_text=True)
    entry_id = app.extensions["hotline"].kb.store.get_by_key("T-4EYES").id
    history = reviewer.get(f"/admin/entries/{entry_id}/history").get_data(as_text=True)
    assert "撰写：editor1 · 发布：reviewer1" in history


def test_one_person_offices_may_allow_self_publishing(settings, fake_kb, relay):
    app = create_app(dataclasses.replace(settings, allow_self_publish=True), kb=fake_kb, relay=relay)
    reviewer = sign_in(app, "reviewer")
    draft_id = _save_draft(reviewer)
    assert "已发布" in _publish(reviewer, draft_id).get_data(as_text=True)
    entry_id = app.extensions["hotline"].kb.store.get_by_key("T-4EYES").id
    history = reviewer.get(f"/admin/entries/{entry_id}/history").get_data(as_text=True)
    assert "撰写：reviewer1 · 发布：reviewer1" in history
