#!/usr/bin/env bash
# The Rasa side of hotline-qa.
#   scripts/bot.sh train     train bot/models/hotline.tar.gz (skipped by Rasa when nothing changed)
#   scripts/bot.sh actions   run the action server (Python 3.11 venv) on HOTLINE_ACTION_PORT (5055)
#   scripts/bot.sh check     exit 1 when the trained model is missing or corrupt (the rasa command retrains it)
#   scripts/bot.sh rasa      run Rasa with the REST and hotline channels on HOTLINE_RASA_PORT (5005);
#                            with a redis_url (HOTLINE_REDIS_URL or config.yml) its tracker and lock store
#                            live in that Redis (bot/endpoints-redis.yml)
# Both listen on loopback unless rasa_host / action_host say otherwise. Rasa calls the action server
# with action_secret, its HTTP API needs rasa_token, and its web channel leaves messages carrying
# relay_secret (the web app's relay) to the web app's rate limit: each is the setting
# (HOTLINE_ACTION_SECRET ...) or a random value kept in data_dir, the same for both commands.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# Rasa's Redis tracker and lock store take host, port, db and password separately: split the deployment's
# redis_url into HOTLINE_REDIS_HOST/PORT/DB/PASSWORD for bot/endpoints-redis.yml. Returns 1 without Redis.
# HOTLINE_REDIS_HOST (with PORT and DB), the older way to ask for Redis, still wins when set.
# Called as an `if` condition, where `set -e` does not apply: failures exit explicitly.
redis_for_rasa() {
    if [ -n "${HOTLINE_REDIS_HOST:-}" ]; then
        export HOTLINE_REDIS_PORT="${HOTLINE_REDIS_PORT:-6379}" HOTLINE_REDIS_DB="${HOTLINE_REDIS_DB:-0}"
        export HOTLINE_REDIS_PASSWORD="${HOTLINE_REDIS_PASSWORD:-}"
        return 0
    fi
    local url="" parts
    if [ -n "${HOTLINE_REDIS_URL+set}" ]; then
        url="$HOTLINE_REDIS_URL"
    elif [ -x "$root/.venv/bin/hotline" ]; then
        # The effective setting: config.yml (or HOTLINE_CONFIG) as the knowledge base reads it.
        url="$(cd "$root" && "$root/.venv/bin/hotline" config --get redis_url)" || exit 2
    fi
    [ -n "$url" ] || return 1
    parts="$("$root/.venv-rasa/bin/python" - "$url" <<'PY'
import sys
from urllib.parse import unquote, urlsplit

url = urlsplit(sys.argv[1])
db = url.path.strip("/") or "0"
if url.scheme != "redis" or not url.hostname or not db.isdigit():
    sys.exit(f"redis_url {sys.argv[1]!r}: Rasa's tracker store needs redis://[:password@]host[:port][/db]")
print(url.hostname, url.port or 6379, db, unquote(url.password or ""), sep="\n")
PY
)" || exit 2
    { read -r HOTLINE_REDIS_HOST; read -r HOTLINE_REDIS_PORT; read -r HOTLINE_REDIS_DB; read -r HOTLINE_REDIS_PASSWORD || true; } <<< "$parts"
    export HOTLINE_REDIS_HOST HOTLINE_REDIS_PORT HOTLINE_REDIS_DB HOTLINE_REDIS_PASSWORD
}

