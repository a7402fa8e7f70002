#!/usr/bin/env bash
# Sets up hotline-qa (environment, model, sample knowledge base, index) and starts it.
# Until the chat stack lands, "running" is the interactive question console.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/hotline setup
exec .venv/bin/hotline ask "$@"
