#!/usr/bin/env bash
# One round of hotline-health.service: every active hotline-actions@PORT, hotline-rasa@PORT and
# hotline-web@PORT unit gets its health check with a 2 s timeout; a unit that has answered since it
# started and then fails two rounds in a row (about 10 s) is restarted, and says so in the journal.
# A unit still starting (Rasa loads its model for up to a minute or two) is left alone until it answers.
set -uo pipefail
state=/run/hotline-health
mkdir -p "$state"
for unit in $(systemctl list-units --state=active --plain --no-legend 'hotline-actions@*' 'hotline-rasa@*' 'hotline-web@*' |
              awk '{print $1}'); do
    port="${unit#*@}" port="${port%.service}"
    case "$unit" in
        hotline-actions@*) url="http://127.0.0.1:$port/health" ;;
        hotline-rasa@*)    url="http://127.0.0.1:$port/webhooks/web/" ;;
        hotline-web@*)     url="http://127.0.0.1:$port/healthz" ;;
    esac
    # The start of this run of the unit: a restart begins its count afresh.
    since="$(systemctl show -p ExecMainStartTimestampMonotonic --value "$unit")"
    seen="$state/$unit.$since"
    if curl -s -o /dev/null -m 2 "$url"; then   # any HTTP answer: alive (a 503 about Redis is not cured by a restart)
        echo 0 > "$seen"
        continue
    fi
    [ -f "$seen" ] || continue                  # has not answered since it started: still starting
    failures=$(( $(cat "$seen") + 1 ))
    echo "$failures" > "$seen"
    if [ "$failures" -ge 2 ]; then
        echo "$unit: no answer from $url in $failures checks (hung); restarting it"
        systemctl restart --no-block "$unit"
        rm -f "$seen"
    fi
done
# Forget the runs of units that have restarted since.
find "$state" -type f -mmin +60 -delete