# The settings both servers need, as the web app and `hotline doctor` read them (config.yml or
# HOTLINE_CONFIG, HOTLINE_* variables, secrets made once in data_dir). The secrets are exported for
# bot/endpoints*.yml, bot/credentials.yml and actions/server.py; nothing here prints them.
load_bot_settings() {
    local values
    values="$(cd "$root" && "$root/.venv/bin/python" - <<'PY'
from knowledge_base.settings import load_settings, shared_secret

s = load_settings()
print(s.rasa_host, s.action_host, s.rate_limit_per_minute, s.trusted_proxies, s.redis_url, s.redis_prefix, sep="\n")
print(s.action_timeout, s.dialogue_timeout, sep="\n")
for name in ("rasa_token", "action_secret", "relay_secret"):
    print(shared_secret(s, name))
PY
)" || { echo "cannot read the settings (config.yml, HOTLINE_*): see the error above" >&2; exit 2; }
    { read -r rasa_host; read -r action_host; read -r HOTLINE_RATE_LIMIT_PER_MINUTE; read -r HOTLINE_TRUSTED_PROXIES
      read -r HOTLINE_LIMIT_REDIS_URL; read -r HOTLINE_REDIS_PREFIX
      read -r HOTLINE_ACTION_TIMEOUT; read -r HOTLINE_DIALOGUE_TIMEOUT
      read -r HOTLINE_RASA_TOKEN; read -r HOTLINE_ACTION_SECRET; read -r HOTLINE_RELAY_SECRET; } <<< "$values"
    export HOTLINE_RATE_LIMIT_PER_MINUTE HOTLINE_TRUSTED_PROXIES HOTLINE_LIMIT_REDIS_URL HOTLINE_REDIS_PREFIX
    export HOTLINE_RASA_TOKEN HOTLINE_ACTION_SECRET HOTLINE_RELAY_SECRET
    export HOTLINE_ACTION_TIMEOUT HOTLINE_DIALOGUE_TIMEOUT
}

# Where a client on this host reaches a server listening on $1 (every address: loopback).
local_address() {
    case "$1" in 0.0.0.0|::|"") echo 127.0.0.1 ;; *) echo "$1" ;; esac
}

model="${HOTLINE_RASA_MODEL:-$root/bot/models/hotline.tar.gz}"

# A model file cut short (disk full, killed copy) must be retrained, not served: the whole gzip
# stream and every tar header are read, and Rasa's metadata must be inside.
model_ok() {
    [ -s "$model" ] && tar -tzf "$model" 2>/dev/null | grep -q "metadata.json"
}

