"""The action server: rasa-sdk's own app, on the address of our choosing, refusing calls without the secret.

``python -m rasa_sdk`` listens on every address (``SANIC_HOST``, default 0.0.0.0) and runs any action
for anyone who can reach it: a hand-made ``POST /webhook`` could create a work order. Here the same
app (``rasa_sdk.endpoint.create_app_for_serve``, so tracing and plugins behave as upstream) listens on
``action_host`` (loopback by default), and every request but ``GET /health`` must carry the shared
secret in the header ``X-Hotline-Action-Secret``, which Rasa sends from ``bot/endpoints*.yml``.

Run it as ``scripts/bot.sh actions`` does::

    .venv/bin/python -m actions.server --port 5055
"""

from __future__ import annotations

import argparse
import hmac
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sanic import Sanic
    from sanic.request import Request
    from sanic.response import HTTPResponse

log = logging.getLogger("hotline.actions")

HEADER = "X-Hotline-Action-Secret"
# Load balancers and scripts poll it; it answers {"status": "ok"} and nothing else.
OPEN_PATHS = frozenset({"/health"})


def build_app(secret: str, package: str = "actions") -> Sanic[Any, Any]:
    """rasa-sdk's action server app for ``package``, guarded by ``secret``.

    Module-level (not a closure): a factory Sanic could pickle, should the app ever be served by
    worker processes again.

    Raises:
        ValueError: the secret is shorter than 16 characters.
    """
    from rasa_sdk.endpoint import create_app_for_serve
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package(package)
    app = create_app_for_serve(executor, cors_origins=None)  # called by Rasa, never by a browser
    require_secret(app, secret)
    return app


def require_secret(app: Sanic[Any, Any], secret: str) -> None:
    """Answer 401 to every request but :data:`OPEN_PATHS` whose ``X-Hotline-Action-Secret`` is not ``secret``."""
    if len(secret) < 16:
        raise ValueError("the action server needs a shared secret of at least 16 characters (action_secret)")
    from sanic import response

    expected = secret.encode()

    async def check(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        given = request.headers.get(HEADER, "")
        if hmac.compare_digest(given.encode(), expected):
            return None
        reason = "missing" if not given else "wrong"
        log.warning("refused %s %s from %s: %s %s", request.method, request.path, request.ip, reason, HEADER)
        return response.json(
            {"error": f"{reason} {HEADER}: only Rasa may call the action server (action_secret)"}, status=401
        )

    app.on_request(check, priority=100)  # before rasa-sdk's own middleware (CORS)


def main(argv: list[str] | None = None) -> None:
    """Serve the action server on ``--host`` (else ``action_host``) and ``--port`` until stopped."""
    from rasa_sdk import utils
    from sanic import Sanic

    from knowledge_base.settings import load_settings, shared_secret

    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="address to listen on (default: the action_host setting, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5055, help="port to listen on (default 5055)")
    parser.add_argument("--actions", default="actions", help="package of the custom actions (default actions)")
    args = parser.parse_args(argv)
    settings = load_settings()
    host = args.host or settings.action_host
    secret = shared_secret(settings, "action_secret")

    utils.configure_colored_logging(logging.INFO)  # type: ignore[no-untyped-call]  # rasa-sdk has no hints here
    utils.update_sanic_log_level()
    app = build_app(secret, args.actions)
    # The knowledge base and model load before the port opens: /health then means "can answer", and a
    # server restarted by the supervisor answers its first citizen at once instead of timing out.
    try:
        from actions import runtime

        runtime.get()
    except Exception:
        log.exception("loading the knowledge base failed; the first question will try again")
    log.info("action server on http://%s:%d (calls need %s; /health is open)", host, args.port, HEADER)
    # One process: Sanic's worker manager would otherwise fork the serving process and keep the port in
    # a parent that outlives it (a worker killed by the OOM killer left /health hanging and nobody
    # noticed). Now the death of the server is the death of this process, which a supervisor sees.
    app.prepare(host=host, port=args.port, single_process=True, motd=False)
    Sanic.serve_single(primary=app)


if __name__ == "__main__":
    main()
