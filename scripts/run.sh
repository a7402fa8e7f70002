#!/usr/bin/env bash
# Sets up hotline-qa (both environments, model, sample knowledge base, index, Rasa model, first
# administrator) and runs the action server, Rasa (website and hotline channels) and the web app
# (chat widget, operator console, admin) under `hotline supervise`, which restarts any server that exits
# or stops answering its health check (backoff 1, 2, 4 ... 30 s; logged in var/log/supervise.log).
# Ctrl-C stops everything.
#
# Multi-process mode on one host: HOTLINE_WORKERS=2 (needs redis_url, e.g.
# HOTLINE_REDIS_URL=redis://127.0.0.1:6379/0) runs two of each on consecutive ports, Rasa worker i
# calling action server i and web worker i relaying to Rasa worker i; put a load balancer in front.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${HOTLINE_WORKERS:-1}"
bash scripts/setup-env.sh
if [ "$workers" -gt 1 ] && [ -z "$(.venv/bin/hotline config --get redis_url)" ]; then
    echo "HOTLINE_WORKERS=$workers needs Redis for shared conversations: set redis_url (or HOTLINE_REDIS_URL)" >&2
    exit 2
fi
bash scripts/setup-rasa.sh
# setup upgrades the database schema first (hotline db upgrade): once, before any worker starts.
.venv/bin/hotline setup
mkdir -p var/log
.venv/bin/hotline user ensure-admin --credentials-file var/admin-credentials.txt

action_base="${HOTLINE_ACTION_PORT:-5055}" rasa_base="${HOTLINE_RASA_PORT:-5005}"
web_base="$(.venv/bin/hotline config --get web_port)"
# Rasa and the action servers listen on loopback unless rasa_host / action_host say otherwise; the
# secrets between the servers are settings or random values made once in data_dir (scripts/bot.sh).
here() { case "$1" in 0.0.0.0|::|"") echo 127.0.0.1 ;; *) echo "$1" ;; esac; }
rasa_at="$(here "$(.venv/bin/hotline config --get rasa_host)")"
action_at="$(here "$(.venv/bin/hotline config --get action_host)")"
rasa_token="$(.venv/bin/python -c 'from knowledge_base.settings import load_settings, shared_secret
print(shared_secret(load_settings(), "rasa_token"))')"
if [ -z "${HOTLINE_GATEWAY_SECRET:-}" ]; then
    HOTLINE_GATEWAY_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
fi
export HOTLINE_GATEWAY_SECRET
# The supervisor starts every server in its own process group and stops them all on SIGTERM.
.venv/bin/hotline supervise --workers "$workers" --action-port "$action_base" --rasa-port "$rasa_base" \
    --web-port "$web_base" --log-dir var/log 2> >(tee -a var/log/supervise.log >&2) &
supervisor=$!
stop() { kill -TERM "$supervisor" 2>/dev/null || true; wait "$supervisor" 2>/dev/null || true; echo "stopped"; }
trap stop EXIT INT TERM
echo "==> starting $workers action server(s), Rasa worker(s) and web app(s) (logs in var/log/)"

ready() {
    for ((i = 0; i < workers; i++)); do
        # Rasa's /status needs its API token: given on stdin (curl -K -), not on a command line `ps` shows.
        echo "url = \"http://$rasa_at:$((rasa_base + i))/status?token=$rasa_token\"" |
            curl -fs -K - 2>/dev/null | grep -q model_id || return 1
        curl -fs "http://$action_at:$((action_base + i))/health" >/dev/null 2>&1 || return 1
        curl -fs "http://127.0.0.1:$((web_base + i))/healthz" >/dev/null 2>&1 || return 1
    done
}
started=$SECONDS
for _ in $(seq 1 300); do
    if ready; then
        cat <<MSG
==> hotline-qa is running ($workers worker(s) of each; ready in $((SECONDS - started)) s)
  demo government site with the chat widget: http://127.0.0.1:$web_base/demo
  operator console:     http://127.0.0.1:$web_base/operator
  admin:                http://127.0.0.1:$web_base/admin
      first administrator: $(cat var/admin-credentials.txt 2>/dev/null || echo 'created earlier (hotline user list)')
  website chat channel: POST http://$rasa_at:$rasa_base/webhooks/web/webhook (rate_limit_per_minute per address)
      curl -s -XPOST $rasa_at:$rasa_base/webhooks/web/webhook -H 'Content-Type: application/json' \\
           -d '{"sender":"demo","message":"社保卡丢了怎么补办"}'
  hotline gateway:      POST http://$rasa_at:$rasa_base/webhooks/hotline/webhook
      header X-Hotline-Secret: $HOTLINE_GATEWAY_SECRET
  Rasa's HTTP API and the action servers need their secrets (data_dir/rasa_token, data_dir/action_secret)
  question console:     .venv/bin/hotline ask
  check a deployment:   .venv/bin/hotline doctor
A server that exits or hangs is restarted by the supervisor (var/log/supervise.log, var/log/state.json).
Press Ctrl-C to stop.
MSG
        wait "$supervisor"
        exit $?
    fi
    kill -0 "$supervisor" 2>/dev/null || { echo "the supervisor stopped; see var/log/" >&2; exit 1; }
    sleep 1
done
echo "the servers did not become ready in 300 s; see var/log/ (the supervisor keeps trying; Ctrl-C stops)" >&2
wait "$supervisor"
