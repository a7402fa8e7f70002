"""Standard library only, Python 3.10-safe: what the Rasa channels (``bot/channels``) share with the rest.

Rasa runs in its own Python 3.10 environment (``.venv-rasa``) with the repository root on its path, so these
modules may import nothing but the standard library and each other; an import-linter contract enforces it.
"""
