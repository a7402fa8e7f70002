"""The composition root: the ``hotline`` command, ``hotline doctor``, model build, benchmarks and calibration.

It may import everything (``web_widget`` for ``hotline web``, ``knowledge_base``); nothing imports it.
"""
