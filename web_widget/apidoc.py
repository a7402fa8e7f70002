"""The HTTP API's description for integrators: ``openapi.yaml`` beside this module, served as JSON.

The file is kept by hand; ``tests/web/test_openapi.py`` checks it against the app's routes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

apidoc = Blueprint("apidoc", __name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document, read on first use (never at import)."""
    import yaml

    document: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


@apidoc.get("/api/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi_document())
