"""How staff pages show times, scores and codes: one Jinja filter each, so every page says them the same way.

Staff are civil servants, not engineers: a time is ``2026-11-30 09:28`` (never ``2026-11-30T09:28:41``),
a similarity is a percentage that never passes 100 % (a score is a cosine plus a lexical bonus and can
exceed 1.0), and codes the software keeps (``entry.rollback``, ``published``, ``rollback to revision 3``)
are shown in Chinese.

Example:
    >>> from datetime import datetime
    >>> when(datetime(2026, 11, 30, 9, 28, 41)), when("2026-11-30T09:28:41"), when(None)
    ('2026-11-30 09:28', '2026-11-30 09:28', '')
    >>> percent(1.027), percent(0.8749), percent(-0.1)
    ('100%', '87%', '0%')
    >>> audit_action("entry.rollback"), revision_action("rollback to revision 3")
    ('回滚条目', '回滚到修订 3')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from knowledge_base.records import STATUS_NAMES, Status

__all__ = ["FILTERS", "audit_action", "audit_detail", "percent", "revision_action", "status_name", "when"]

AUDIT_ACTIONS = {
    "login": "登录",
    "login.failed": "登录失败",
    "login.throttled": "登录尝试过多（已暂停）",
    "logout": "退出登录",
    "access.denied": "无权访问（已拒绝）",
    "user.create": "新建用户",
    "user.role": "修改角色",
    "user.disable": "停用用户",
    "user.enable": "启用用户",
    "user.password": "重设密码",
    "draft.save": "保存草稿",
    "draft.submit": "提交审核",
    "draft.reject": "退回草稿",
    "draft.discard": "放弃草稿",
    "entry.publish": "发布条目",
    "entry.published": "重新发布条目",
    "entry.archived": "归档条目",
    "entry.rollback": "回滚条目",
    "queue.dismiss": "忽略待处理问题",
    "kb.export": "导出知识库",
    "kb.import": "导入知识库",
    "kb.import.rejected": "导入被拒绝",
    "dictionary.save": "保存词典",
    "dictionary.restore": "恢复词典旧版本",
    "work_order.view": "查看工单",
    "work_order.view_unmasked": "查看工单（完整号码）",
    "work_order.create": "新建工单",
    "work_order.assign": "派单 / 改派工单",
    "work_order.start": "工单开始办理",
    "work_order.finish": "办结工单",
    "work_order.reopen": "工单重新办理",
    "work_order.visit": "回访工单",
    "work_order.reveal_phone": "查看回访电话",
    "work_order.redeliver": "重新投递工单",
    "department.add": "新增部门（职责清单）",
    "department.edit": "修改部门（职责清单）",
    "department.activate": "启用部门",
    "department.deactivate": "停用部门",
    "department.import": "导入职责清单",
    "calibration.fit": "计算检索校准",
    "calibration.apply": "应用检索校准",
    "calibration.reset": "恢复默认检索参数",
}
"""Every audit action code of the application, in Chinese (:func:`audit_action`)."""

_AREAS = {
    "login": "登录",
    "user": "用户",
    "draft": "草稿",
    "entry": "条目",
    "queue": "待处理问题",
    "kb": "知识库",
    "dictionary": "词典",
    "work_order": "工单",
    "department": "职责清单",
    "calibration": "检索校准",
    "session": "会话",
}

_DETAIL_KEYS = {
    "version": "版本",
    "draft": "草稿",
    "note": "意见",
    "revision": "修订",
    "role": "角色",
    "from": "原来",
    "to": "改为",
    "reason": "原因",
    "entries": "条目数",
    "added": "新增",
    "updated": "更新",
    "problems": "问题数",
    "questions": "问法",
    "count": "数量",
    "needs": "需要的角色",
    "channel": "渠道",
    "restored": "恢复自",
}

_DETAIL_VALUES = {
    "unknown user": "用户名不存在",
    "locked": "账号已锁定",
    "wrong password": "密码错误",
    "disabled": "账号已停用",
    "editor": "编辑",
    "reviewer": "审核员",
    "admin": "管理员",
    "operator": "话务员",
    "hotline-operator": "话务员登记",
}

_REVISION_ACTIONS = {"create": "新建", "update": "修改", "import": "导入", "delete": "删除"}
_ROLLBACK = re.compile(r"^rollback to revision (\d+)$")


def when(value: object) -> str:
    """A time as ``2026-11-30 09:28`` (a date alone as ``2026-11-30``); ISO text is read, None is empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def percent(score: object) -> str:
    """A similarity score as a whole percentage, clamped to 0-100 % (fused scores can pass 1.0)."""
    try:
        number = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if math.isnan(number):
        return ""
    return f"{math.floor(min(max(number, 0.0), 1.0) * 100)}%"


def audit_action(code: str) -> str:
    """An audit action in Chinese; an unknown code is named by its area and kept for reference."""
    if code in AUDIT_ACTIONS:
        return AUDIT_ACTIONS[code]
    area = _AREAS.get(code.split(".", 1)[0], "其他")
    return f"{area}操作（{code}）"


def audit_detail(detail: object) -> str:
    """An audit record's details as ``版本：3；草稿：12`` with Chinese names where the app knows them."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    parts = []
    for key, value in detail.items():
        if isinstance(value, (list, tuple)):
            shown = "、".join(str(v) for v in value)
        else:
            shown = _DETAIL_VALUES.get(str(value), str(value))
        parts.append(f"{_DETAIL_KEYS.get(str(key), str(key))}：{shown}")
    return "；".join(parts)


def revision_action(action: str) -> str:
    """A revision's action (``create``, ``update``, ``import``, ``rollback to revision 3``) in Chinese."""
    rollback = _ROLLBACK.match(action or "")
    if rollback:
        return f"回滚到修订 {rollback.group(1)}"
    return _REVISION_ACTIONS.get(action, action)


def status_name(status: Status | str) -> str:
    """An entry's status in Chinese (已发布 ...)."""
    try:
        return STATUS_NAMES[Status(str(status))]
    except ValueError:
        return str(status)


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "percent": percent,
    "audit_action": audit_action,
    "audit_detail": audit_detail,
    "revision_action": revision_action,
    "status_name": status_name,
}
"""The filters by their template name; the admin blueprint installs them for every page of the app."""
