#!/usr/bin/env bash
# The crash test (issue 14): 100,000 keys under load; keys are created meanwhile (each audited);
# the server is killed with SIGKILL (wherever the flush cycle is), restarted on the same database, and
# once the journal rows of the dead process are folded (they are orphans after 2 minutes) the
# usage in the database is compared with the requests answered before the kill. Passes when
# what was lost is at most one flush interval of traffic (plus the second a flush takes to
# commit), nothing was counted twice, and no key,
# account or audit event is missing.
#
#   bench/crash.sh
#   KEYPORT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyport_bench bench/crash.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONNECTIONS=64
FLUSH=5
export KEYPORT_LOG=${KEYPORT_LOG:-warn,domain::usage::recorder=info} KEYPORT_USAGE_FLUSH_SECONDS=$FLUSH
. bench/lib.sh
fresh_database
echo "== $(nproc) cores, $DB; kill -9 under load, flush every $FLUSH s"
"$BIN" bench seed --keys 100000 --limited-keys 0 --metered-keys 0 --out "$WORK/keys" --data-dir "$WORK/data" >/dev/null
start "$WORK/data"; sleep 2
DURATION=40
T0=$(date +%s.%N)
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/verify.lua "$URL" -- "$WORK/keys/valid.txt" >"$WORK/wrk.out" 2>&1 &
WRK=$!
sleep 8
# Keys made during the load, through the CLI (each audited).
for i in $(seq 1 10); do
  "$BIN" keys create --owner keyport-bench@example.com --name "made under load $i" --api bench --scopes bench:read --data-dir "$WORK/data" >/dev/null
done
"$BIN" bench totals --data-dir "$WORK/data" >"$WORK/before"
sleep 9.5
kill -9 "$SERVER"; T1=$(date +%s.%N); wait "$SERVER" 2>/dev/null || true
wait "$WRK" || true
ANSWERED=$(awk '/requests in/ { print $1 }' "$WORK/wrk.out")
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
RATE=$(awk -v n="$ANSWERED" -v s="$SECS" 'BEGIN { printf "%d", n / s }')
echo "killed after $SECS s of load: $ANSWERED requests answered (~$RATE/s)"
echo "before the kill: $(tr '\n' ' ' <"$WORK/before")"
start "$WORK/data"
for _ in $(seq 1 60); do
  "$BIN" bench totals --data-dir "$WORK/data" >"$WORK/after"
  grep -qx 'journal_rows=0' "$WORK/after" && break
  sleep 5
done
stop
"$BIN" bench totals --data-dir "$WORK/data" >"$WORK/after"
echo "after the restart:  $(tr '\n' ' ' <"$WORK/after")"
grep "folded" "$WORK/server.log" | sed -E 's/^.*(usage journal)/  \1/' || true
before() { awk -F= -v k="$1" '$1 == k { print $2 }' "$WORK/before"; }
after() { awk -F= -v k="$1" '$1 == k { print $2 }' "$WORK/after"; }
LOST=$((ANSWERED - $(after usage)))
# A flush snapshots the counts when it starts and commits a moment later: a kill in between
# loses one interval plus that moment (the bound allows one second for it).
echo "usage lost: $LOST verifications = $(awk -v l="$LOST" -v r="$RATE" 'BEGIN { printf "%.2f", l / r }') s of traffic (the flush interval is $FLUSH s: ~$((RATE * FLUSH)))"
ok=1
[ "$(after journal_rows)" = 0 ] || { echo "FAIL: journal rows were not folded"; ok=0; }
[ "$LOST" -ge -"$CONNECTIONS" ] || { echo "FAIL: counted twice"; ok=0; }
[ "$LOST" -le $((RATE * (FLUSH + 1))) ] || { echo "FAIL: more than one flush interval (and the second a flush takes) lost"; ok=0; }
for t in keys users; do
  [ "$(after $t)" = "$(before $t)" ] || { echo "FAIL: $t $(before $t) before, $(after $t) after"; ok=0; }
done
[ "$(after audit)" -ge "$(before audit)" ] || { echo "FAIL: audit events lost"; ok=0; }
[ "$ok" = 1 ] && echo "crash: OK" || exit 1
