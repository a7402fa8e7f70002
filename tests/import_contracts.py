"""An import-linter contract type the built-in ones lack: "these modules import only the standard library".

``knowledge_base.plain`` runs inside Rasa's own Python 3.10 environment (``.venv-rasa``), where none of our
dependencies are installed, and the Rasa channels may use nothing of ours but that package. The built-in
``forbidden`` contract needs every forbidden package named; this one allows a list instead, so a new
dependency is caught the day someone imports it. Configured in ``pyproject.toml`` (``[tool.importlinter]``).
"""

from __future__ import annotations

import sys
from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output


class StandardLibraryOnlyContract(Contract):
    """Modules of ``source_modules`` import only the standard library, themselves and ``allowed_modules``.

    Configuration options:
        source_modules: packages (with their descendants) whose imports are checked.
        allowed_modules: other packages they may import (ours or external), with their descendants.
    """

    type_name = "standard_library_only"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField(), required=False, default=[])

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        sources = [module.name for module in self.source_modules]  # type: ignore[attr-defined]
        allowed = [module.name for module in self.allowed_modules]  # type: ignore[attr-defined]
        checked: set[str] = set()
        for source in sources:
            checked |= {source, *graph.find_descendants(source)}
        violations: list[dict[str, Any]] = []
        for importer in sorted(checked):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if _permitted(imported, sources + allowed):
                    continue
                lines = [d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)]
                violations.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            lines = ", ".join(map(str, violation["lines"])) or "?"
            output.print_error(
                f"{violation['importer']} imports {violation['imported']} (line {lines}), "
                "which is neither the standard library nor allowed.",
                bold=False,
            )
            output.new_line()


def _permitted(module: str, packages: list[str]) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return True
    return any(module == package or module.startswith(package + ".") for package in packages)
