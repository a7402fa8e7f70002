"""A staff member's browser session over HTTP: sign in, read the entry form, publish a changed answer, and see
whether a worker serves it. Plain requests (the launcher's warm-up and the Locust editor both use it)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import requests

from load.plan import csrf_token, form_fields


class StaffError(RuntimeError):
    """Sign-in, the admin's forms or a publish did not work as a browser would see them; the message says how."""


def page_token(session: requests.Session, url: str, timeout: float) -> str:
    """Open the page at ``url`` and return its CSRF token, as a browser's next form post would carry it."""
    page = session.get(url, timeout=timeout)
    token = csrf_token(page.text)
    if page.status_code != 200 or token is None:
        raise StaffError(f"{url}: HTTP {page.status_code}, no csrf-token meta tag")
    return token


def sign_in(session: requests.Session, base_url: str, username: str, password: str, timeout: float) -> None:
    """Sign ``session`` in through the sign-in form (CSRF token included), as a browser would."""
    token = page_token(session, f"{base_url}/staff/login", timeout)
    reply = session.post(
        f"{base_url}/staff/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=timeout,
    )
    if reply.status_code != 302 or "/staff/login" in reply.headers.get("Location", ""):
        raise StaffError(f"sign-in of {username} on {base_url} failed: HTTP {reply.status_code}")


def entry_form(session: requests.Session, base_url: str, entry_id: int, timeout: float) -> dict[str, str]:
    page = session.get(f"{base_url}/admin/entries/{entry_id}/edit", timeout=timeout)
    fields = form_fields(page.text, "entry-form") if page.status_code == 200 else {}
    if not fields:
        raise StaffError(f"{base_url}/admin/entries/{entry_id}/edit: HTTP {page.status_code}, no form #entry-form")
    return fields


@dataclass(frozen=True)
class Target:
    """The entry the editor keeps changing, as published before the run."""

    key: str
    entry_id: int
    question: str
    answer: str


def find_target(session: requests.Session, base_url: str, key: str, timeout: float) -> Target:
    page = session.get(f"{base_url}/admin/entries", params={"q": key}, timeout=timeout)
    for entry_id in dict.fromkeys(int(i) for i in re.findall(r'href="/admin/entries/(\d+)"', page.text)):
        fields = entry_form(session, base_url, entry_id, timeout)
        if fields.get("key") == key:
            return Target(key, entry_id, fields["question"], fields["answer"])
    raise StaffError(f"no entry {key!r} in the admin's entry list (HTTP {page.status_code}); give --edit-entry")


def publish(
    editor: requests.Session, reviewer: requests.Session, base_url: str, target: Target, marker: str, timeout: float
) -> None:
    """The editor saves a draft whose answer ends with ``marker``; the reviewer opens and publishes it (4 requests).

    Two accounts because the workflow keeps four eyes: the last author of a draft cannot publish it.
    """
    fields = entry_form(editor, base_url, target.entry_id, timeout)
    fields.update(answer=f"{target.answer}\n{marker}", action="save")
    saved = editor.post(f"{base_url}/admin/drafts", data=fields, allow_redirects=False, timeout=timeout)
    draft = re.search(r"/admin/drafts/(\d+)$", saved.headers.get("Location", ""))
    if saved.status_code != 302 or not draft:
        raise StaffError(f"saving the draft: HTTP {saved.status_code}")
    # The reviewer opens the draft (its page runs the quality checks) and publishes it with the CSRF token of
    # their own session; a new draft is version 1.
    token = page_token(reviewer, f"{base_url}/admin/drafts/{draft.group(1)}", timeout)
    published = reviewer.post(
        f"{base_url}/admin/drafts/{draft.group(1)}/publish",
        data={"csrf_token": token, "draft_version": "1"},
        allow_redirects=False,
        timeout=timeout,
    )
    if published.status_code != 302 or "/admin/entries/" not in published.headers.get("Location", ""):
        raise StaffError(f"publishing draft {draft.group(1)}: HTTP {published.status_code}, not published")


def served_in_search(session: requests.Session, base_url: str, target: Target, marker: str, timeout: float) -> bool:
    """Does this web app's operator search return the target with the new answer?"""
    reply = session.get(f"{base_url}/operator/api/search", params={"q": target.question}, timeout=timeout)
    return any(h.get("key") == target.key and marker in h.get("answer", "") for h in reply.json()["hits"])


def served_in_chat(session: requests.Session, base_url: str, target: Target, marker: str, timeout: float) -> bool:
    """Does a citizen asking the target's question through this web app (its Rasa, its action server) get it?"""
    sender = f"probe-{secrets.token_hex(5)}"
    url = f"{base_url}/api/chat"
    messages = session.post(url, json={"sender": sender, "message": target.question}, timeout=timeout).json()[
        "messages"
    ]
    # A close call offers a choice: pick the target, as the citizen would.
    choice = next(
        (b["payload"] for m in messages for b in (m.get("buttons") or []) if target.key in b.get("payload", "")),
        None,
    )
    if choice is not None:
        messages = session.post(url, json={"sender": sender, "payload": choice}, timeout=timeout).json()["messages"]
    return any(marker in (m.get("text") or "") for m in messages)
