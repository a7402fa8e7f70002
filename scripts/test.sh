#!/usr/bin/env bash
# Sets up everything the tests need, then runs lint, type checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
bash scripts/setup-rasa.sh
export HOTLINE_TEST_MODEL_DIR="$PWD/var/models/multilingual-e5-small"
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
.venv/bin/python -m pytest "$@"
