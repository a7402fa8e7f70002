#!/usr/bin/env bash
# Creates .venv-rasa (Python 3.10, Rasa open source 3.6.21: Rasa does not run on 3.11) and trains the
# Rasa model when its inputs changed (Rasa itself skips training when nothing did).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
    if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys' 2>/dev/null; then
        command -v python3.10; return 0
    fi
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -V -r); do
            PYENV_VERSION=$version pyenv which python && return 0
        done
    fi
    echo "error: Python 3.10 is needed for Rasa 3.6 (install it, e.g. with pyenv)" >&2
    return 1
}

stamp=.venv-rasa/.installed-$(sha256sum scripts/setup-rasa.sh | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "==> creating .venv-rasa with Python 3.10 and installing Rasa 3.6.21 (a few minutes)"
    [ -x .venv-rasa/bin/python ] || "$(find_python310)" -m venv .venv-rasa
    .venv-rasa/bin/python -m pip install --quiet --upgrade pip
    # jieba is an optional extra of Rasa that its JiebaTokenizer needs.
    .venv-rasa/bin/python -m pip install --quiet rasa==3.6.21 jieba==0.42.1
    rm -f .venv-rasa/.installed-* && touch "$stamp"
fi
bash scripts/bot.sh train
