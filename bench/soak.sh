#!/usr/bin/env bash
# The soak test (issue 14): 100,000 keys, verify with valid keys at 64 connections for 10 minutes
# with usage persistence on. Prints the RSS every minute (it must stay flat), the requests and
# non-2xx answers, and checks that the usage in the database equals the verifications counted
# (exactly: the server's own counter) and the requests wrk saw answered (up to the requests in
# flight when wrk stopped).
#
#   bench/soak.sh [minutes, default 10]
#   KEYPORT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyport_bench bench/soak.sh
#       (on PostgreSQL: that database is dropped and created afresh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES=${1:-10}
DURATION=$((MINUTES * 60))
CONNECTIONS=64
export KEYPORT_LOG=${KEYPORT_LOG:-warn}
. bench/lib.sh
METRICS="127.0.0.1:$((PORT + 1))"
fresh_database
echo "== $(nproc) cores, $DB; soak of $MINUTES min at $CONNECTIONS connections"
"$BIN" bench seed --keys 100000 --limited-keys 0 --metered-keys 0 --out "$WORK/keys" --data-dir "$WORK/data" >/dev/null
start "$WORK/data" --metrics-addr "$METRICS"; sleep 2
printf 'RSS at start: %.1f MiB\n' "$(echo "$(rss_kb "$SERVER") / 1024" | bc -l)"
( for m in $(seq 1 "$MINUTES"); do sleep 60; printf '  RSS after %2d min: %.1f MiB\n' "$m" "$(echo "$(rss_kb "$SERVER") / 1024" | bc -l)"; done ) &
SAMPLER=$!
run "soak) verify, valid keys (100k)" verify.lua "$WORK/keys/valid.txt"
wait "$SAMPLER" 2>/dev/null || true
END_RSS=$(rss_kb "$SERVER")
COUNTED=$(curl -fs "http://$METRICS/metrics" | awk '/^keyport_verifications_total/ { n += $NF } END { printf "%d", n }')
stop
"$BIN" bench totals --data-dir "$WORK/data" >"$WORK/totals"
. "$WORK/totals"
printf 'RSS at end: %.1f MiB\n' "$(echo "$END_RSS / 1024" | bc -l)"
echo "requests answered (wrk): $N_soak   non-2xx: $NON2XX_soak   verifications counted (server): $COUNTED"
echo "usage in the database: $usage   (journal rows left: $journal_rows)"
ok=1
[ "$NON2XX_soak" = 0 ] || { echo "FAIL: non-2xx answers"; ok=0; }
[ "$usage" = "$COUNTED" ] || { echo "FAIL: the database holds $usage verifications, the server counted $COUNTED"; ok=0; }
[ "$usage" -ge "$N_soak" ] && [ "$usage" -le $((N_soak + CONNECTIONS)) ] || { echo "FAIL: usage $usage vs $N_soak answered"; ok=0; }
[ "$journal_rows" = 0 ] || { echo "FAIL: journal rows left after a graceful stop"; ok=0; }
[ "$ok" = 1 ] && echo "soak: OK (usage exact, no errors)" || exit 1
