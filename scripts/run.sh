#!/usr/bin/env bash
# Sets up hotline-qa (both environments, model, sample knowledge base, index, Rasa model, first
# administrator) and runs the action server, Rasa (website and hotline channels) and the web app
# (chat widget, operator console, admin). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
bash scripts/setup-rasa.sh
.venv/bin/hotline setup
mkdir -p var
.venv/bin/hotline user ensure-admin --credentials-file var/admin-credentials.txt

export HOTLINE_ACTION_PORT="${HOTLINE_ACTION_PORT:-5055}" HOTLINE_RASA_PORT="${HOTLINE_RASA_PORT:-5005}"
export HOTLINE_RASA_URL="${HOTLINE_RASA_URL:-http://127.0.0.1:$HOTLINE_RASA_PORT}"
web_port="$(.venv/bin/hotline config --get web_port)"
if [ -z "${HOTLINE_GATEWAY_SECRET:-}" ]; then
    HOTLINE_GATEWAY_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
fi
export HOTLINE_GATEWAY_SECRET
mkdir -p var/log
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo "stopped"; }
trap stop EXIT INT TERM

bash scripts/bot.sh actions > var/log/actions.log 2>&1 & pids+=($!)
bash scripts/bot.sh rasa > var/log/rasa.log 2>&1 & pids+=($!)
.venv/bin/hotline web > var/log/web.log 2>&1 & pids+=($!)
echo "==> starting the action server, Rasa and the web app (logs in var/log/)"
for _ in $(seq 1 180); do
    if curl -fs "http://127.0.0.1:$HOTLINE_RASA_PORT/status" 2>/dev/null | grep -q model_id &&
       curl -fs "http://127.0.0.1:$HOTLINE_ACTION_PORT/health" >/dev/null 2>&1 &&
       curl -fs "http://127.0.0.1:$web_port/healthz" >/dev/null 2>&1; then
        cat <<MSG
==> hotline-qa is running
  demo government site with the chat widget: http://127.0.0.1:$web_port/demo
  operator console:     http://127.0.0.1:$web_port/operator
  admin:                http://127.0.0.1:$web_port/admin   (first administrator: $(cat var/admin-credentials.txt 2>/dev/null || echo 'see var/admin-credentials.txt'))
  website chat channel: POST http://127.0.0.1:$HOTLINE_RASA_PORT/webhooks/web/webhook
      curl -s -XPOST localhost:$HOTLINE_RASA_PORT/webhooks/web/webhook -H 'Content-Type: application/json' \\
           -d '{"sender":"demo","message":"社保卡丢了怎么补办"}'
  hotline gateway:      POST http://127.0.0.1:$HOTLINE_RASA_PORT/webhooks/hotline/webhook
      header X-Hotline-Secret: $HOTLINE_GATEWAY_SECRET
  question console:     .venv/bin/hotline ask
  check a deployment:   .venv/bin/hotline doctor
Press Ctrl-C to stop.
MSG
        wait -n "${pids[@]}"
        echo "a server stopped; see var/log/" >&2
        exit 1
    fi
    sleep 1
done
echo "the servers did not become ready in 180 s; see var/log/" >&2
exit 1
