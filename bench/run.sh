#!/usr/bin/env bash
# The verification benchmark (issue 5): seeds 100,000 keys, starts the release binary, and drives
# it with wrk (Debian) at 64 connections, in one run, against
#   (a) a bare handler in the same binary parsing the same JSON and answering the same size,
#   (b) verify with valid keys spread over all 100k,  (c) verify with unknown checksum-valid keys,
#   (d) /v1/auth with valid keys,                      (e) verify where every key is rate limited.
#   (f) verify with keys that have a rate limit (never reached), limits kept in memory (local);
# then, with Redis (KEYPORT_BENCH_REDIS_URL, default redis://127.0.0.1:6379, when it answers),
# restarted in strict mode (limits in Redis, one round trip per verification of a limited key):
#   (g) the baseline again, (h) the same keys as (f) in strict mode, three pairs (median ratio);
# and restarted with a key cache of 20,000 (fewer than the 100,000 keys):
#   (i) verify where 90% of requests use 10% of the keys (hot) and the rest any other (cold).
# Prints requests/s, p50, p99, the ratios b/a, c/a, d/a, f/a, h/g and i/a, and the RSS with 100k
# keys vs none.
#
#   bench/run.sh [seconds per scenario, default 10]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${1:-10}
CONNECTIONS=64
BIN=target/release/keyport-bench
bench/build.sh
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$WORK/server.log" "$KEEP_LOG"; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 12000))  # below the ephemeral ports (32768-60999): no client socket holds it
URL="http://127.0.0.1:$PORT"
export KEYPORT_LOG=${KEYPORT_LOG:-warn}
. bench/lib.sh

echo "== $(nproc) cores; $DURATION s per scenario at $CONNECTIONS connections"
# RSS with no keys.
start "$WORK/empty"; sleep 1; EMPTY_RSS=$(rss_kb $SERVER); stop

echo "== seeding 100,000 keys"
"$BIN" bench seed --keys 100000 --limited-keys 1000 --metered-keys 10000 --out "$WORK/keys" --data-dir "$WORK/data" >/dev/null
start "$WORK/data" --key-cache-capacity 100; sleep 2; ONE_RSS=$(rss_kb "$SERVER"); stop
start "$WORK/data"; sleep 2
FULL_RSS=$(rss_kb $SERVER)
# Use every rate-limited key once, so (e) measures only rejections.
while read -r k; do curl -s -o /dev/null -H "Authorization: Bearer $k" "$URL/v1/auth"; done < "$WORK/keys/limited.txt"

echo
run "a) baseline (parse + same-size JSON)" verify.lua "$WORK/keys/valid.txt" /bench/baseline
run "b) verify, valid keys (100k)" verify.lua "$WORK/keys/valid.txt"
run "c) verify, unknown keys" verify.lua "$WORK/keys/unknown.txt"
run "d) /v1/auth, valid keys" auth.lua "$WORK/keys/valid.txt"
run "e) verify, every key rate limited" verify.lua "$WORK/keys/limited.txt"
run "f) verify, rate-limited keys, local mode" verify.lua "$WORK/keys/metered.txt"
echo
awk -v a="$RPS_a" -v b="$RPS_b" -v c="$RPS_c" -v d="$RPS_d" -v f="$RPS_f" 'BEGIN {
  printf "ratios: b/a = %.2f   c/a = %.2f   d/a = %.2f   f/a = %.2f   (targets: b/a >= 0.8, c/a >= 0.8)\n", b/a, c/a, d/a, f/a }'
REDIS=${KEYPORT_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
REDIS_HOSTPORT=${REDIS#redis://}; REDIS_HOSTPORT=${REDIS_HOSTPORT%%/*}
if command -v redis-cli >/dev/null && redis-cli -h "${REDIS_HOSTPORT%:*}" -p "${REDIS_HOSTPORT##*:}" ping >/dev/null 2>&1; then
  stop
  start "$WORK/data" --redis-url "$REDIS" --ratelimit-mode strict; sleep 1
  echo
  echo "== restarted in strict mode, limits in Redis at $REDIS_HOSTPORT"
  # Three pairs, each baseline right before strict, so a noisy neighbour hits both of a pair:
  # the median of the three ratios is printed.
  for n in 1 2 3; do
    run "g$n) baseline again" verify.lua "$WORK/keys/valid.txt" /bench/baseline
    run "h$n) verify, rate-limited keys, strict mode" verify.lua "$WORK/keys/metered.txt"
  done
  echo
  awk -v g1="$RPS_g1" -v h1="$RPS_h1" -v g2="$RPS_g2" -v h2="$RPS_h2" -v g3="$RPS_g3" -v h3="$RPS_h3" 'BEGIN {
    r[1] = h1 / g1; r[2] = h2 / g2; r[3] = h3 / g3
    for (i = 1; i <= 3; i++) for (j = i + 1; j <= 3; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
    printf "ratio: h/g = %.2f (median of %.2f %.2f %.2f)   (target: strict >= 0.6x the baseline)\n", r[2], r[1], r[2], r[3] }'
else
  echo "(no Redis answers at $REDIS_HOSTPORT: strict mode not measured)"
fi
stop
start "$WORK/data" --key-cache-capacity 20000; sleep 1
echo
echo "== restarted with a key cache of 20,000 for 100,000 keys"
run "i) verify, 90% hot 10% cold keys" hotcold.lua "$WORK/keys/valid.txt"
awk -v a="$RPS_a" -v i="$RPS_i" 'BEGIN { printf "ratio: i/a = %.2f\n", i/a }'
memory_line "$EMPTY_RSS" "$ONE_RSS" "$FULL_RSS"
# The counted usage reaches the database at shutdown.
stop
