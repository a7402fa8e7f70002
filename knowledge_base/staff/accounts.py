"""Staff accounts and the audit log: who may do what, and a record of everything they did.

Roles, each including the one before: ``operator`` (hotline console), ``dispatcher``
(派单: moves work orders through their life), ``editor`` (drafts entries), ``reviewer``
(approves, publishes, archives, rolls back), ``admin`` (users and settings).
Passwords are stored as salted scrypt hashes;
five wrong passwords in a row lock the account for fifteen minutes, and every
failed sign-in gets the same message (:data:`SIGN_IN_FAILED`), so nobody learns
which usernames exist or are locked. Each account has a *session generation*:
signing out, a new password, a new role or disabling the account bumps it, which
ends every session that began before (:meth:`AccountStore.end_sessions`).

Example:
    >>> from knowledge_base.storage.database import open_database
    >>> accounts = AccountStore(open_database(":memory:"))
    >>> user = accounts.create_user("wang", "a-long-passphrase", "editor", actor="setup")
    >>> accounts.authenticate("wang", "a-long-passphrase").role
    'editor'
    >>> accounts.can(user, "reviewer")
    False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.settings import STAFF_ROLES
from knowledge_base.storage.database import Database
from knowledge_base.storage.migrate import ensure_current

ROLES = STAFF_ROLES
ROLE_NAMES = {"operator": "话务员", "dispatcher": "派单员", "editor": "编辑", "reviewer": "审核员", "admin": "管理员"}
MIN_PASSWORD = 10
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SIGN_IN_FAILED = "登录失败：用户名或密码错误，或账号已锁定、停用（多次输错后请15分钟后再试）。如有疑问请联系管理员。"
"""The one message of every failed sign-in: unknown user, wrong password, locked or disabled account, or too many
failures from the address. Which of them it was is in the audit log, for administrators."""
_USERNAME = re.compile(r"^[a-zA-Z0-9_.-]{2,40}$")
# scrypt cost: about 50 ms per check here, slow enough to hurt guessing, fast enough for sign-in.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccountError(KnowledgeBaseError):
    """A sign-in failed or an account change is not allowed; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime
    session_generation: int = 0

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"没有“{role}”这个角色；可选角色：{'、'.join(ROLES)}")
    return role


def check_new_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少需要 {MIN_PASSWORD} 个字符")
    if len(password) > 200:
        raise AccountError("密码最长 200 个字符")
    return password


