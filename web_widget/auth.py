"""Staff sign-in: sessions that expire, role checks on every staff page, an audit record of each sign-in."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import ParamSpec
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from knowledge_base.staff.accounts import AccountError, User
from web_widget.security import client_address
from web_widget.services import services

auth = Blueprint("auth", __name__, url_prefix="/staff")

P = ParamSpec("P")
ABSOLUTE_SESSION_SECONDS = 12 * 3600  # a full shift; then sign in again


def current_user() -> User | None:
    """The signed-in staff member of this request, or None (loaded once per request)."""
    if "user" in g:
        return g.user  # type: ignore[no-any-return]
    g.user = None
    uid, seen, since = session.get("uid"), session.get("seen", 0), session.get("since", 0)
    if uid is None:
        return None
    now = time.time()
    idle_limit = services().settings.session_minutes * 60
    if now - seen > idle_limit or now - since > ABSOLUTE_SESSION_SECONDS:
        session.clear()
        g.session_expired = True
        return None
    user = services().accounts.user_by_id(int(uid))
    if user is None or user.disabled:
        session.clear()
        return None
    session["seen"] = now
    g.user = user
    return user


def _wants_json() -> bool:
    return request.path.startswith(("/operator/api/", "/admin/api/")) or request.is_json


def login_required(role: str) -> Callable[[Callable[P, ResponseReturnValue]], Callable[P, ResponseReturnValue]]:
    """Let only signed-in staff whose role includes ``role`` through: 401 (or the sign-in page) / 403."""

    def wrap(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            user = current_user()
            if user is None:
                if _wants_json():
                    return jsonify(error="请先登录（会话已过期或未登录）"), 401
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not services().accounts.can(user, role):
                services().accounts.audit(user.username, "access.denied", request.path, {"needs": role})
                if _wants_json():
                    return jsonify(error=f"您的角色无权执行此操作（需要{role}）"), 403
                abort(403, description="您的角色无权访问此页面")
            return view(*args, **kwargs)

        return guarded

    return wrap


def _safe_next(target: str | None) -> str:
    # Only paths on this site: an open redirect would let a phishing link borrow our sign-in page.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("admin.home")


@auth.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = ""
    if request.method == "POST":
        username = request.form.get("username", "")[:40]
        password = request.form.get("password", "")[:200]
        try:
            user = services().accounts.authenticate(username, password, ip=client_address())
        except AccountError as exc:
            error = str(exc)
        else:
            csrf = session.get("csrf")
            session.clear()  # a fresh session on sign-in (no fixation)
            session.update(uid=user.id, seen=time.time(), since=time.time(), csrf=csrf)
            session.permanent = True
            home = url_for("operator.console") if user.role == "operator" else url_for("admin.home")
            return redirect(_safe_next(request.args.get("next")) if request.args.get("next") else home)
    expired = bool(request.args.get("expired"))
    return render_template("staff/login.html", error=error, expired=expired), (401 if error else 200)


@auth.post("/logout")
def logout() -> ResponseReturnValue:
    user = current_user()
    if user is not None:
        services().accounts.audit(user.username, "logout", "", {}, ip=client_address())
    session.clear()
    return redirect(url_for("auth.login"))
