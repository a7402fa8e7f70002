"""The curation admin: entries, drafts and review, history and rollback, the queue, imports, dictionaries, users.

Editors draft; reviewers publish, archive, roll back and import; administrators
manage users and read the audit log. Every change goes through the workflow or
the stores, which record it in the audit log with who and when.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from knowledge_base.errors import (
    EntryNotFound,
    ImportRejected,
    InvalidEntry,
    KnowledgeBaseError,
    StaleVersion,
)
from knowledge_base.fields import FIELDS_BY_NAME, GUIDE_FIELDS, parse_date
from knowledge_base.records import Entry, PolicyBasis, Region, SearchResult, ServiceGuide, Status
from knowledge_base.staff.accounts import User
from web_widget.auth import current_user, keep_session, login_required
from web_widget.diffview import entry_diff
from web_widget.filters import FILTERS
from web_widget.security import client_address
from web_widget.services import services

if TYPE_CHECKING:
    from knowledge_base.orders.topics import Alert
    from knowledge_base.search.quality import Finding
    from knowledge_base.staff.workflow import Draft

log = logging.getLogger("hotline.web")

admin = Blueprint("admin", __name__, url_prefix="/admin")


@admin.record_once
def _install_filters(state: Any) -> None:
    # Times, percentages and codes read the same on every staff page (operator console included).
    state.app.jinja_env.filters.update(FILTERS)


@admin.context_processor
def _field_labels() -> dict[str, Any]:
    # The form's labels and hints are the export's headers and the import's rules: one description of each field.
    return {"fields": FIELDS_BY_NAME, "guide_fields": GUIDE_FIELDS}


PAGE_SIZE = 50
EXPORT_FORMATS = {"xlsx": "xlsx", "csv": "csv", "jsonl": "jsonl"}
IMPORT_SUFFIXES = (".xlsx", ".csv", ".jsonl", ".json", ".yaml", ".yml")
MAX_FORM_SIMILAR = 200


def _user() -> User:
    user = current_user()
    assert user is not None  # every view here is behind login_required
    return user


def _today() -> date:
    return services().kb.today()


def _items(form: MultiDict[str, str], name: str) -> tuple[str, ...]:
    """A list field's textarea as its items, split by the same rule as an import cell."""
    return FIELDS_BY_NAME[name].split(form.get(name) or "")


def _joined(name: str, items: Iterable[object]) -> str:
    return FIELDS_BY_NAME[name].join(str(item) for item in items)


def _date(form: MultiDict[str, str], name: str) -> date | None:
    value = form.get(name) or ""
    try:
        return parse_date(value)
    except ValueError:
        raise InvalidEntry(name, f"“{value.strip()}”不是日期（格式 YYYY-MM-DD）") from None


def entry_from_form(form: MultiDict[str, str], *, entry_id: int | None, version: int) -> Entry:
    """The entry an edit form describes.

    Raises:
        InvalidEntry: a field is missing or malformed; the message names it.
    """
    similar = _items(form, "similar_questions")
    if len(similar) > MAX_FORM_SIMILAR:
        raise InvalidEntry("similar_questions", f"{len(similar)} 条相似问法，最多 {MAX_FORM_SIMILAR} 条")
    regions = []
    for name in _items(form, "regions"):
        try:
            regions.append(Region.parse(name))
        except ValueError as exc:
            raise InvalidEntry("regions", str(exc)) from None
    return Entry(
        key=form.get("key", "").strip(),
        question=form.get("question", ""),
        similar_questions=tuple(similar),
        answer=form.get("answer", "").replace("\r\n", "\n").strip(),
        department=form.get("department", "").strip(),
        category=form.get("category", "").strip(),
        regions=tuple(regions),
        policy=PolicyBasis(
            form.get("policy_title", "").strip(),
            form.get("policy_number", "").strip(),
            form.get("policy_url", "").strip(),
        ),
        guide=ServiceGuide.from_mapping({f.name: form.get(f.name, "") for f in GUIDE_FIELDS}),
        effective_date=_date(form, "effective_date"),
        expiry_date=_date(form, "expiry_date"),
        tags=_items(form, "tags"),
        status=Status.DRAFT,
        id=entry_id,
        version=version,
    )


