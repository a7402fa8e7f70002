"""The admin's 检索校准 page: the lexical weight and thresholds fitted for this knowledge base, applied by a reviewer.

A reviewer runs the fit (leave one wording out on the knowledge base's own similar
questions, as ``hotline calibrate --save`` does), reads what it measured against the
values in effect, and applies it (应用) or goes back to config.yml's values (恢复默认).
Applying writes the database and moves the KB version, so every worker searches with
the new values within seconds; each step is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from knowledge_base.errors import InvalidEntry
from knowledge_base.search.calibration import LABELS, SOURCE_NAMES, TUNED, CalibrationStore
from web_widget.auth import current_user, login_required
from web_widget.security import client_address
from web_widget.services import services

calibration = Blueprint("calibration", __name__, url_prefix="/admin/calibration")


def _store() -> CalibrationStore:
    return CalibrationStore(services().db)


def _username() -> str:
    user = current_user()
    assert user is not None  # every view here is behind login_required
    return user.username


def _audit(action: str, detail: dict[str, Any]) -> None:
    services().accounts.audit(_username(), action, "检索校准", detail, ip=client_address())


def _changes(before: dict[str, float], after: dict[str, float]) -> dict[str, str]:
    """Each tuned value as 旧 → 新, for the audit log."""
    return {LABELS[n]: f"{before[n]} → {after[n]}" for n in TUNED if n in after and after[n] != before[n]}


@calibration.get("")
@login_required("editor")
def page() -> ResponseReturnValue:
    kb = services().kb
    kb.sync()  # the values in effect as of the newest KB version
    user = current_user()
    store = _store()
    configured = kb.configured_settings
    rows = [
        {
            "name": name,
            "label": LABELS[name],
            "value": getattr(kb.settings, name),
            "source": SOURCE_NAMES[kb.sources[name]],
            "configured": getattr(configured, name),
        }
        for name in TUNED
    ]
    return render_template(
        "calibration.html",
        rows=rows,
        applied=kb.applied_calibration,
        pending=store.pending(),
        labels=LABELS,
        can_apply=user is not None and services().accounts.can(user, "reviewer"),
    )


@calibration.post("/fit")
@login_required("reviewer")
def fit() -> ResponseReturnValue:
    from knowledge_base.search.fitting import fit_held_out

    kb = services().kb
    try:
        found = fit_held_out(kb)
    except ValueError as exc:
        flash(f"未拟合：{exc}", "error")
        return redirect(url_for("calibration.page"))
    pending = _store().save_pending(found.calibration(by=_username(), current=kb.settings))
    _audit(
        "calibration.fit",
        {
            "操作": "拟合检索校准（待应用）",
            "留出问法数": found.n_questions,
            **{LABELS[n]: v for n, v in pending.values.items()},
        },
    )
    if found.reliable:
        flash(f"已完成拟合：{found.n_questions} 条相似问法，结果待审核员应用", "ok")
    else:
        flash(f"已完成拟合，但只有 {found.n_questions} 条相似问法，结果不可靠，建议保留默认值", "error")
    return redirect(url_for("calibration.page"))


@calibration.post("/apply")
@login_required("reviewer")
def apply() -> ResponseReturnValue:
    kb = services().kb
    before = {n: float(getattr(kb.settings, n)) for n in TUNED}
    try:
        applied, version = _store().apply_pending(author=_username())
    except InvalidEntry as exc:
        flash(f"未应用：{exc}", "error")
        return redirect(url_for("calibration.page"))
    kb.announce_change()
    _audit(
        "calibration.apply",
        {"操作": "应用检索校准", "知识库版本": version, **_changes(before, dict(applied.values))},
    )
    pinned = [LABELS[n] for n in applied.values if kb.sources[n] == "environment"]
    message = "已应用检索校准，所有服务进程将在几秒内按新值检索"
    if pinned:
        message += f"；{'、'.join(pinned)}由环境变量指定，仍以环境变量为准"
    flash(message, "ok")
    return redirect(url_for("calibration.page"))


@calibration.post("/reset")
@login_required("reviewer")
def reset() -> ResponseReturnValue:
    kb = services().kb
    if _store().applied() is None:
        flash("当前未应用任何校准，已在使用默认值", "ok")
        return redirect(url_for("calibration.page"))
    before = {n: float(getattr(kb.settings, n)) for n in TUNED}
    version = _store().reset(author=_username())
    kb.announce_change()
    after = {n: float(getattr(kb.settings, n)) for n in TUNED}
    _audit("calibration.reset", {"操作": "恢复默认检索参数", "知识库版本": version, **_changes(before, after)})
    flash("已恢复默认值（config.yml），所有服务进程将在几秒内生效", "ok")
    return redirect(url_for("calibration.page"))
