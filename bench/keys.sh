#!/usr/bin/env bash
# Millions of keys (issue 13): seeds KEYS keys (default 1,000,000), then starts the release binary
#   (1) with every key in memory (--key-cache-capacity = KEYS) and
#   (2) with a bounded cache of CAPACITY keys (default 100,000),
# printing for each the start-up time (until /readyz answers) and the RSS after start; then (2)
# verifies every one of the KEYS keys once (wrk, bench/each.lua) and prints how many were VALID
# and the RSS at the end, which must stay bounded by the capacity, not the number of keys.
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
PORT=$((20000 + RANDOM % 20000))
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

echo "== $(nproc) cores; seeding $KEYS keys"
t0=$SECONDS
"$BIN" bench seed --keys "$KEYS" --limited-keys 0 --out "$WORK/keys" --data-dir "$WORK/data" >/dev/null
echo "seeded in $((SECONDS - t0)) s"

start "$KEYS"
printf '%-34s start-up %6s s   RSS %6s MiB\n' "(1) every key in memory" "$STARTED" "$(rss_mib $SERVER)"
kill -TERM $SERVER; wait $SERVER 2>/dev/null || true

start "$CAPACITY"
printf '%-34s start-up %6s s   RSS %6s MiB\n' "(2) cache of $CAPACITY keys" "$STARTED" "$(rss_mib $SERVER)"
t0=$(date +%s.%N)
wrk -t2 -c64 -d1h -s bench/each.lua "$URL" -- "$WORK/keys/valid.txt" 2 >"$WORK/each.out" 2>&1
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
echo "(2) verified all $KEYS keys once in $took s: $(grep '^each:' "$WORK/each.out" | sed 's/^each: //')"
printf '%-34s RSS %6s MiB after every key was used\n' "(2) cache of $CAPACITY keys" "$(rss_mib $SERVER)"
kill -TERM $SERVER; wait $SERVER 2>/dev/null || true