_OTHER_LABELS = {"policy": "政策依据", "guide": "办事指南", "version": "版本"}
# What the store says in English (it also serves the command line), as staff need to hear it.
_PLAIN_REFUSALS = {
    "revision": "不能回滚到这个修订：它属于其他条目，或没有保存内容",
    "id": "编号已被其他条目使用，或文件里有重复的编号",
    "author": "缺少操作人，请重新登录后再试",
}


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _refusal(exc: InvalidEntry) -> str:
    """A refused field as staff read it: by its Chinese label, never its key (a message naming it stays as is)."""
    message = exc.message
    if not _has_chinese(message):
        message = _PLAIN_REFUSALS.get(exc.field, "内容不符合要求，请检查后再试")
    field = FIELDS_BY_NAME.get(exc.field)
    label = field.label if field is not None else _OTHER_LABELS.get(exc.field, "")
    if not label or label in message:
        return message
    return f"{label}：{message}"


def _say(exc: Exception) -> str:
    """Any refusal of the knowledge base in Chinese: the workflow's own words, or a plain one for the store's."""
    if isinstance(exc, InvalidEntry):
        return _refusal(exc)
    text = str(exc)
    if _has_chinese(text):
        return text
    if isinstance(exc, StaleVersion):
        return f"条目已被他人修改（您看到的是第 {exc.expected} 版，现在是第 {exc.actual} 版），请刷新后重新操作"
    if isinstance(exc, EntryNotFound):
        return "没有找到这个条目或修订（可能已被删除），请刷新后再试"
    return "操作未完成，请刷新页面后再试"


def form_values(entry: Entry | None, form: MultiDict[str, str] | None = None) -> dict[str, str]:
    """The edit form's fields for ``entry``, or the posted ones when a refused save is shown again.

    Re-showing the posted values is what keeps everything an editor typed when a save is refused.
    """
    if form is not None:
        return {k: form.get(k, "") for k in form}
    if entry is None:
        return {}
    return {
        "key": entry.key,
        "question": entry.question,
        "similar_questions": _joined("similar_questions", entry.similar_questions),
        "answer": entry.answer,
        "department": entry.department,
        "category": entry.category,
        "regions": _joined("regions", entry.regions),
        "policy_title": entry.policy.title,
        "policy_number": entry.policy.number,
        "policy_url": entry.policy.url,
        **entry.guide.as_dict(),
        "effective_date": entry.effective_date.isoformat() if entry.effective_date else "",
        "expiry_date": entry.expiry_date.isoformat() if entry.expiry_date else "",
        "tags": _joined("tags", entry.tags),
    }


def _int(value: str | None, name: str) -> int:
    try:
        number = int(value or "")
    except ValueError:
        abort(400, description=f"{name} 缺失或不是整数")
    if not -(2**63) <= number < 2**63:  # the database's integers are 64-bit: a longer one would crash the query
        abort(400, description=f"{name} 超出范围")
    return number


def _unconfirmed(question: str, button: str, cancel: str) -> ResponseReturnValue | None:
    """The confirmation page for an action that cannot be taken back, or None once the person confirmed it.

    The page's script asks in a dialog and posts ``confirmed=1`` (static/staff.js, for forms with ``data-confirm``);
    without a script this page is the second step: the same form again, with its fields, 确定 and 取消.
    """
    if request.form.get("confirmed") == "1":
        return None
    fields = [(k, v) for k, v in request.form.items(multi=True) if k not in ("csrf_token", "confirmed")]
    return render_template(
        "admin/confirm.html", question=question, button=button, action=request.path, fields=fields, cancel=cancel
    )


def _audit(action: str, target: str, detail: dict[str, Any]) -> None:
    services().accounts.audit(_user().username, action, target, detail, ip=client_address())


# -- dashboard ------------------------------------------------------------------


@admin.get("/")
@login_required("editor")
def home() -> ResponseReturnValue:
    from knowledge_base.staff.reports import build_dashboard
    from web_widget import charts

    svc = services()
    days = min(max(_int(request.args.get("days") or "30", "days"), 1), 365)
    svc.interactions, svc.queue  # noqa: B018 - their tables must exist before the dashboard reads them
    board = build_dashboard(
        svc.db.query,
        svc.kb.store.entries(),
        today=_today(),
        days=days,
        normalise=svc.kb.normaliser.normalise,
        department_load=svc.interactions.orders.department_load(),
    )
    labels = board.labels
    decision_names = {"answer": "直接答复", "clarify": "澄清", "no_answer": "无法回答"}
    rates = {decision_names[k]: v for k, v in board.rate_series().items()}
    channel_names = {"web": "网站", "hotline": "热线"}
    questions = {channel_names.get(c, c): list(v) for c, v in board.questions.items()}
    feedback = {
        "有用": [f.useful for f in board.feedback_per_day],
        "没用": [f.not_useful for f in board.feedback_per_day],
    }
    figures = [
        (
            charts.line_chart(questions, labels, title="每日咨询量（按渠道）"),
            charts.data_table(questions, labels, caption="每日咨询量", totals=True),
        ),
        (
            charts.stacked_bar_chart(rates, labels, title="每日答复 / 澄清 / 无法回答比例", percent=True),
            charts.data_table(rates, labels, caption="每日决策比例", percent=True),
        ),
        (
            charts.bar_chart(feedback, labels, title="市民反馈（有用 / 没用）"),
            charts.data_table(feedback, labels, caption="每日反馈", totals=True),
        ),
        (
            charts.bar_chart({"工单": list(board.work_orders)}, labels, title="每日新建工单"),
            charts.data_table({"工单": list(board.work_orders)}, labels, caption="每日工单", totals=True),
        ),
    ]
    hot_topics, alert_entries = _hot_topics()
    return render_template(
        "admin/home.html",
        board=board,
        figures=figures,
        days=days,
        hot_topics=hot_topics,
        alert_entries=alert_entries,
    )