class AccountStore:
    """Users and the audit log in the knowledge base's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        ensure_current(db)

    # -- users -------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str, *, display_name: str = "", actor: str) -> User:
        """Add an account.

        Raises:
            AccountError: a bad username, role or password, or the username is taken.
        """
        username = (username or "").strip()
        if not _USERNAME.match(username):
            raise AccountError("用户名须为 2-40 个字母、数字或 . - _")
        check_role(role)
        check_new_password(password)
        display = (display_name or username).strip()[:50]
        with self.db.transaction():
            if self.db.query_one("SELECT id FROM users WHERE username=?", (username,)):
                raise AccountError(f"用户名“{username}”已被使用")
            self.db.insert(
                "INSERT INTO users (username, display_name, role, password_hash, disabled, failed_logins, "
                "locked_until, created_at) VALUES (?, ?, ?, ?, 0, 0, NULL, ?)",
                (username, display, role, hash_password(password), _now()),
            )
        self.audit(actor, "user.create", username, {"role": role})
        return self.user(username)

    def user(self, username: str) -> User:
        row = self.db.query_one("SELECT * FROM users WHERE username=?", (username,))
        if row is None:
            raise AccountError(f"没有用户“{username}”")
        return _user(row)

    def user_by_id(self, user_id: int) -> User | None:
        row = self.db.query_one("SELECT * FROM users WHERE id=?", (user_id,))
        return _user(row) if row else None

    def users(self) -> list[User]:
        return [_user(r) for r in self.db.query("SELECT * FROM users ORDER BY username")]

    def count(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    def authenticate(self, username: str, password: str, *, ip: str = "") -> User:
        """The user whose password this is.

        Raises:
            AccountError: unknown user, wrong password, disabled or locked account, all with the one
                message :data:`SIGN_IN_FAILED` and about the same time taken; the audit log says which.
        """
        row = self.db.query_one("SELECT * FROM users WHERE username=?", ((username or "").strip(),))
        now = datetime.now()
        if row is None:
            check_password(password or "", hash_password("timing"))  # same cost as a real check
            self.audit(username[:40] if username else "-", "login.failed", "", {"reason": "unknown user"}, ip=ip)
            raise AccountError(SIGN_IN_FAILED)
        if row["locked_until"] and datetime.fromisoformat(row["locked_until"]) > now:
            check_password(password or "", row["password_hash"])  # as slow as any other refusal
            self.audit(row["username"], "login.failed", "", {"reason": "locked"}, ip=ip)
            raise AccountError(SIGN_IN_FAILED)
        if not check_password(password or "", row["password_hash"]):
            failed = int(row["failed_logins"]) + 1
            locked = (now + LOCKOUT).isoformat(timespec="seconds") if failed >= MAX_FAILED_LOGINS else None
            self.db.execute(
                "UPDATE users SET failed_logins=?, locked_until=? WHERE id=?",
                (0 if locked else failed, locked, row["id"]),
            )
            self.audit(row["username"], "login.failed", "", {"reason": "wrong password"}, ip=ip)
            raise AccountError(SIGN_IN_FAILED)
        if row["disabled"]:
            self.audit(row["username"], "login.failed", "", {"reason": "disabled"}, ip=ip)
            raise AccountError(SIGN_IN_FAILED)
        self.db.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE id=?", (row["id"],))
        self.audit(row["username"], "login", "", {}, ip=ip)
        return _user(row)

    def set_role(self, username: str, role: str, *, actor: str) -> User:
        check_role(role)
        user = self.user(username)
        if user.role == "admin" and role != "admin":
            self._keep_an_admin(user.username)
        # A new role ends the account's sessions: a demoted user keeps no page the old role opened.
        self.db.execute("UPDATE users SET role=?, session_generation=session_generation+1 WHERE id=?", (role, user.id))
        self.audit(actor, "user.role", username, {"from": user.role, "to": role})
        return self.user(username)

    def set_disabled(self, username: str, disabled: bool, *, actor: str) -> User:
        user = self.user(username)
        if disabled and user.role == "admin":
            self._keep_an_admin(user.username)
        self.db.execute(
            "UPDATE users SET disabled=?, session_generation=session_generation+1 WHERE id=?", (int(disabled), user.id)
        )
        self.audit(actor, "user.disable" if disabled else "user.enable", username, {})
        return self.user(username)

    def set_password(self, username: str, password: str, *, actor: str) -> None:
        user = self.user(username)
        check_new_password(password)
        self.db.execute(
            # Whoever knew the old password (or holds a session from it) is out.
            "UPDATE users SET password_hash=?, failed_logins=0, locked_until=NULL, "
            "session_generation=session_generation+1 WHERE id=?",
            (hash_password(password), user.id),
        )
        self.audit(actor, "user.password", username, {})

    def end_sessions(self, username: str, *, actor: str, ip: str = "") -> User:
        """End every session of ``username`` (sign-out ends them all: a copied cookie stops working too).

        Returns:
            The account with its new session generation.
        """
        user = self.user(username)
        self.db.execute("UPDATE users SET session_generation=session_generation+1 WHERE id=?", (user.id,))
        self.audit(actor, "user.sessions_ended", username, {}, ip=ip)
        return self.user(username)

    def recent_failures(self, ip: str, *, within: timedelta) -> int:
        """Failed sign-ins from address ``ip`` in the last ``within``.

        Counted from the audit log, where every failure is recorded anyway: every worker and host
        shares the count (with or without Redis) and it survives restarts.
        """
        since = (datetime.now() - within).isoformat(timespec="seconds")
        row = self.db.query_one(
            "SELECT COUNT(*) AS n FROM audit_log WHERE created_at>=? AND action='login.failed' AND ip=?", (since, ip)
        )
        return int(row["n"]) if row else 0

    def _keep_an_admin(self, leaving: str) -> None:
        rows = self.db.query("SELECT username FROM users WHERE role='admin' AND disabled=0 AND username<>?", (leaving,))
        if not rows:
            raise AccountError("至少要保留一位在用的管理员")

    @staticmethod
    def can(user: User, role: str) -> bool:
        """True when ``user``'s role includes ``role`` (admin includes reviewer includes editor ...)."""
        return not user.disabled and ROLES.index(user.role) >= ROLES.index(check_role(role))

    # -- audit log ---------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any], *, ip: str = "") -> None:
        """Record who did what to which target, and when."""
        self.db.execute(
            "INSERT INTO audit_log (created_at, actor, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?)",
            (_now(), actor[:100], action[:60], str(target)[:200], json.dumps(detail, ensure_ascii=False)[:4000], ip),
        )

    def audit_log(self, *, limit: int = 200, actor: str = "", target: str = "") -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM audit_log WHERE 1=1", list[Any]()
        if actor:
            sql, args = sql + " AND actor=?", [*args, actor]
        if target:
            sql, args = sql + " AND target=?", [*args, target]
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _user(row: dict[str, Any]) -> User:
    return User(
        id=int(row["id"]),
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        session_generation=int(row["session_generation"]),
    )
