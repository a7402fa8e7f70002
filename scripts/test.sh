#!/usr/bin/env bash
# Sets up everything the tests need, then runs lint, type checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
bash scripts/setup-rasa.sh
# Real browser tests: Debian's Chromium and its driver, and a Chinese font so screenshots are readable.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
    echo "==> installing Debian's chromium, chromium-driver and a Chinese font for the browser tests"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null
fi
export HOTLINE_TEST_MODEL_DIR="$PWD/var/models/multilingual-e5-small"
echo "==> ruff"
.venv/bin/ruff check .
echo "==> import contracts (lint-imports: the layers in pyproject.toml)"
.venv/bin/lint-imports
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
.venv/bin/python -m pytest "$@"
