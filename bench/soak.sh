#!/usr/bin/env bash
# The soak test (issue 14): 100,000 keys, verify with valid keys at 64 connections for 10 minutes
# with usage persistence on. Samples the RSS every 10 s and prints each minute's mean and range;
# checks that it levels off (the mean of the last third of the minutes at most 5% over the mean
# of the middle third: in the first minutes the usage recorder's maps fill, and SQLite's page
# caches fill up to --sqlite-cache-mib as the usage tables grow); prints the requests and non-2xx
# answers, and checks that the usage in the database equals the verifications counted (exactly:
# the server's own counter) and the requests wrk saw answered (up to the requests in flight when
# wrk stopped).
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
( for m in $(seq 1 "$MINUTES"); do
    for _ in 1 2 3 4 5 6; do sleep 10; echo "$m $(rss_kb "$SERVER")" >>"$WORK/rss"; done
    awk -v m="$m" '$1 == m { s += $2; n++; if (!lo || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
      END { printf "  RSS in minute %2d: %.1f MiB (%.1f-%.1f)\n", m, s / n / 1024, lo / 1024, hi / 1024 }' "$WORK/rss"
  done ) &
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
if [ "$MINUTES" -ge 6 ]; then
  third=$((MINUTES / 3))
  read -r MID LAST < <(awk -v a="$third" -v n="$MINUTES" '
    $1 > a && $1 <= 2 * a { w += $2; i++ } $1 > n - a { l += $2; j++ } END { printf "%.0f %.0f\n", w / i, l / j }' "$WORK/rss")
  awk -v w="$MID" -v l="$LAST" -v a="$third" -v n="$MINUTES" 'BEGIN {
    printf "RSS levels off: %.1f MiB (minutes %d-%d) -> %.1f MiB (minutes %d-%d): %+.1f%% (at most +5%%)\n",
      w/1024, a+1, 2*a, l/1024, n-a+1, n, (l-w)*100/w }'
  [ $((LAST * 100)) -le $((MID * 105)) ] || { echo "FAIL: the RSS kept growing"; ok=0; }
fi
[ "$NON2XX_soak" = 0 ] || { echo "FAIL: non-2xx answers"; ok=0; }
[ "$usage" = "$COUNTED" ] || { echo "FAIL: the database holds $usage verifications, the server counted $COUNTED"; ok=0; }
[ "$usage" -ge "$N_soak" ] && [ "$usage" -le $((N_soak + CONNECTIONS)) ] || { echo "FAIL: usage $usage vs $N_soak answered"; ok=0; }
[ "$journal_rows" = 0 ] || { echo "FAIL: journal rows left after a graceful stop"; ok=0; }
[ "$ok" = 1 ] && echo "soak: OK (usage exact, no errors)" || exit 1
