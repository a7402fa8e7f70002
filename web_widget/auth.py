"""Staff sign-in: sessions that expire, role checks on every staff page, an audit record of each sign-in.

The session cookie is signed but lives in the browser, so ending a session needs the server: each
session carries its account's *session generation* from sign-in, and a request whose generation is
no longer the account's is signed out. Sign-out, a new password, a new role and disabling bump the
generation (:class:`~knowledge_base.staff.accounts.AccountStore`), so a copied cookie stops working.

Failed sign-ins all get one message; besides the per-account lockout, an address with
``signin_failures_per_address`` failures in :data:`SIGN_IN_WINDOW` may not try again until they age out.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from knowledge_base.staff.accounts import SIGN_IN_FAILED, AccountError, User
from web_widget.security import client_address
from web_widget.services import services

auth = Blueprint("auth", __name__, url_prefix="/staff")

P = ParamSpec("P")
ABSOLUTE_SESSION_SECONDS = 12 * 3600  # a full shift; then sign in again
SIGN_IN_WINDOW = timedelta(minutes=15)


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
    if user is None or user.disabled or session.get("gen") != user.session_generation:
        session.clear()  # signed out, new password or role, disabled: this session ended on the server
        return None
    session["seen"] = now
    g.user = user
    return user


def keep_session(user: User) -> None:
    """Carry the current session over a change of the signed-in user's own account (their new password or role)."""
    if session.get("uid") == user.id:
        session["gen"] = user.session_generation


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
        accounts, address = services().accounts, client_address()
        limit = services().settings.signin_failures_per_address
        if limit and accounts.recent_failures(address, within=SIGN_IN_WINDOW) >= limit:
            # Not counted as a failure itself: the address may try again once its failures age out.
            accounts.audit(username[:40] or "-", "login.throttled", "", {"limit": limit}, ip=address)
            return render_template("staff/login.html", error=SIGN_IN_FAILED, expired=False), 429
        try:
            user = accounts.authenticate(username, password, ip=address)
        except AccountError as exc:
            error = str(exc)
        else:
            csrf = session.get("csrf")
            session.clear()  # a fresh session on sign-in (no fixation)
            session.update(uid=user.id, gen=user.session_generation, seen=time.time(), since=time.time(), csrf=csrf)
            session.permanent = True
            home = {"operator": url_for("operator.console"), "dispatcher": url_for("dispatch.orders")}.get(
                user.role, url_for("admin.home")
            )
            return redirect(_safe_next(request.args.get("next")) if request.args.get("next") else home)
    expired = bool(request.args.get("expired"))
    return render_template("staff/login.html", error=error, expired=expired), (401 if error else 200)


@auth.post("/logout")
def logout() -> ResponseReturnValue:
    user = current_user()
    if user is not None:
        services().accounts.audit(user.username, "logout", "", {}, ip=client_address())
        # Ends every session of the account, this cookie and any copy of it included.
        services().accounts.end_sessions(user.username, actor=user.username, ip=client_address())
    session.clear()
    return redirect(url_for("auth.login"))
