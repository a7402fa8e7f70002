"""Flask application of hotline-qa: the citizens' chat widget (operator console and admin come next).

Example:
    >>> app = create_app()
    >>> app.test_client().get("/chat").status_code
    200
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from knowledge_base.settings import Settings, load_settings


def create_app(settings: Settings | None = None, *, kb: Any = None, relay: Any = None) -> Flask:
    """Build the web application.

    Args:
        settings: the deployment's settings (read from config.yml and the environment when None).
        kb: a knowledge base for the pages that search it directly (unused by the widget).
        relay: what forwards a citizen's message to the dialogue (tests pass a fake); by default
            :class:`web_widget.chat.RasaRelay` on ``settings.rasa_url``.
    """
    from web_widget.chat import RasaRelay, chat

    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["HOTLINE_SETTINGS"] = settings
    app.config["HOTLINE_KB"] = kb
    app.config["HOTLINE_RELAY"] = relay or RasaRelay(settings.rasa_url)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.register_blueprint(chat)

    @app.after_request
    def security_headers(response: Any) -> Any:
        # Everything is served by this app (no CDN); the chat page may be framed by government sites.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors *; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
