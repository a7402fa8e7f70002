"""Property-based fuzzing of the HTTP API: the public chat relay, the operator APIs, the admin's draft form and import.

Thousands of generated requests (hypothesis, derandomized so CI sees the same ones every run):
arbitrary JSON and non-JSON bodies, wrong content types and types, huge strings, control
characters, lone surrogates and invalid UTF-8, HTML/JS, SQL-looking text, forged cookies and
CSRF tokens. Schemathesis drives the same app from web_widget/openapi.yaml, so the answers are
also checked against the documented statuses and schemas. For every request:

* never a 5xx;
* every 4xx gives its reason: JSON ``{"error": ...}`` on the APIs, a ``role="alert"`` text on pages;
* a refused request changes no data: the knowledge base (entries, revisions, ``kb_version``),
  drafts, work orders, operator reports and what went to the dialogue are compared before and after.

The app runs on the FAKE embedder over SQLite (as in tests/web/conftest.py) with rate limits off,
built once per module so that hypothesis can send every example to the same app.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from knowledge_base.search.embedder import FakeEmbedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.settings import Settings
from knowledge_base.staff.operator_log import OUTCOMES, OperatorLog
from knowledge_base.storage.store import SQLStore
from tests.conftest import TODAY, sample_entries
from tests.strategies import (
    BIG_INTS,
    FUZZ,
    chinese,
    damaged_workbooks,
    json_values,
    mutated,
    spiced,
    strings,
    text_files,
    texts,
)
from tests.web.conftest import FakeRelay, sign_in
from web_widget import MAX_UPLOAD_BYTES, create_app
from web_widget.apidoc import openapi_document
from web_widget.chat import MAX_BODY_BYTES

pytestmark = pytest.mark.unit

# About 3,300 requests in all (some 25 s): 300 per test unless it says otherwise, and
SCHEMA_EXAMPLES = 100  # per documented operation and generation mode

TABLES = ("meta", "entries", "revisions", "drafts", "work_orders", "operator_reports")
ALERT = re.compile(r'role="alert"[^>]*>(?:\s|<[^>]+>)*[^<\s]')  # an alert with some text in it

# -- what the requests are made of ---------------------------------------------------------------

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=gbk",
    "application/merge-patch+json",
    "text/plain",
    "text/html",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "",
]


def _encode_json(document: Any, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate sent raw becomes invalid UTF-8, escaped it reaches the app as is
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@functools.cache
def _oversized(limit: int) -> bytes:
    return b'{"x": "' + b"a" * limit + b'"}'  # one byte over: a 413 (built once, 20 MB for the staff APIs)


def json_bodies(valid: dict[str, st.SearchStrategy[Any]], *, limit: int) -> st.SearchStrategy[tuple[str, bytes]]:
    """(Content-Type, body): mutated JSON objects mostly, else any JSON, any bytes, wrong types, oversized."""
    # ensure_ascii mostly: then lone surrogates arrive as "\ud800" escapes, which parse
    escaped = st.sampled_from([True, True, False])
    objects = st.builds(_encode_json, mutated(valid, strings | json_values), escaped)
    nested = st.builds(
        lambda depth, brackets: brackets[0] * depth + brackets[1] * depth,
        st.integers(100, 20_000),
        st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"sender": [', b"]}")]),
    )
    oversized = st.builds(_oversized, st.just(limit))
    others = st.one_of(st.builds(_encode_json, json_values, escaped), st.binary(max_size=300), nested, oversized)
    return st.one_of(
        st.tuples(st.just("application/json"), objects),
        st.tuples(st.just("application/json"), objects),
        st.tuples(st.just("application/json"), objects),
        st.tuples(st.sampled_from(CONTENT_TYPES), objects),
        st.tuples(st.just("application/json"), others),
    )


def _form_bytes(fields: dict[str, str]) -> bytes:
    """URL-encoded form; values with lone surrogates become invalid UTF-8 (the browser cannot do better)."""

    def enc(text: str) -> str:
        data = text.encode("utf-8", "surrogatepass")
        return "%" + data.hex("%") if data else ""  # every byte escaped: valid, and fast for huge values

    return "&".join(f"{enc(k)}={enc(v)}" for k, v in fields.items()).encode("ascii")


# -- the app, its data and the checks --------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, normaliser):
    root = tmp_path_factory.mktemp("fuzz-api")
    settings_ = Settings(data_dir=str(root / "var"), rate_limit_per_minute=0)
    store = SQLStore(root / "kb.sqlite3")
    kb = KnowledgeBase(store, FakeEmbedder(), normaliser, settings=settings_, today=lambda: TODAY)
    kb.import_entries(sample_entries(), author="tester")
    app = create_app(settings_, kb=kb, relay=FakeRelay())
    services = app.extensions["hotline"]
    services.workflow, services.interactions  # noqa: B018 - their tables exist before the first snapshot
    OperatorLog(services.db)
    yield app
    store.close()


@pytest.fixture(scope="module")
def staff(fuzz_app) -> dict[str, Any]:
    """Signed-in test clients by role, and an anonymous one; each has ``.csrf``."""
    clients = {role: sign_in(fuzz_app, role) for role in ("operator", "editor", "reviewer")}
    anonymous = fuzz_app.test_client()
    anonymous.csrf = ""  # type: ignore[attr-defined]
    clients["anonymous"] = anonymous
    return clients


def snapshot(app) -> dict[str, Any]:
    """What a request could change: the KB and its version, drafts, orders, reports, messages relayed."""
    db = app.extensions["hotline"].db
    state: dict[str, Any] = {table: db.query(f"SELECT * FROM {table} ORDER BY 1") for table in TABLES}
    state["relayed"] = len(app.config["HOTLINE_RELAY"].sent)
    return state


def check(app, before: dict[str, Any], path: str, status: int, mimetype: str, body: bytes) -> None:
    """The properties every answer must have (see the module's docstring)."""
    event(f"{path[:40]} {status}")  # the status mix: pytest --hypothesis-show-statistics
    shown = body[:600].decode("utf-8", "replace")
    assert status < 500, f"{path}: {status} {shown}"
    if status < 400:
        return
    if path.startswith(("/api/", "/operator/api/")):
        assert mimetype == "application/json", f"{path}: {status} answered {mimetype}"
        error = json.loads(body).get("error")
        assert isinstance(error, str) and error.strip(), f"{path}: {status} without a reason: {shown}"
    else:
        assert mimetype == "text/html", f"{path}: {status} answered {mimetype}"
        assert ALERT.search(body.decode("utf-8")), f"{path}: {status} without a reason: {shown}"
    assert snapshot(app) == before, f"{path}: refused with {status}, but stored data changed"


def send(app, client, method: str, path: str, *, content_type: str = "", body: bytes = b"", csrf: str | None = None,
         query_string: bytes | str = b"") -> Any:  # fmt: skip
    headers = {"Content-Type": content_type} if content_type else {}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    before = snapshot(app)
    reply = client.open(path, method=method, data=body, headers=headers, query_string=query_string)
    check(app, before, path, reply.status_code, reply.mimetype, reply.get_data())
    return reply


# -- /api/chat ------------------------------------------------------------------------------------

senders = spiced(st.from_regex(r"\A[\w.:-]{1,20}\Z"))
CHAT_FIELDS = {
    "sender": senders,
    "message": spiced(st.sampled_from(["深圳公积金怎么提取", "社保 \n\t 怎么查"]) | texts),
    "region": spiced(st.sampled_from(["深圳市", "广州市", "广东省"])),
}
CHAT_BUTTON = {"sender": senders, "payload": spiced(st.from_regex(r"\A/[a-z_]{1,10}(\{[^{}]{0,20}\})?\Z"))}
_FORWARDED_SENDER = re.compile(r"[\w.:-]{1,128}")  # whole: a trailing newline once got through to Rasa


@FUZZ
@given(request=json_bodies(CHAT_FIELDS, limit=MAX_BODY_BYTES) | json_bodies(CHAT_BUTTON, limit=MAX_BODY_BYTES))
def test_chat_relay(fuzz_app, staff, request):
    content_type, body = request
    relay = fuzz_app.config["HOTLINE_RELAY"]
    reply = send(fuzz_app, staff["anonymous"], "POST", "/api/chat", content_type=content_type, body=body)
    if reply.status_code == 200:
        forwarded = relay.sent[-1]
        assert _FORWARDED_SENDER.fullmatch(forwarded["sender"]), forwarded["sender"]
        assert len(forwarded.get("message", "")) <= 2000
        assert reply.get_json()["sender"] == forwarded["sender"]


# -- the operator APIs ----------------------------------------------------------------------------

# Mostly the operator with the right token, sometimes a forged token, the wrong role or nobody.
WHO = st.sampled_from(["operator"] * 6 + ["operator-bad-csrf", "operator-no-csrf", "editor", "anonymous"])


def _as(staff: dict[str, Any], who: str) -> tuple[Any, str | None]:
    client = staff[who.split("-")[0]]
    if who.endswith("bad-csrf"):
        return client, client.csrf[::-1]
    if who.endswith("no-csrf"):
        return client, None
    return client, client.csrf


def _query_string(params: dict[str, bytes]) -> str:
    return "&".join(f"{k}=%{v.hex('%')}" if v else f"{k}=" for k, v in params.items())


@settings(FUZZ, max_examples=200)  # a search costs more than the other requests
@given(
    who=WHO,
    params=st.fixed_dictionaries(
        {},
        optional={
            "q": st.builds(lambda s: s.encode("utf-8", "surrogatepass"), strings) | st.binary(max_size=100),
            "region": st.builds(lambda s: s.encode("utf-8", "surrogatepass"), strings) | st.binary(max_size=60),
            "top_k": st.sampled_from([b"-1", b"100000", b"x"]),
        },
    ),
)
def test_operator_search(fuzz_app, staff, who, params):
    client, _ = _as(staff, who)
    before = snapshot(fuzz_app)
    reply = send(fuzz_app, client, "GET", "/operator/api/search", query_string=_query_string(params))
    assert snapshot(fuzz_app) == before, "a search changed stored data"
    if reply.status_code == 200:
        assert len(reply.get_json()["hits"]) <= 5


REPORT_FIELDS = {
    "query": spiced(st.sampled_from(["社保怎么查", "  深圳 公积金\n提取 "]) | chinese),
    "outcome": st.sampled_from(OUTCOMES),
    "entry_key": spiced(st.sampled_from(["T-SB-1", "T-GJJ-SZ", "no-such-entry"])),
    "reason": spiced(st.sampled_from(["电话号码已停用", "政策已更新"]) | chinese),
    "kb_version": st.integers(0, 10) | st.sampled_from(BIG_INTS),
}


@FUZZ
@given(who=WHO, request=json_bodies(REPORT_FIELDS, limit=MAX_UPLOAD_BYTES))
def test_operator_report(fuzz_app, staff, who, request):
    client, csrf = _as(staff, who)
    content_type, body = request
    send(fuzz_app, client, "POST", "/operator/api/report", content_type=content_type, body=body, csrf=csrf)


WORK_ORDER_FIELDS = {
    "question": spiced(st.sampled_from(["公积金提取被退回", ""]) | chinese),
    "description": spiced(st.sampled_from(["来电人称申请被退回，请回电说明。"]) | chinese),
    "name": spiced(st.sampled_from(["王先生", "李女士", ""])),
    "phone": spiced(st.sampled_from(["13812345678", "+86 138 1234 5678", "020-12345678", ""])),
    "region": spiced(st.sampled_from(["深圳市", "广州市", ""])),
    "entries": st.lists(spiced(st.sampled_from(["T-SB-1", "T-GJJ-SZ"])), max_size=3),
}


@FUZZ
@given(who=WHO, request=json_bodies(WORK_ORDER_FIELDS, limit=MAX_UPLOAD_BYTES))
def test_operator_work_orders(fuzz_app, staff, who, request):
    client, csrf = _as(staff, who)
    content_type, body = request
    send(fuzz_app, client, "POST", "/operator/api/work_orders", content_type=content_type, body=body, csrf=csrf)
    listed = send(fuzz_app, client, "GET", "/operator/api/work_orders")
    if listed.status_code == 200:
        assert len(listed.get_json()["work_orders"]) <= 50


# -- the admin's draft form -----------------------------------------------------------------------

DRAFT_FIELDS = {
    "key": st.sampled_from(["T-NEW-1", "T-NEW-2", ""]),
    "question": spiced(st.sampled_from(["新生儿医保怎么办理", "社保怎么查"]) | chinese),
    "similar_questions": st.builds("\n".join, st.lists(spiced(chinese), max_size=3)),
    "answer": spiced(st.sampled_from(["登录粤省事办理。"]) | chinese),
    "department": spiced(st.sampled_from(["广东省医疗保障局", ""])),
    "category": spiced(st.sampled_from(["医疗保障", ""])),
    "regions": spiced(st.sampled_from(["广东省\n深圳市", "广东省", ""])),
    "policy_title": spiced(st.sampled_from(["《社会保险法》", ""])),
    "policy_number": spiced(st.sampled_from(["粤医保发〔2024〕1号", ""])),
    "policy_url": spiced(st.sampled_from(["https://www.gd.gov.cn/", ""])),
    "effective_date": st.sampled_from(["2026-01-01", ""]),
    "expiry_date": st.sampled_from(["2027-12-31", ""]),
    "tags": spiced(st.sampled_from(["医保, 新生儿", ""])),
    "action": st.sampled_from(["save", "submit"]),
    "entry_id": st.sampled_from(["", "1", "2"]),
    "entry_version": st.sampled_from(["", "1"]),
    "draft_version": st.sampled_from(["", "0"]),
}
FORM_JUNK = strings | st.sampled_from(
    ["2026/1/1", "2026-13-45", "0000-00-00", "昨天", "-1", "1.5", "1e3", str(2**63), str(10**40), "9" * 5000,
     "火星市", "javascript:alert(1)", "publish", "键 有空格", "\n".join(["问"] * 300)]
)  # fmt: skip
DRAFT_PATHS = st.sampled_from(
    [*["/admin/drafts"] * 4, "/admin/drafts/1", "/admin/drafts/99", f"/admin/drafts/{10**30}"]
)


@FUZZ
@given(
    path=DRAFT_PATHS,
    fields=mutated(DRAFT_FIELDS, FORM_JUNK),
    token=st.sampled_from(["valid"] * 8 + ["forged", "missing"]),
    content_type=st.sampled_from(["application/x-www-form-urlencoded"] * 10 + CONTENT_TYPES),
)
def test_admin_draft_form(fuzz_app, staff, path, fields, token, content_type):
    editor = staff["editor"]
    if token != "missing":
        fields = {**fields, "csrf_token": editor.csrf if token == "valid" else "x" + editor.csrf[1:]}
    send(fuzz_app, editor, "POST", path, content_type=content_type, body=_form_bytes(fields))


# -- the admin's import ---------------------------------------------------------------------------

UPLOADS = st.one_of(
    text_files,
    st.tuples(st.just(".xlsx"), damaged_workbooks()),
    st.tuples(st.sampled_from(["", ".json", ".XLSX", ".txt", ".csv.exe"]), st.binary(max_size=200)),
)
UPLOAD_NAMES = st.sampled_from(
    ["kb", "知识库 2026年", "../../etc/passwd", "<img src=x onerror=alert(1)>", "a" * 300, ".."]
)


@settings(FUZZ, max_examples=150)
@given(upload=UPLOADS, name=UPLOAD_NAMES, encoding=st.sampled_from(["", "gbk", "utf-8", "latin-1"]))
def test_admin_import(fuzz_app, staff, upload, name, encoding):
    """Whatever file a reviewer uploads: imported whole, or refused with its problems and nothing written."""
    reviewer = staff["reviewer"]
    suffix, data = upload
    form = {"csrf_token": reviewer.csrf, "encoding": encoding, "file": (io.BytesIO(data), name + suffix)}
    before = snapshot(fuzz_app)
    reply = reviewer.post("/admin/import", data=form, content_type="multipart/form-data")
    check(fuzz_app, before, "/admin/import", reply.status_code, reply.mimetype, reply.get_data())


# -- schemathesis, from the OpenAPI document ------------------------------------------------------

OPERATIONS = sorted(
    (path, method.upper())
    for path, item in openapi_document()["paths"].items()
    for method, operation in item.items()
    if "requestBody" in operation or operation.get("parameters")  # the others have nothing to generate
)


def _schemathesis_checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _run_schemathesis(app, path: str, method: str, mode: str, **fixed: Any) -> None:
    # a copy: schemathesis writes into the schema it is given, and the app serves this one
    operation = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))[path][method]
    checks = _schemathesis_checks()

    @settings(FUZZ, max_examples=SCHEMA_EXAMPLES)
    @given(case=operation.as_strategy(GenerationMode(mode), **fixed))
    def run(case):
        before = snapshot(app)
        response = case.call(app=app)
        case.validate_response(response, checks=checks)
        # The document says exactly what is accepted; the city's work-order API also needs its bearer token
        # and an existing order in the right state, which a generated request cannot know (its 401 is checked).
        if mode == "positive" and method == "POST" and not path.startswith("/api/work-orders/"):
            assert response.status_code in (200, 201), (case.body, response.content[:300])
        check(app, before, path, response.status_code, response.headers["content-type"][0].split(";")[0],
              response.content)  # fmt: skip

    run()


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_schemathesis_as_the_operator(fuzz_app, staff, path, method, mode):
    """Generated from the document, sent with the operator's real session and CSRF token."""
    client = staff["operator"]
    _run_schemathesis(
        fuzz_app,
        path,
        method,
        mode,
        headers={"X-CSRF-Token": client.csrf},
        cookies={"hotline_session": client.get_cookie("hotline_session").value},
    )


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_schemathesis_as_anyone(fuzz_app, path, method):
    """Generated cookies and CSRF tokens: a forged session never gets in, so nothing ever changes."""
    before = snapshot(fuzz_app)
    _run_schemathesis(fuzz_app, path, method, "negative")
    if path.startswith("/operator/"):
        assert snapshot(fuzz_app) == before
