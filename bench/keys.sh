#!/usr/bin/env bash
# Millions of keys (issue 13): seeds KEYS keys (default 1,000,000), then starts the release binary
#   (1) with every key in memory (--key-cache-capacity = KEYS) and
#   (2) with a bounded cache of CAPACITY keys (default 100,000),
# printing for each the start-up time (until /readyz answers) and the RSS after start; then (2)
# verifies every one of the KEYS keys twice (wrk, bench/each.lua, in eight rounds) and prints how
# many were VALID and the RSS after each round, which must stay bounded by the capacity, not grow
# with the number of keys used.
#
#   bench/keys.sh [KEYS] [CAPACITY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KEYS=${1:-1000000}
CAPACITY=${2:-100000}
BIN=target/release/keyport-bench
command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
bench/build.sh
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 12000))  # below the ephemeral ports (32768-60999): no client socket holds it
URL="http://127.0.0.1:$PORT"
export KEYPORT_LOG=${KEYPORT_LOG:-warn} KEYPORT_SHUTDOWN_GRACE_SECONDS=0

rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
start() { # capacity
  local t0; t0=$(date +%s.%N)
  "$BIN" serve --addr "127.0.0.1:$PORT" --data-dir "$WORK/data" --key-cache-capacity "$1" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 6000); do curl -fs "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "$URL/readyz" >/dev/null || { echo "keyport did not start:"; cat "$WORK/server.log"; exit 1; }
  STARTED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# wrk runs for its whole duration even when its threads stopped: once each.lua has sent every
# key and both threads ended, it is interrupted (it then prints its summary).
each() { # first last
  wrk -t2 -c64 -d1h -s bench/each.lua "$URL" -- "$WORK/keys/valid.txt" 2 "$1" "$2" >"$WORK/each.out" 2>&1 &
  local wrk=$! threads
  for _ in $(seq 1 100); do [ "$(ls "/proc/$wrk/task" 2>/dev/null | wc -l)" -gt 1 ] && break; sleep 0.1; done
  while threads=$(ls "/proc/$wrk/task" 2>/dev/null | wc -l) && [ "$threads" -gt 1 ]; do sleep 0.5; done
  kill -INT "$wrk" 2>/dev/null || true
  wait "$wrk" || true
}

echo "== $(nproc) cores; seeding $KEYS keys"
t0=$SECONDS
"$BIN" bench seed --keys "$KEYS" --limited-keys 0 --out "$WORK/keys" --data-dir "$WORK/data" >/dev/null
echo "seeded in $((SECONDS - t0)) s"

start "$KEYS"
printf '%-34s start-up %6s s   RSS %6s MiB\n' "(1) every key in memory" "$STARTED" "$(rss_mib $SERVER)"
kill -TERM $SERVER; wait $SERVER 2>/dev/null || true

start "$CAPACITY"
printf '%-34s start-up %6s s   RSS %6s MiB\n' "(2) cache of $CAPACITY keys" "$STARTED" "$(rss_mib $SERVER)"
# Twice through all the keys, in rounds of a quarter of them, printing the RSS after each round:
# once the cache is full, the RSS must stay flat however many more keys are used (in the second
# pass every key is cold again: the cache holds a tenth of them).
t0=$(date +%s.%N)
VALID=0 INVALID=0 QUARTER=$(((KEYS + 3) / 4))
for round in 1 2 3 4 5 6 7 8; do
  first=$((((round - 1) % 4) * QUARTER + 1)) last=$((((round - 1) % 4 + 1) * QUARTER))
  each "$first" "$last"
  read -r v i < <(awk '/^each:/ { print $2, $4 }' "$WORK/each.out")
  VALID=$((VALID + v)) INVALID=$((INVALID + i))
  printf '%-34s RSS %6s MiB after %s verifications\n' "(2) cache of $CAPACITY keys" "$(rss_mib $SERVER)" "$(( (round - 1) / 4 * KEYS + (last < KEYS ? last : KEYS) ))"
done
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
echo "(2) verified all $KEYS keys twice in $took s: $VALID valid, $INVALID not valid (of $((2 * KEYS)))"
kill -TERM $SERVER; wait $SERVER 2>/dev/null || true
