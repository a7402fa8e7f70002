#!/usr/bin/env bash
# The Rasa side of hotline-qa.
#   scripts/bot.sh train     train bot/models/hotline.tar.gz (skipped by Rasa when nothing changed)
#   scripts/bot.sh actions   run the action server (Python 3.11 venv) on HOTLINE_ACTION_PORT (5055)
#   scripts/bot.sh rasa      run Rasa with the REST and hotline channels on HOTLINE_RASA_PORT (5005)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export HOTLINE_ACTION_URL="${HOTLINE_ACTION_URL:-http://127.0.0.1:${HOTLINE_ACTION_PORT:-5055}/webhook}"
export SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=3

case "${1:-}" in
  train)
    mkdir -p "$root/bot/.jieba"
    cp "$root/knowledge_base/data/userdict.txt" "$root/bot/.jieba/userdict.txt"
    cd "$root/bot"
    "$root/.venv-rasa/bin/rasa" train --fixed-model-name hotline --out models --quiet
    ;;
  actions)
    cd "$root"
    exec "$root/.venv/bin/python" -m rasa_sdk --actions actions --port "${HOTLINE_ACTION_PORT:-5055}"
    ;;
  rasa)
    if [ -z "${HOTLINE_GATEWAY_SECRET:-}" ]; then
        HOTLINE_GATEWAY_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
        echo "HOTLINE_GATEWAY_SECRET was not set; this run's hotline gateway secret: $HOTLINE_GATEWAY_SECRET"
    fi
    export HOTLINE_GATEWAY_SECRET
    endpoints=endpoints.yml
    [ -n "${HOTLINE_REDIS_HOST:-}" ] && endpoints=endpoints-redis.yml
    cd "$root/bot"
    PYTHONPATH="$root/bot" exec "$root/.venv-rasa/bin/rasa" run --enable-api --cors "*" \
        --port "${HOTLINE_RASA_PORT:-5005}" --model models/hotline.tar.gz \
        --credentials credentials.yml --endpoints "$endpoints"
    ;;
  *)
    echo "usage: scripts/bot.sh train|actions|rasa" >&2; exit 2 ;;
esac
