"""The custom import-linter contract (tests/import_contracts.py) on small hand-made import graphs."""

from __future__ import annotations

import grimp
import pytest

from tests.import_contracts import StandardLibraryOnlyContract

pytestmark = pytest.mark.unit


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.plain", "pkg.plain.a", "pkg.plain.b", "pkg.search", "other", "other.x"):
        graph.add_module(module)
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=3, line_contents=f"import {imported}")
    return graph


def _contract(allowed: list[str] | None = None) -> StandardLibraryOnlyContract:
    options: dict[str, object] = {"source_modules": ["pkg.plain"]}
    if allowed is not None:
        options["allowed_modules"] = allowed
    return StandardLibraryOnlyContract(name="plain", session_options={}, contract_options=options)


def test_standard_library_and_siblings_are_kept():
    graph = _graph(("pkg.plain.a", "re"), ("pkg.plain.a", "collections.abc"), ("pkg.plain.b", "pkg.plain.a"))
    assert _contract().check(graph, verbose=False).kept


@pytest.mark.parametrize("imported", ["numpy", "pkg.search", "other.x"])
def test_anything_else_breaks_it_and_names_the_line(imported):
    check = _contract().check(_graph(("pkg.plain.b", imported)), verbose=False)
    assert not check.kept
    assert check.metadata["violations"] == [{"importer": "pkg.plain.b", "imported": imported, "lines": [3]}]


def test_allowed_modules_include_their_descendants():
    graph = _graph(("pkg.plain.a", "other.x"))
    assert _contract(allowed=["other"]).check(graph, verbose=False).kept
    assert not _contract(allowed=["oth"]).check(graph, verbose=False).kept
