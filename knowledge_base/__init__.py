"""hotline-qa's knowledge base: the library that both paths run through. It knows no channel, web page or Rasa.

Floors, each importing only those below it (enforced by ``lint-imports``, see ``pyproject.toml``):

- :mod:`knowledge_base.factory`: wires the real parts together, the one place that knows them all.
- :mod:`knowledge_base.search` (question path) and :mod:`knowledge_base.staff` (edit path's services).
- :mod:`knowledge_base.storage` (rows, schema and migrations, change events) and :mod:`knowledge_base.transfer`.
- :mod:`knowledge_base.records` (plain data), :mod:`knowledge_base.fields`.
- :mod:`knowledge_base.settings`, :mod:`knowledge_base.errors`, :mod:`knowledge_base.plain`.

This file runs in Rasa's Python 3.10 environment too (through :mod:`knowledge_base.plain`): standard library only.
Nothing is loaded at import time; see :func:`knowledge_base.factory.open_knowledge_base`.
"""