# What the model is trained from: when none of it changed, starting Rasa's trainer (~20 s) is skipped.
inputs_hash() {
    (cd "$root" && cat bot/domain.yml bot/config.yml bot/data/*.yml knowledge_base/data/userdict.txt) | sha256sum | cut -c1-32
}

train() {
    if model_ok && [ "$(cat "$model.inputs" 2>/dev/null)" = "$(inputs_hash)" ]; then
        echo "Rasa model up to date: $model"
        return 0
    fi
    mkdir -p "$root/bot/.jieba"
    cp "$root/knowledge_base/data/userdict.txt" "$root/bot/.jieba/userdict.txt"
    if [ -e "$model" ] && ! model_ok; then
        echo "the Rasa model $model is corrupt: moved aside to $model.corrupt, training a new one" >&2
        mv -f "$model" "$model.corrupt"
    fi
    (cd "$root/bot" && "$root/.venv-rasa/bin/rasa" train --fixed-model-name hotline --out models --quiet)
    inputs_hash > "$model.inputs"
}

export SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=3

case "${1:-}" in
  train)
    train
    ;;
  check)
    if model_ok; then echo "Rasa model ok: $model"; else echo "Rasa model missing or corrupt: $model" >&2; exit 1; fi
    ;;
  actions)
    cd "$root"
    load_bot_settings
    port="${HOTLINE_ACTION_PORT:-5055}" here="$(local_address "$action_host")"
    # rasa-sdk's own `python -m rasa_sdk` listens on every address and asks no secret: ours does both.
    "$root/.venv/bin/python" -m actions.server --host "$action_host" --port "$port" &
    server=$!
    trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' TERM INT
    # Load the knowledge base and the model now, not inside the first caller's request.
    for _ in $(seq 1 120); do
        if curl -fs "http://$here:$port/health" >/dev/null 2>&1; then
            # The secret through a header file on stdin (-H @-), not the command line that `ps` shows.
            echo "X-Hotline-Action-Secret: $HOTLINE_ACTION_SECRET" |
            curl -fs -XPOST "http://$here:$port/webhook" -H 'Content-Type: application/json' -H @- \
                -d '{"next_action":"action_warm_up","sender_id":"warm-up","tracker":{"sender_id":"warm-up","slots":{},"latest_message":{},"events":[],"paused":false,"latest_event_time":null,"followup_action":null,"active_loop":{},"latest_action_name":null},"domain":{}}' \
                >/dev/null || echo "action server warm-up request failed; the first question will load the knowledge base" >&2
            break
        fi
        kill -0 "$server" 2>/dev/null || break
        sleep 0.5
    done
    wait "$server"
    ;;
  rasa)
    if [ -z "${HOTLINE_GATEWAY_SECRET:-}" ]; then
        HOTLINE_GATEWAY_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
        echo "HOTLINE_GATEWAY_SECRET was not set; this run's hotline gateway secret: $HOTLINE_GATEWAY_SECRET"
    fi
    export HOTLINE_GATEWAY_SECRET
    load_bot_settings
    export HOTLINE_ACTION_URL="${HOTLINE_ACTION_URL:-http://$(local_address "$action_host"):${HOTLINE_ACTION_PORT:-5055}/webhook}"
    endpoints=endpoints.yml
    if redis_for_rasa; then
        endpoints=endpoints-redis.yml
        echo "Rasa conversations and locks in Redis $HOTLINE_REDIS_HOST:$HOTLINE_REDIS_PORT db $HOTLINE_REDIS_DB"
    fi
    if ! model_ok; then
        echo "the Rasa model $model is missing or corrupt; training it before starting" >&2
        train
    fi
    cd "$root/bot"
    echo "Rasa on $rasa_host:${HOTLINE_RASA_PORT:-5005}, HTTP API behind rasa_token; actions at $HOTLINE_ACTION_URL" \
         "(action_timeout $HOTLINE_ACTION_TIMEOUT s, dialogue_timeout $HOTLINE_DIALOGUE_TIMEOUT s)"
    # bot/ for our channels (imported as channels.*); the root for the stdlib-only knowledge_base.plain.speech they use.
    # Rasa takes its API token only as --auth-token: it is added from the environment inside the process,
    # so that it never appears on a command line other users of the host can read (ps, /proc/PID/cmdline);
    # as one "--auth-token=VALUE" word, because a random token may start with "-" (argparse would take it for an option).
    # The timeouts (Rasa has no setting for its wait on the action server) are set in the same way, and
    # channels/tuning.py takes out costs measured under load: TensorFlow's memory (not loaded at all when no
    # component of the model needs it; otherwise JAX's part of it), a per-message schema check and a walk of
    # every event class for each stored event.
    # One process: with the in-memory or Redis lock store Rasa 3.6 runs Sanic with one worker (SANIC_WORKERS
    # unset), serving in this process, so a supervisor sees its death; exec keeps it the same PID.
    unset SANIC_WORKERS
    PYTHONPATH="$root/bot:$root" HOTLINE_SERVED_MODEL="$model" exec "$root/.venv-rasa/bin/python" -c '
import os, sys
from channels import tuning
print(tuning.leave_out_what_the_model_does_not_use(os.environ["HOTLINE_SERVED_MODEL"]), flush=True)
from channels.dialogue import configure_timeouts
configure_timeouts(float(os.environ["HOTLINE_ACTION_TIMEOUT"]), float(os.environ["HOTLINE_DIALOGUE_TIMEOUT"]))
tuning.check_action_replies_with_one_validator()
tuning.find_event_classes_in_one_table()
from rasa.__main__ import main
sys.argv = ["rasa", *sys.argv[1:], "--auth-token=" + os.environ["HOTLINE_RASA_TOKEN"]]
sys.exit(main())' run --enable-api --interface "$rasa_host" \
        --port "${HOTLINE_RASA_PORT:-5005}" --model "$model" \
        --credentials credentials.yml --endpoints "$endpoints"
    ;;
  *)
    echo "usage: scripts/bot.sh train|check|actions|rasa" >&2; exit 2 ;;
esac
