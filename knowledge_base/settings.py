"""The deployment's one settings object: ``config.yml`` plus ``HOTLINE_*`` environment overrides.

Build it once at each entry point with :func:`load_settings` and pass it down;
no other module reads the environment. Every setting carries its help text,
and ``tests/unit/test_settings.py`` fails when the README leaves one out.

Example:
    >>> s = load_settings(path=None, environ={"HOTLINE_ANSWER_THRESHOLD": "0.96"})
    >>> s.answer_threshold
    0.96
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "HOTLINE_"
# Settings that are secrets: empty means a random value kept in data_dir (see shared_secret).
SECRETS = ("secret_key", "rasa_token", "action_secret", "relay_secret", "order_api_token")
# The staff roles, each including the ones before it (knowledge_base/staff/accounts.py); here so that
# pii_min_role is checked where it is read.
STAFF_ROLES = ("operator", "dispatcher", "editor", "reviewer", "admin")


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every setting of hotline-qa; see the README's configuration table."""

    data_dir: str = _setting(
        "var", "Folder for the database, the built model and the index (relative to the working directory)."
    )
    database_url: str = _setting(
        "",
        "Knowledge-base database (entries, revisions, work orders, logs, accounts). Empty: SQLite file "
        "kb.sqlite3 in data_dir. Or sqlite:///path/to/file.sqlite3 (sqlite:////absolute/path), or "
        "postgresql://user:password@host:5432/dbname for several hosts sharing one database "
        "(set it through HOTLINE_DATABASE_URL when it holds a password).",
    )
    model_dir: str = _setting(
        "",
        "Sentence-transformers model folder. Empty: data_dir/models/multilingual-e5-small, "
        "built by `hotline model build`. Any other local sentence-transformers folder works.",
    )
    model_prefix: str = _setting(
        "query: ",
        "Prefix put before every text given to the model (e5 expects 'query: ' for symmetric question matching).",
    )
    embed_text: str = _setting(
        "folded",
        "What the model embeds: 'folded' (simplified script, Mandarin for Cantonese forms, canonical terms; "
        "punctuation and particles kept), 'normalised' (also without fillers and punctuation) or 'raw'.",
    )
    embed_threads: int = _setting(
        1, "CPU threads one embedding call may use, torch or ONNX Runtime (1 keeps workers independent)."
    )
    embedder: str = _setting(
        "onnx",
        "What runs the model: 'onnx' (ONNX Runtime on the model folder's onnx/model.onnx, exported by "
        "`hotline model build`) or 'torch' (sentence-transformers). Index and queries always use the same one.",
    )
    index_type: str = _setting(
        "flat", "FAISS index: 'flat' (exact inner product, default) or 'hnsw' (approximate, for very large KBs)."
    )
    hnsw_m: int = _setting(32, "HNSW graph degree (index_type hnsw only).")
    hnsw_ef_search: int = _setting(256, "HNSW search breadth: higher is more exact and slower (index_type hnsw only).")
    lexical_weight: float = _setting(
        0.03,
        "Weight of the BM25 score (scaled to 0-1 among the dense candidates) added to the dense cosine; "
        "0 turns lexical re-scoring off. Chosen on the sample's own test questions (see README).",
    )
    lexical_tokens: str = _setting(
        "chars",
        "What BM25 counts: 'chars' (character uni- and bigrams of the normalised text) or 'words' (jieba).",
    )
    answer_threshold: float = _setting(
        0.952, "Best entry's score needed to answer directly (calibrated with `hotline calibrate`)."
    )
    answer_margin: float = _setting(
        0.02, "Lead over the second entry needed to answer directly; closer candidates are offered as a choice."
    )
    clarify_threshold: float = _setting(
        0.944, "Lowest score an entry needs to be offered in a '您是想问……' choice; below it: no answer."
    )
    clarify_window: float = _setting(0.04, "Candidates within this distance of the best one join the choice.")
    clarify_max: int = _setting(
        4, "Most candidates offered in one '您是想问……' choice on the website (the hotline reads at most 3)."
    )
    max_query_chars: int = _setting(1000, "Longer questions are cut to this length (with a notice) before search.")
    rasa_url: str = _setting("http://127.0.0.1:5005", "Where the web app reaches Rasa (its web channel).")
    default_province: str = _setting("广东省", "Province assumed when a citizen names only a city or district.")
    redis_url: str = _setting(
        "",
        "Redis shared by every worker, e.g. redis://127.0.0.1:6379/0 (redis://:password@host:port/db). "
        "Empty: no Redis; each process caches searches in memory and sees edits at its next search. "
        "Set: edits are announced to every worker at once, search results are cached in Redis, and "
        "`scripts/bot.sh rasa` keeps Rasa's conversations there.",
    )
    redis_prefix: str = _setting(
        "hotline:", "Prefix of every Redis key and channel of hotline-qa (several deployments can share one Redis)."
    )
    web_host: str = _setting("127.0.0.1", "Address the web app (widget, operator console, admin) listens on.")
    web_port: int = _setting(8000, "Port of the web app.")
    secret_key: str = _setting(
        "",
        "Signs staff sessions. Empty: a random key kept in data_dir/secret_key (created on first start); "
        "set the same value on every web worker of a multi-host deployment (through HOTLINE_SECRET_KEY, "
        "never in a committed file).",
    )
    session_minutes: int = _setting(30, "A staff session ends after this many minutes without activity.")
    https_only: bool = _setting(
        False,
        "The site is served over https (directly or behind a TLS proxy): session cookies are marked Secure and "
        "every response carries Strict-Transport-Security. Leave false for plain-http test setups, where a "
        "Secure cookie would never be sent back.",
    )
    allow_self_publish: bool = _setting(
        False,
        "Let a reviewer publish a draft they saved themselves (for one-person offices). False: four eyes, "
        "the last author of a draft cannot publish it.",
    )
    pii_min_role: str = _setting(
        "reviewer",
        "Lowest staff role that sees a work order's full phone and ID-card numbers (operator, editor, reviewer "
        "or admin); lower roles see them masked. Every unmasked view is in the audit log with the address.",
    )
    signin_failures_per_address: int = _setting(
        20,
        "Failed sign-ins one address (IP) may have in 15 minutes before further sign-ins from it are refused, "
        "besides the per-account lockout (5 wrong passwords: 15 minutes); counted from the audit log in the "
        "database, so every worker and host shares the count. 0 turns the limit off.",
    )
    rate_limit_per_minute: int = _setting(
        30, "Chat messages and public searches one client (IP address) may send per minute; 0 turns the limit off."
    )
    operator_rate_limit_per_minute: int = _setting(
        600,
        "Searches one signed-in operator may run per minute (the console searches while they type); 0: no limit.",
    )
    trusted_proxies: int = _setting(
        0,
        "Reverse proxies in front of the web app (and Rasa's web channel) whose X-Forwarded-For, "
        "X-Forwarded-Proto and X-Forwarded-Host are believed: 1 for one nginx. 0: the headers are ignored and "
        "the connecting address is the client's (a client could forge them otherwise).",
    )
    rasa_host: str = _setting(
        "127.0.0.1",
        "Address Rasa listens on (scripts/bot.sh rasa). Loopback by default: the web app relays to it on the "
        "same host; give the host's address only for a telephone gateway or load balancer on another machine.",
    )
    action_host: str = _setting(
        "127.0.0.1",
        "Address the action server listens on (scripts/bot.sh actions). Loopback by default; another address "
        "only when Rasa runs on another host.",
    )
    rasa_token: str = _setting(
        "",
        "Token of Rasa's HTTP API (conversations, trackers, /status: ?token=...). Empty: a random token kept in "
        "data_dir/rasa_token. Set it through HOTLINE_RASA_TOKEN, never in a committed file.",
    )
    action_secret: str = _setting(
        "",
        "Shared secret Rasa sends the action server with every call (header X-Hotline-Action-Secret); calls "
        "without it are refused. Empty: a random secret kept in data_dir/action_secret. Rasa and its action "
        "server on different hosts: the same HOTLINE_ACTION_SECRET on both.",
    )
    relay_secret: str = _setting(
        "",
        "Shared secret the web app sends with each chat message it relays to Rasa's web channel (header "
        "X-Hotline-Relay-Secret): such messages were rate-limited by the web app already and are not limited "
        "again as one client. Empty: a random secret kept in data_dir/relay_secret; web app and Rasa on "
        "different hosts: the same HOTLINE_RELAY_SECRET on both.",
    )
    action_timeout: float = _setting(
        8.0,
        "Seconds Rasa waits for the action server to run one action (scripts/bot.sh gives it to Rasa); "
        "then the turn ends without a reply and the channel answers politely (稍后再试 / 12345).",
    )
    dialogue_timeout: float = _setting(
        10.0,
        "Seconds Rasa's web and hotline channels give one message (locks, tracker store, actions); then "
        "the citizen gets the polite busy reply. Keep it above action_timeout.",
    )
    relay_timeout: float = _setting(
        15.0,
        "Seconds the web app waits for Rasa's reply to a relayed chat message (connecting: at most 3); then "
        "the widget shows the polite busy reply. Keep it above dialogue_timeout, so Rasa's own reply comes first.",
    )
    search_timeout: float = _setting(
        5.0,
        "Seconds the operator console's search may take; then the operator is told to try again "
        "(HTTP 503) instead of waiting.",
    )
    db_timeout: float = _setting(
        10.0,
        "Seconds a database call may wait: PostgreSQL connect and statement timeout, waiting for a pooled "
        "connection, SQLite's busy timeout. Schema upgrades are not limited; raise it for a backup of a very "
        "large PostgreSQL database.",
    )
    redis_timeout: float = _setting(
        1.0,
        "Seconds a Redis call of the knowledge base (cache, change announcements) may take to connect or "
        "answer (Rasa's tracker and lock store keep Rasa's own; a Redis that is down refuses at once).",
    )

    order_due_days: str = _setting(
        "咨询=2 求助=3 投诉=5 举报=10 建议=15",
        "Days a work order of each request type may take from creation to 已办结 (类型=天数, space-separated; "
        "types left out keep these defaults). Later orders are shown as overdue.",
    )
    order_webhook_url: str = _setting(
        "",
        "HTTPS address of the city's existing work-order system: every new work order is delivered there "
        '(signed, retried, in order; README "Work orders"). Empty: the built-in dispatcher page is the system.',
    )
    order_webhook_secret: str = _setting(
        "",
        "Key of the HMAC-SHA256 signature on every webhook delivery (header X-Hotline-Signature); required "
        "with order_webhook_url, at least 16 characters. Give it through HOTLINE_ORDER_WEBHOOK_SECRET.",
    )
    order_webhook_timeout: float = _setting(
        10.0, "Seconds one webhook delivery may take (connect and answer) before it counts as failed."
    )
    order_webhook_attempts: int = _setting(
        10,
        "Deliveries tried per work order (waiting 2, 4, 8 … up to 600 seconds between them) before it goes to "
        "the dead-letter list in the admin (投递失败), where staff retry it.",
    )
    order_api_token: str = _setting(
        "",
        "Bearer token the city's work-order system sends to the inbound API (/api/work-orders/…). Empty: a "
        "random token kept in data_dir/order_api_token; set HOTLINE_ORDER_API_TOKEN on every web worker.",
    )
    order_lookup_attempts: int = _setting(
        5,
        "Wrong work-order number / phone digit pairs one conversation (and one work-order number) may give in "
        "an hour when a citizen asks where their request is; then the bot refers them to 12345.",
    )
    hot_topic_factor: float = _setting(
        3.0,
        "A topic is hot (舆情预警) when its questions and work orders in the last hour reach this many times "
        "its average for the same hour over the past 7 days …",
    )
    hot_topic_min_count: int = _setting(10, "… and at least this many in that hour (so a quiet topic's 1 → 3 is not).")
    hot_topic_webhook_url: str = _setting(
        "", "Optional address that each new hot-topic alert is also POSTed to (JSON); empty: dashboard only."
    )

    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False, metadata={"internal": True})
    """Names set by a ``HOTLINE_*`` variable or an explicit override: they win over an applied calibration
    (not a setting itself: no help text, not read from config.yml)."""

    def __post_init__(self) -> None:
        if self.embed_text not in ("raw", "folded", "normalised"):
            raise ValueError(f"embed_text must be 'raw', 'folded' or 'normalised', got {self.embed_text!r}")
        if self.lexical_tokens not in ("chars", "words"):
            raise ValueError(f"lexical_tokens must be 'chars' or 'words', got {self.lexical_tokens!r}")
        if self.embedder not in ("onnx", "torch"):
            raise ValueError(f"embedder must be 'onnx' or 'torch', got {self.embedder!r}")
        if self.index_type not in ("flat", "hnsw"):
            raise ValueError(f"index_type must be 'flat' or 'hnsw', got {self.index_type!r}")
        for name in ("answer_threshold", "clarify_threshold", "answer_margin", "clarify_window"):
            value = getattr(self, name)
            if not -1.0 <= value <= 2.0:
                raise ValueError(f"{name} must be between -1 and 2, got {value}")
        if self.clarify_threshold > self.answer_threshold:
            raise ValueError(
                f"clarify_threshold ({self.clarify_threshold}) must not exceed answer_threshold "
                f"({self.answer_threshold})"
            )
        if not 1 <= self.clarify_max <= 5:
            raise ValueError(f"clarify_max must be 1-5, got {self.clarify_max}")
        if not 0 <= self.lexical_weight <= 1:
            raise ValueError(f"lexical_weight must be between 0 and 1, got {self.lexical_weight}")
        if (
            not 1 <= self.web_port <= 65535
            or self.session_minutes < 1
            or min(self.rate_limit_per_minute, self.operator_rate_limit_per_minute) < 0
        ):
            raise ValueError("web_port 1-65535, session_minutes >= 1 and rate_limit_per_minute >= 0 required")
        if self.pii_min_role not in STAFF_ROLES:
            raise ValueError(f"pii_min_role must be one of {', '.join(STAFF_ROLES)}, got {self.pii_min_role!r}")
        if self.signin_failures_per_address < 0:
            raise ValueError(
                f"signin_failures_per_address must be 0 (off) or more, got {self.signin_failures_per_address}"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"redis_url must be empty or start with redis://, rediss:// or unix://, got {self.redis_url!r}"
            )
        if self.database_url and not self.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(
                "database_url must be empty, sqlite:///PATH or postgresql://user@host:port/dbname, got one "
                f"starting {self.database_url.split('//')[0]!r}"  # the rest may hold a password
            )
        if not 0 <= self.trusted_proxies <= 5:
            raise ValueError(f"trusted_proxies must be 0-5 (reverse proxies in front), got {self.trusted_proxies}")
        for name in SECRETS[1:]:  # secret_key predates the rule; tests and old deployments set short ones
            if 0 < len(getattr(self, name)) < 16:
                raise ValueError(f"{name} must be empty (a random one is made) or at least 16 characters")
        for name in ("action_timeout", "dialogue_timeout", "relay_timeout", "search_timeout", "db_timeout"):
            if not 0.1 <= getattr(self, name) <= 600:
                raise ValueError(f"{name} must be 0.1-600 seconds, got {getattr(self, name)}")
        if not 0.05 <= self.redis_timeout <= 60:
            raise ValueError(f"redis_timeout must be 0.05-60 seconds, got {self.redis_timeout}")
        if self.order_webhook_url:
            if not self.order_webhook_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise ValueError("order_webhook_url must be https:// (http:// only to 127.0.0.1 or localhost)")
            if len(self.order_webhook_secret) < 16:
                raise ValueError("order_webhook_url needs order_webhook_secret of at least 16 characters")
        if not 0.5 <= self.order_webhook_timeout <= 120 or not 1 <= self.order_webhook_attempts <= 100:
            raise ValueError("order_webhook_timeout must be 0.5-120 seconds and order_webhook_attempts 1-100")
        if self.order_lookup_attempts < 1 or self.hot_topic_factor < 1 or self.hot_topic_min_count < 1:
            raise ValueError("order_lookup_attempts >= 1, hot_topic_factor >= 1 and hot_topic_min_count >= 1 required")
        if not all(re.fullmatch(r"[^\s=]+=\d+", part) for part in self.order_due_days.split()):
            raise ValueError(f"order_due_days should be 类型=天数 pairs, e.g. 投诉=5, got {self.order_due_days!r}")
        if self.embed_threads < 1 or self.hnsw_m < 4 or self.hnsw_ef_search < 1 or self.max_query_chars < 10:
            raise ValueError("embed_threads >= 1, hnsw_m >= 4, hnsw_ef_search >= 1 and max_query_chars >= 10 required")

    # Derived paths, so every part agrees on where things live.
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def model_path(self) -> Path:
        return (
            Path(self.model_dir).expanduser() if self.model_dir else self.data_path / "models" / "multilingual-e5-small"
        )

    @property
    def index_path(self) -> Path:
        return self.data_path / "index"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file; a PostgreSQL ``database_url`` has none (open it with ``factory.open_database``)."""
        if not self.database_url:
            return self.data_path / "kb.sqlite3"
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError(
                "database_url is not a SQLite file; open the database with knowledge_base.factory.open_database"
            )
        return Path(self.database_url.removeprefix("sqlite:///")).expanduser()

    def thresholds(self) -> dict[str, float]:
        return {
            "answer_threshold": self.answer_threshold,
            "answer_margin": self.answer_margin,
            "clarify_threshold": self.clarify_threshold,
            "clarify_window": self.clarify_window,
            "clarify_max": float(self.clarify_max),
            "lexical_weight": self.lexical_weight,
        }


def shared_secret(settings: Settings, name: str, *, create: bool = True) -> str:
    """The secret setting ``name`` (one of :data:`SECRETS`), or the random one kept in ``data_dir/<name>``.

    So that ``bash scripts/run.sh`` needs no configuration: the first process to ask creates the file
    (readable by its owner only), every process on the host sharing ``data_dir`` reads the same value.

    Args:
        settings: the deployment's settings.
        name: ``rasa_token``, ``action_secret``, ``relay_secret`` or ``secret_key``.
        create: make the file when missing; False returns "" instead (for checks that change nothing).

    Raises:
        ValueError: ``name`` is not a secret setting.
    """
    if name not in SECRETS:
        raise ValueError(f"{name!r} is not a secret setting; secrets: {', '.join(SECRETS)}")
    configured = str(getattr(settings, name))
    if configured:
        return configured
    import os
    import secrets

    path = settings.data_path / name
    if not path.is_file():
        if not create:
            return ""
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: two processes starting at once (Rasa and its action
        # server) never read a half-written file, and the second keeps the first one's value.
        aside = path.with_name(f".{name}.{os.getpid()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    return path.read_text().strip()


def setting_help() -> dict[str, str]:
    """Name -> help text of every setting (for docs and ``hotline config``)."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(Settings) if "help" in f.metadata}


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    try:
        if kind is bool:
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return "" if raw is None else str(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name}: {raw!r} is not a valid {kind.__name__}") from None


def load_settings(
    path: str | Path | None = "config.yml", environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read ``path`` (if it exists), then ``HOTLINE_<NAME>`` variables, then ``overrides``.

    Args:
        path: YAML file with a flat mapping of setting names; None or a missing file means defaults.
        environ: the environment to read overrides from (``os.environ`` when None).
        overrides: explicit values (e.g. CLI options) that win over everything.

    Raises:
        ValueError: an unknown setting name or a value of the wrong type.
    """
    if environ is None:
        import os

        environ = os.environ
    hints = {name: hint for name, hint in typing.get_type_hints(Settings).items() if name in setting_help()}
    values: dict[str, Any] = {}
    if path is not None and Path(path).is_file():
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of setting names to values")
        unknown = sorted(set(data) - set(hints))
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(hints)}")
        values.update(data)
    explicit = set()
    for name in hints:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = environ[env_name]
            explicit.add(name)
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    explicit.update(given)
    kinds = {name: (hint if not isinstance(hint, types.UnionType) else str) for name, hint in hints.items()}
    return Settings(
        **{name: _coerce(name, raw, kinds[name]) for name, raw in values.items()}, explicit=frozenset(explicit)
    )
