"""Flask application of hotline-qa: the citizens' chat widget, the operator console and the admin.

Example:
    >>> app = create_app()
    >>> app.test_client().get("/chat").status_code
    200
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

from knowledge_base.settings import Settings, load_settings, shared_secret

if TYPE_CHECKING:
    import redis as redis_client

    from knowledge_base.search.kb import KnowledgeBase
    from knowledge_base.storage.database import Database
    from web_widget.chat import Relay

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class _DatabaseId(IntegerConverter):
    """``<int:...>`` in URLs: ids are 64-bit in the database, so a longer number is a 404 rather than a crash."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(
    settings: Settings | None = None,
    *,
    kb: KnowledgeBase | None = None,
    relay: Relay | None = None,
    db: Database | None = None,
    redis: redis_client.Redis | None = None,
) -> Flask:
    """Build the web application.

    Args:
        settings: the deployment's settings (read from config.yml and the environment when None).
        kb: the knowledge base the operator console and the admin use (built from settings on first use when None).
        relay: what forwards a citizen's message to the dialogue (tests pass a fake); by default
            :class:`web_widget.chat.RasaRelay` on ``settings.rasa_url``.
        db: the database of accounts, drafts and interactions (the knowledge base's own when None).
        redis: a Redis client for shared rate limits (from ``redis_url`` when None).
    """
    from web_widget.admin import admin
    from web_widget.apidoc import apidoc
    from web_widget.auth import auth, current_user
    from web_widget.calibration import calibration
    from web_widget.chat import RasaRelay, chat
    from web_widget.deliveries import deliveries
    from web_widget.dispatch import dispatch
    from web_widget.operator import operator
    from web_widget.orders_api import orders_api
    from web_widget.security import RateLimiter, StrictJSONProvider, check_csrf, csrf_token, secret_key
    from web_widget.services import Services

    settings = settings or load_settings()
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    hotline = Services(settings, kb=kb, db=db, redis=redis)
    app.extensions["hotline"] = hotline
    app.config.update(
        HOTLINE_SETTINGS=settings,
        HOTLINE_RELAY=relay
        or RasaRelay(settings.rasa_url, settings.relay_timeout, relay_secret=shared_secret(settings, "relay_secret")),
        HOTLINE_LIMITER=RateLimiter(settings.rate_limit_per_minute, redis=hotline.redis, prefix=settings.redis_prefix),
        HOTLINE_OPERATOR_LIMITER=RateLimiter(
            settings.operator_rate_limit_per_minute, redis=hotline.redis, prefix=settings.redis_prefix
        ),
        SECRET_KEY=secret_key(settings),
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https_only,
        SESSION_COOKIE_NAME="hotline_session",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
    )
    if settings.trusted_proxies:
        # Behind that many reverse proxies the client is the address they saw, not the nearest proxy: rate
        # limits, the audit log and sign-in throttling all read request.remote_addr. Never believed with 0,
        # where any client could write the headers itself.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.url_map.converters["int"] = _DatabaseId
    app.before_request(check_csrf)
    app.jinja_env.globals.update(csrf_token=csrf_token, current_user=current_user)
    for blueprint in (chat, auth, operator, admin, apidoc, calibration, dispatch):
        app.register_blueprint(blueprint)
    app.register_blueprint(orders_api)  # the city's work-order system (bearer token)
    app.register_blueprint(deliveries)  # 投递失败: its dead letters

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """For run scripts and load balancers: the app answers and its database is reachable."""
        try:
            hotline.db.query("SELECT 1 AS ok")
        except Exception as exc:  # a health check reports, it does not raise
            return jsonify(status="unhealthy", reason=f"database: {exc}"), 503
        kb = hotline.loaded_kb()
        return jsonify(status="ok", kb_version=kb.kb_version if kb is not None else None)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        # JSON for the APIs, a plain Chinese page for people; never a stack trace.
        status = exc.code or 500
        reason = exc.description or exc.name
        if status == 413 and request.path.startswith("/admin"):
            reason = f"上传的内容太大（上限 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB）"
        if request.path.startswith(("/api/", "/operator/api/", "/admin/api/")):
            return jsonify(error=reason), status
        return render_template("staff/error.html", status=status, reason=reason), status

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Everything is served by this app (no CDN); only the chat page may be framed by government sites.
        framing = "*" if request.path in ("/chat",) else "'self'"
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            f"connect-src 'self'; frame-ancestors {framing}; base-uri 'none'; form-action 'self'; object-src 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if settings.https_only:  # a browser that saw this never tries plain http here again for a year
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.path.startswith(("/staff", "/admin", "/operator")):
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    return app
