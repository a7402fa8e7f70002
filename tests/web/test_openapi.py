"""The HTTP API's description (web_widget/openapi.yaml) is valid, served, and matches the app's routes.

The fuzz tests (test_fuzz_api.py) check that the app's answers conform to it.
"""

from __future__ import annotations

import re

import pytest
import yaml

from web_widget.apidoc import OPENAPI_PATH

pytestmark = pytest.mark.unit

DOCUMENTED_PREFIXES = ("/api/", "/operator/api/")
METHODS = ("get", "post", "put", "patch", "delete")


def _document() -> dict:
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


def _documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item if method in METHODS}


def _routes(app) -> set[tuple[str, str]]:
    """(path, method) of every URL rule, with Flask's ``<int:x>`` written as OpenAPI's ``{x}``."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_the_document_is_valid_openapi_3():
    import schemathesis

    schema = schemathesis.openapi.from_dict(_document())
    schema.validate()  # against the OpenAPI 3.0 meta-schema
    operations = [result.ok() for result in schema.get_all_operations()]  # every $ref resolves
    assert {(op.path, op.method.upper()) for op in operations} == _documented(_document())


def test_every_documented_route_exists_in_the_app(app):
    missing = _documented(_document()) - _routes(app)
    assert not missing, f"documented in openapi.yaml but not served: {sorted(missing)}"


def test_every_api_route_of_the_app_is_documented(app):
    api_routes = {(path, method) for path, method in _routes(app) if path.startswith(DOCUMENTED_PREFIXES)}
    undocumented = api_routes - _documented(_document())
    assert not undocumented, f"add these to web_widget/openapi.yaml: {sorted(undocumented)}"


def test_the_app_serves_the_document_as_json(client):
    reply = client.get("/api/openapi.json")
    assert reply.status_code == 200
    assert reply.mimetype == "application/json"
    assert reply.get_json() == _document()


@pytest.mark.parametrize(("path", "method"), sorted(_documented(_document())))
def test_every_refusal_the_app_can_give_is_documented(path, method):
    """Integrators need every status they must handle: the staff APIs' 401/403, the POSTs' 400/413."""
    responses = set(_document()["paths"][path][method.lower()]["responses"])
    if path.startswith("/operator/api/"):
        assert {"401", "403"} <= responses
    if method == "POST":
        assert {"400", "413"} <= responses
    if path in ("/api/chat", "/operator/api/search"):
        assert "429" in responses


def test_the_documented_examples_work(app, operator_client):
    """Every request example in the document is accepted as it stands."""
    document = _document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, example in content.get("examples", {}).items():
                reply = operator_client.open(
                    path, method=method, json=example["value"], headers={"X-CSRF-Token": operator_client.csrf}
                )
                assert reply.status_code in (200, 201), (path, name, reply.get_json())