def _hot_topics() -> tuple[list[Alert], dict[str, Entry]]:
    """The active hot-topic alerts (舆情预警) and their linked entries by key, for the top of the dashboard."""
    from knowledge_base.orders.topics import alerts

    svc = services()
    active = alerts(svc.db, status="active")
    linked: dict[str, Entry] = {}
    for key in {k for a in active for k in a.entries}:
        with contextlib.suppress(EntryNotFound):  # archived or renamed since: shown without a link
            linked[key] = svc.kb.store.get_by_key(key)
    return active, linked


# -- entries --------------------------------------------------------------------


@admin.get("/entries")
@login_required("editor")
def entries() -> ResponseReturnValue:
    svc = services()
    args = request.args
    q = (args.get("q") or "").strip()[:100]
    department, category = (args.get("department") or "").strip(), (args.get("category") or "").strip()
    region, status = (args.get("region") or "").strip(), (args.get("status") or "").strip()
    expiring = args.get("expiring") == "1"
    all_entries = svc.kb.store.entries()
    today = _today()
    shown = []
    for e in all_entries:
        if q and q not in e.question and q not in e.key and not any(q in s for s in e.similar_questions):
            continue
        if department and department != e.department:
            continue
        if category and category != e.category:
            continue
        if region and not any(region in str(r) for r in e.regions):
            continue
        if status and e.status.value != status:
            continue
        if expiring and not (e.expiry_date and today <= e.expiry_date <= today + timedelta(days=30)):
            continue
        shown.append(e)
    page = max(_int(args.get("page") or "1", "page"), 1)
    pages = max((len(shown) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render_template(
        "admin/entries.html",
        entries=shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        total=len(shown),
        page=page,
        pages=pages,
        departments=sorted({e.department for e in all_entries if e.department}),
        categories=sorted({e.category for e in all_entries if e.category}),
        statuses=list(Status),
        args=args,
        base_args={k: v for k, v in args.items() if k != "page"},
        today=today,
    )


def _entry_or_404(entry_id: int) -> Entry:
    try:
        return services().kb.get(entry_id)
    except EntryNotFound:
        abort(404, description=f"没有编号为 {entry_id} 的条目")


@admin.get("/entries/<int:entry_id>")
@login_required("editor")
def entry(entry_id: int) -> ResponseReturnValue:
    current = _entry_or_404(entry_id)
    drafts = services().workflow.drafts(entry_id=entry_id)
    return render_template("admin/entry.html", entry=current, drafts=drafts, today=_today())


@admin.get("/entries/new")
@login_required("editor")
def new_entry() -> ResponseReturnValue:
    values = {"question": (request.args.get("question") or "")[:500]}
    return render_template("admin/edit.html", values=values, draft=None, entry=None, findings=[], diff=None)


@admin.get("/entries/<int:entry_id>/edit")
@login_required("editor")
def edit_entry(entry_id: int) -> ResponseReturnValue:
    current = _entry_or_404(entry_id)
    values = form_values(current)
    values["entry_version"] = str(current.version)
    return render_template("admin/edit.html", values=values, draft=None, entry=current, findings=[], diff=None)


@admin.post("/entries/<int:entry_id>/status")
@login_required("reviewer")
def entry_status(entry_id: int) -> ResponseReturnValue:
    form = request.form
    if form.get("status") == Status.ARCHIVED.value:
        current = _entry_or_404(entry_id)
        page = url_for("admin.entry", entry_id=entry_id)
        question = f"归档后，市民和话务员都查不到「{current.question}」。确定归档吗？"
        asked = _unconfirmed(question, "确定归档", page)
        if asked is not None:
            return asked
    try:
        stored = services().workflow.set_status(
            entry_id,
            form.get("status", ""),
            expected_version=_int(form.get("version"), "version"),
            author=_user().username,
        )
    except StaleVersion as exc:
        flash(f"操作被拒绝：{_say(exc)}", "error")
    except (InvalidEntry, EntryNotFound) as exc:
        flash(_say(exc), "error")
    else:
        flash(f"条目 {stored.key or stored.id} 已{'归档' if stored.status is Status.ARCHIVED else '发布'}", "ok")
    return redirect(url_for("admin.entry", entry_id=entry_id))


@admin.get("/entries/<int:entry_id>/history")
@login_required("editor")
def history(entry_id: int) -> ResponseReturnValue:
    current = _entry_or_404(entry_id)
    revisions = services().kb.revisions(entry_id)
    # Who wrote each published version and who published it (the revision's author is the publisher).
    published = services().workflow.publications(entry_id)
    return render_template(
        "admin/history.html", entry=current, revisions=list(reversed(revisions)), published=published
    )


@admin.get("/entries/<int:entry_id>/revisions/<int:revision_id>")
@login_required("editor")
def revision(entry_id: int, revision_id: int) -> ResponseReturnValue:
    current = _entry_or_404(entry_id)
    found = next((r for r in services().kb.revisions(entry_id) if r.id == revision_id), None)
    if found is None:
        abort(404, description=f"条目 {entry_id} 没有修订 {revision_id}")
    against = request.args.get("against") == "current"
    before, after = (found.after, current) if against else (found.before, found.after)
    return render_template(
        "admin/revision.html", entry=current, revision=found, diff=entry_diff(before, after), against=against
    )


@admin.post("/entries/<int:entry_id>/rollback/<int:revision_id>")
@login_required("reviewer")
def rollback(entry_id: int, revision_id: int) -> ResponseReturnValue:
    current = _entry_or_404(entry_id)
    question = f"「{current.question}」将回到修订 {revision_id} 的内容并立即发布（生成新版本，可再回滚）。确定回滚吗？"
    asked = _unconfirmed(question, "确定回滚", url_for("admin.history", entry_id=entry_id))
    if asked is not None:
        return asked
    try:
        stored = services().workflow.rollback(
            entry_id,
            revision_id,
            expected_version=_int(request.form.get("version"), "version"),
            author=_user().username,
        )
    except StaleVersion as exc:
        flash(f"回滚被拒绝：{_say(exc)}", "error")
        return redirect(url_for("admin.history", entry_id=entry_id))
    except (InvalidEntry, EntryNotFound) as exc:
        flash(f"回滚未完成：{_say(exc)}", "error")
        return redirect(url_for("admin.history", entry_id=entry_id))
    flash(f"已回滚到修订 {revision_id}，生成新版本 {stored.version}", "ok")
    return redirect(url_for("admin.entry", entry_id=entry_id))


# -- drafts and review ------------------------------------------------------------


@admin.get("/api/session")
@login_required("editor")
def session_alive() -> ResponseReturnValue:
    """Whether the session still holds: the edit form asks before it posts, and keeps the text when it does not."""
    return jsonify(ok=True)


def _draft_form_path() -> str:
    """The page of the draft form that was posted: where a person who signed in again continues."""
    draft_id = request.view_args.get("draft_id") if request.view_args else None
    if draft_id is not None:
        return url_for("admin.draft", draft_id=draft_id)
    entry_id = request.form.get("entry_id", "")
    if entry_id.isdigit() and len(entry_id) < 19:
        return url_for("admin.edit_entry", entry_id=int(entry_id))
    return url_for("admin.new_entry")


@admin.before_request
def _draft_after_session_ended() -> ResponseReturnValue | None:
    # A draft posted after the session ended: sign in (会话已过期) and come back to the same form, where the
    # page restores what the browser kept of the typed text (static/staff.js), instead of the drafts list.
    if request.endpoint != "admin.save_draft" or current_user() is not None:
        return None
    return redirect(url_for("auth.login", next=_draft_form_path(), expired=1))


@admin.get("/drafts")
@login_required("editor")
def drafts() -> ResponseReturnValue:
    return render_template("admin/drafts.html", drafts=services().workflow.drafts())


def _show_draft_form(
    values: dict[str, str], draft: Draft | None, entry: Entry | None, findings: list[Finding], status: int = 200
) -> ResponseReturnValue:
    diff = entry_diff(entry, draft.entry) if draft is not None and entry is not None else None
    return render_template(
        "admin/edit.html", values=values, draft=draft, entry=entry, findings=findings, diff=diff
    ), status


@admin.get("/drafts/<int:draft_id>")
@login_required("editor")
def draft(draft_id: int) -> ResponseReturnValue:
    from knowledge_base.search.quality import check_entry

    svc = services()
    try:
        found = svc.workflow.draft(draft_id)
    except EntryNotFound:
        abort(404, description=f"没有草稿 {draft_id}")
    entry = _maybe_entry(found.entry_id)
    findings = check_entry(svc.fresh_kb(), found.entry.replace(id=found.entry_id), today=_today())
    return _show_draft_form(form_values(found.entry), found, entry, findings)


def _maybe_entry(entry_id: int | None) -> Entry | None:
    if entry_id is None:
        return None
    try:
        return services().kb.get(entry_id)
    except EntryNotFound:
        return None


@admin.post("/drafts")
@admin.post("/drafts/<int:draft_id>")
@login_required("editor")
def save_draft(draft_id: int | None = None) -> ResponseReturnValue:
    """Save (and optionally submit) a draft; a refused save shows the form again with everything typed."""
    svc = services()
    form = request.form
    user = _user()
    existing = None
    if draft_id is not None:
        try:
            existing = svc.workflow.draft(draft_id)
        except EntryNotFound:
            abort(404, description=f"没有草稿 {draft_id}")
    entry_id = (
        existing.entry_id if existing else (_int(form.get("entry_id"), "entry_id") if form.get("entry_id") else None)
    )
    base_version = existing.base_version if existing else _int(form.get("entry_version") or "0", "entry_version")
    current = _maybe_entry(entry_id)
    values = form_values(None, form)
    try:
        proposed = entry_from_form(form, entry_id=entry_id, version=base_version)
        saved = svc.workflow.save(
            proposed,
            author=user.username,
            draft_id=draft_id,
            expected_version=_int(form.get("draft_version") or "0", "draft_version"),
        )
        if form.get("action") == "submit":
            saved = svc.workflow.submit(saved.id, expected_version=saved.version, author=user.username)
    except StaleVersion as exc:
        flash(f"保存被拒绝：{_say(exc)}", "error")
        return _show_draft_form(values, existing, current, [], 409)
    except InvalidEntry as exc:
        flash(f"未保存：{_refusal(exc)}", "error")
        return _show_draft_form(values, existing, current, [], 400)
    submitted = "并提交审核" if saved.state == "in_review" else ""
    # The draft page that follows runs the quality checks and shows them: once per save, not twice.
    flash(f"草稿已保存{submitted}（草稿 {saved.id}，第 {saved.version} 版）；质量检查结果见下方", "ok")
    return redirect(url_for("admin.draft", draft_id=saved.id))


@admin.post("/drafts/<int:draft_id>/<action>")
@login_required("editor")
def draft_action(draft_id: int, action: str) -> ResponseReturnValue:
    svc = services()
    user = _user()
    form = request.form
    version = _int(form.get("draft_version"), "draft_version")
    needs_reviewer = action in ("publish", "reject")
    if needs_reviewer and not svc.accounts.can(user, "reviewer"):
        svc.accounts.audit(user.username, "access.denied", request.path, {"needs": "reviewer"})
        abort(403, description="只有审核员可以发布或退回草稿")
    if action == "discard":
        question = f"放弃后，草稿 {draft_id} 里的修改都不会保留。确定放弃吗？"
        asked = _unconfirmed(question, "确定放弃草稿", url_for("admin.draft", draft_id=draft_id))
        if asked is not None:
            return asked
    try:
        if action == "submit":
            svc.workflow.submit(draft_id, expected_version=version, author=user.username)
            flash("已提交审核", "ok")
        elif action == "discard":
            svc.workflow.discard(draft_id, expected_version=version, author=user.username)
            flash("草稿已放弃", "ok")
        elif action == "reject":
            svc.workflow.reject(draft_id, expected_version=version, reviewer=user.username, note=form.get("note", ""))
            flash("已退回给编辑", "ok")
        elif action == "publish":
            stored = svc.workflow.publish(
                draft_id,
                expected_version=version,
                reviewer=user.username,
                allow_own=svc.settings.allow_self_publish,  # four eyes unless a one-person office turns it off
            )
            flash(f"已发布：条目 {stored.key or stored.id} 第 {stored.version} 版，市民和话务员现在就能查到", "ok")
            return redirect(url_for("admin.entry", entry_id=stored.id))
        else:
            abort(404, description=f"未知操作 {action}")
    except StaleVersion as exc:
        flash(f"操作被拒绝：{_say(exc)}", "error")
    except KnowledgeBaseError as exc:
        flash(f"操作未完成：{_say(exc)}", "error")
    return redirect(url_for("admin.draft", draft_id=draft_id))


# -- test pane ----------------------------------------------------------------------


@admin.route("/test", methods=["GET", "POST"])
@login_required("editor")
def test_pane() -> ResponseReturnValue:
    question = (request.values.get("q") or "").strip()
    region = (request.values.get("region") or "").strip()[:40]
    result, error = None, ""
    kb = services().fresh_kb()
    if question:
        try:
            result = kb.search(question, region=region or None, top_k=10, explain=True)
        except ValueError as exc:
            error = str(exc) if _has_chinese(str(exc)) else f"没有找到地区“{region}”：请填写省、市或区县的名称"
    sources = {name: _SOURCE_NAMES.get(source, source) for name, source in kb.sources.items()}
    return render_template(
        "admin/test.html",
        question=question,
        region=region,
        result=result,
        error=error,
        sources=sources,
        reason=_reason_in_chinese(result) if result is not None else "",
    )


def _reason_in_chinese(result: SearchResult) -> str:
    from knowledge_base.search.ranking import Thresholds, reason_in_chinese

    if not result.normalised:
        return "问题里没有可以检索的字词（只有标点、语气词或问候）：无法回答"
    reason = reason_in_chinese([h.score for h in result.hits], Thresholds.from_mapping(result.thresholds))
    if result.truncated:
        reason += f"；问题太长，只检索了前 {services().settings.max_query_chars} 个字"
    return reason


# Where each tuned value of the search comes from, as the test pane says it.
_SOURCE_NAMES = {"environment": "环境变量", "calibration": "已应用的检索校准", "config": "config.yml"}


# -- curation queue -----------------------------------------------------------------


@admin.get("/queue")
@login_required("editor")
def queue() -> ResponseReturnValue:
    days = min(max(_int(request.args.get("days") or "30", "days"), 1), 365)
    clusters = services().queue.clusters(days=days)
    return render_template("admin/queue.html", clusters=clusters, days=days)


@admin.post("/queue/add")
@login_required("editor")
def queue_add() -> ResponseReturnValue:
    """Add a cluster's questions as similar questions of an entry: a draft for review."""
    svc = services()
    form = request.form
    questions = [q[:500] for q in form.getlist("question") if q.strip()][:50]
    entry_id = _int(form.get("entry_id"), "entry_id")
    current = _entry_or_404(entry_id)
    if not questions:
        abort(400, description="没有选择要加入的问题")
    try:
        # Into the entry's open draft if someone is already editing it, so two drafts never compete.
        existing = svc.workflow.open_draft_for(entry_id)
        base = existing.entry if existing else current
        proposed = base.replace(similar_questions=(*base.similar_questions, *questions), status=Status.DRAFT)
        if existing:
            saved = svc.workflow.save(
                proposed, author=_user().username, draft_id=existing.id, expected_version=existing.version
            )
        else:
            saved = svc.workflow.save(proposed, author=_user().username)
    except (InvalidEntry, StaleVersion) as exc:
        flash(f"未能加入：{_say(exc)}", "error")
        return redirect(url_for("admin.queue"))
    svc.queue.resolve(questions, action=f"draft:{saved.id}", actor=_user().username)
    flash(f"已将 {len(questions)} 个问法加入条目 {current.key or current.id} 的草稿，请检查后提交审核", "ok")
    return redirect(url_for("admin.draft", draft_id=saved.id))


@admin.post("/queue/order-draft")
@login_required("editor")
def queue_order_draft() -> ResponseReturnValue:
    """生成草稿: a draft entry from a closed work order's general reply, with its cluster's wordings."""
    svc = services()
    number = (request.form.get("order") or "").strip()[:40]
    if not number:
        abort(400, description="没有指定工单")
    wordings = [q[:500] for q in request.form.getlist("question") if q.strip()][:50]
    try:
        saved = svc.queue.draft_from_order(number, wordings=wordings, workflow=svc.workflow, author=_user().username)
    except EntryNotFound:
        abort(404, description=f"没有工单 {number}")
    except (InvalidEntry, StaleVersion) as exc:
        flash(f"未能生成草稿：{_say(exc)}", "error")
        return redirect(url_for("admin.queue"))
    flash(f"已根据工单 {number} 的答复生成草稿 {saved.id}，请检查后提交审核", "ok")
    return redirect(url_for("admin.draft", draft_id=saved.id))


@admin.post("/queue/dismiss")
@login_required("editor")
def queue_dismiss() -> ResponseReturnValue:
    questions = [q[:500] for q in request.form.getlist("question") if q.strip()][:200]
    if not questions:
        abort(400, description="没有选择要处理的问题")
    count = services().queue.resolve(questions, action="dismissed", actor=_user().username)
    _audit("queue.dismiss", "", {"questions": questions[:20], "count": count})
    flash(f"已忽略 {count} 个问法", "ok")
    return redirect(url_for("admin.queue"))


# -- import / export ----------------------------------------------------------------


@admin.get("/transfer")
@login_required("editor")
def transfer() -> ResponseReturnValue:
    return render_template("admin/transfer.html", problems=[], summary=None)


@admin.get("/export")
@login_required("editor")
def export() -> ResponseReturnValue:
    from knowledge_base.transfer import write_entries

    fmt = EXPORT_FORMATS.get(request.args.get("format", "xlsx"))
    if fmt is None:
        abort(400, description="格式只能是 xlsx、csv 或 jsonl")
    entries = services().kb.store.entries()
    with tempfile.TemporaryDirectory(prefix="hotline-export-") as folder:
        path = Path(folder) / f"knowledge_base.{fmt}"
        write_entries(entries, path, format=fmt)
        data = path.read_bytes()
    _audit("kb.export", fmt, {"entries": len(entries)})
    name = f"hotline-kb-{date.today():%Y%m%d}.{fmt}"
    return send_file(io.BytesIO(data), as_attachment=True, download_name=name)


@admin.post("/import")
@login_required("reviewer")
def import_file() -> ResponseReturnValue:
    """Import a file all-or-nothing; every bad cell is reported with its row and column."""
    from knowledge_base.transfer import describe_problem, read_entries

    upload = request.files.get("file")
    if upload is None or not upload.filename:
        abort(400, description="请选择要导入的文件")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        abort(400, description=f"不支持的文件类型 {suffix or '（无扩展名）'}；支持 {'、'.join(IMPORT_SUFFIXES)}")
    encoding = "gbk" if request.form.get("encoding") == "gbk" else "utf-8"
    with tempfile.TemporaryDirectory(prefix="hotline-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        upload.save(path)
        try:
            # Saved under a name of ours; every message names the file the person chose.
            entries = read_entries(path, encoding=encoding, name=Path(upload.filename).name)
            summary = services().kb.import_entries(entries, author=_user().username)
        except ImportRejected as exc:
            problems = [describe_problem(p) for p in exc.problems[:200]]
            _audit("kb.import.rejected", upload.filename, {"problems": len(exc.problems)})
            return render_template("admin/transfer.html", problems=problems, total=len(exc.problems), summary=None), 400
        except (ValueError, KnowledgeBaseError) as exc:
            problems = [f"{Path(upload.filename).name}：{_say(exc)}"]
            return render_template("admin/transfer.html", problems=problems, total=1, summary=None), 400
    _audit("kb.import", upload.filename, {"added": summary.added, "updated": summary.updated})
    return render_template("admin/transfer.html", problems=[], summary=summary)


# -- dictionaries -------------------------------------------------------------------


@admin.get("/dictionaries")
@login_required("editor")
def dictionaries() -> ResponseReturnValue:
    from knowledge_base.search.dictionaries import EDITABLE

    store = services().dictionaries
    return render_template("admin/dictionaries.html", tables=[store.table(n) for n in EDITABLE])


@admin.route("/dictionaries/<name>", methods=["GET", "POST"])
@login_required("editor")
def dictionary(name: str) -> ResponseReturnValue:
    """A table edited as rows, one field per column, with its saved versions and a way back to each."""
    from knowledge_base.search.dictionaries import COLUMNS, EDITABLE

    if name not in EDITABLE:
        abort(404, description=f"没有词典 {name}")
    store = services().dictionaries
    if request.method == "POST":
        if not services().accounts.can(_user(), "reviewer"):
            abort(403, description="词典修改会立即影响所有答复，需要审核员权限")
        columns = [request.form.getlist(f"c{i}") for i in range(len(COLUMNS[name]))]
        width = max(len(c) for c in columns)
        rows = [tuple(c[i] if i < len(c) else "" for c in columns) for i in range(width)]
        version, author = _int(request.form.get("version"), "version"), _user().username
        try:
            if not width and "content" in request.form:  # a whole table as text (scripts), checked the same way
                saved = store.save(name, request.form["content"], expected_version=version, author=author)
            else:
                saved = store.save_rows(name, rows, expected_version=version, author=author)
        except (InvalidEntry, StaleVersion) as exc:
            flash(f"未保存：{_say(exc)}", "error")
            return _show_dictionary(name, rows), 400
        _audit("dictionary.save", name, {"version": saved.version})
        services().fresh_kb(force=True)  # this worker applies it now; the others within seconds
        flash(f"{saved.title}已保存（第 {saved.version} 版），已重建索引并生效", "ok")
        return redirect(url_for("admin.dictionary", name=name))
    return _show_dictionary(name)


def _show_dictionary(name: str, rows: list[tuple[str, ...]] | None = None) -> str:
    from knowledge_base.search.dictionaries import COLUMNS

    store = services().dictionaries
    table = store.table(name)
    versions = store.versions(name)
    shown = None
    if request.method == "GET" and request.args.get("version"):
        wanted = _int(request.args.get("version"), "version")
        shown = next((v for v in versions if v.version == wanted), None)
        if shown is None:
            abort(404, description=f"{table.title}没有第 {wanted} 版")
    blank = [("",) * len(COLUMNS[name])] * BLANK_DICTIONARY_ROWS
    return render_template(
        "admin/dictionary.html",
        table=table,
        columns=COLUMNS[name],
        rows=(rows if rows is not None else table.rows) + blank,
        versions=versions,
        shown=shown,
        shown_rows=_version_rows(shown) if shown is not None else [],
        counts={v.version: len(_version_rows(v)) for v in versions},
    )


def _version_rows(version: Any) -> list[tuple[str, ...]]:
    from knowledge_base.search.dictionaries import table_rows

    return table_rows(version.name, version.content)


BLANK_DICTIONARY_ROWS = 10  # empty rows under a table for new words; more after saving


@admin.post("/dictionaries/<name>/restore/<int:version>")
@login_required("reviewer")
def dictionary_restore(name: str, version: int) -> ResponseReturnValue:
    from knowledge_base.search.dictionaries import EDITABLE

    if name not in EDITABLE:
        abort(404, description=f"没有词典 {name}")
    try:
        saved = services().dictionaries.restore(
            name, version, expected_version=_int(request.form.get("version"), "version"), author=_user().username
        )
    except (InvalidEntry, StaleVersion) as exc:
        flash(f"未恢复：{_say(exc)}", "error")
        return redirect(url_for("admin.dictionary", name=name))
    _audit("dictionary.restore", name, {"restored": version, "version": saved.version})
    services().fresh_kb(force=True)
    old = "默认版本" if version == 0 else f"第 {version} 版"
    flash(f"{saved.title}已恢复为{old}的内容（保存为第 {saved.version} 版），已重建索引并生效", "ok")
    return redirect(url_for("admin.dictionary", name=name))


# -- users and audit ------------------------------------------------------------------


@admin.route("/users", methods=["GET", "POST"])
@login_required("admin")
def users() -> ResponseReturnValue:
    from knowledge_base.staff.accounts import ROLE_NAMES, AccountError

    accounts = services().accounts
    if request.method == "POST":
        form = request.form
        action, username = form.get("action", ""), form.get("username", "")
        if action == "disable":
            question = f"停用后，{username} 立即退出登录且不能再登录（可随时重新启用）。确定停用吗？"
            asked = _unconfirmed(question, "确定停用", url_for("admin.users"))
            if asked is not None:
                return asked
        try:
            if action == "create":
                accounts.create_user(
                    username,
                    form.get("password", ""),
                    form.get("role", ""),
                    display_name=form.get("display_name", ""),
                    actor=_user().username,
                )
                flash(f"已创建用户 {username}", "ok")
            elif action == "role":  # ends the account's sessions (a signed-in admin's own one carries on)
                keep_session(accounts.set_role(username, form.get("role", ""), actor=_user().username))
                flash(f"已修改 {username} 的角色", "ok")
            elif action in ("disable", "enable"):
                accounts.set_disabled(username, action == "disable", actor=_user().username)
                flash(f"已{'停用' if action == 'disable' else '启用'} {username}", "ok")
            elif action == "password":
                accounts.set_password(username, form.get("password", ""), actor=_user().username)
                keep_session(accounts.user(username))  # other sessions of the account have ended
                flash(f"已重设 {username} 的密码", "ok")
            else:
                abort(400, description=f"未知操作 {action}")
        except AccountError as exc:
            flash(f"未完成：{exc}", "error")
            return render_template("admin/users.html", users=accounts.users(), roles=ROLE_NAMES), 400
        return redirect(url_for("admin.users"))
    return render_template("admin/users.html", users=accounts.users(), roles=ROLE_NAMES)


@admin.get("/audit")
@login_required("admin")
def audit() -> ResponseReturnValue:
    actor = (request.args.get("actor") or "").strip()[:100]
    target = (request.args.get("target") or "").strip()[:200]
    rows = services().accounts.audit_log(limit=500, actor=actor, target=target)
    return render_template("admin/audit.html", rows=rows, actor=actor, target=target)
