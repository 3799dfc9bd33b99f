#!/usr/bin/env bash
# The write-load benchmark (issue 14): 100,000 keys, all in use, usage persistence on with its
# default flush interval (5 s). Three rounds of
#   (a) the bare baseline handler, (b) verify with valid keys spread over all 100k, (d) /v1/auth,
# then the median of the three ratios b/a and d/a, the p99 ratio b/a, the RSS per cached key, and
# the flush profile (what each flush wrote and the time per phase) from the server's log.
# Then, to show what the rest of the gap is made of, three rounds on a server whose flush is
# deferred past the rounds (persistence off while they run) of
#   (A) the baseline, (e) verify with the same 100k keys, (h) verify with 1,000 of them
# (a key set whose lookups stay in the CPU's caches).
#
#   bench/flush.sh [seconds per scenario, default 20]
#   KEYPORT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyport_bench bench/flush.sh
#       (on PostgreSQL: that database is dropped and created afresh)
#   KEYPORT_BENCH_BIN=path/to/keyport-bench skips the build (to measure another build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${1:-20}
CONNECTIONS=64
# The flush profile is logged at debug level by the recorder.
export KEYPORT_LOG=${KEYPORT_LOG:-warn,domain::usage::recorder=debug}
. bench/lib.sh
fresh_database

echo "== $(nproc) cores, $DB; $DURATION s per scenario at $CONNECTIONS connections"
start "$WORK/empty"; sleep 1; EMPTY_RSS=$(rss_kb "$SERVER"); stop
fresh_database
echo "== seeding 100,000 keys"
"$BIN" bench seed --keys 100000 --limited-keys 0 --metered-keys 0 --out "$WORK/keys" --data-dir "$WORK/data" >/dev/null
# The same database with a key cache of 100 keys (the least it takes): SQLite's page cache fills as much as with all
# keys cached, so the difference is what the cached keys themselves take.
start "$WORK/data" --key-cache-capacity 100; sleep 2; ONE_RSS=$(rss_kb "$SERVER"); stop
start "$WORK/data"; sleep 2
FULL_RSS=$(rss_kb "$SERVER")
: >"$WORK/server.log"
for r in 1 2 3; do
  run "a$r) baseline (parse + same-size JSON)" verify.lua "$WORK/keys/valid.txt" /bench/baseline
  run "b$r) verify, valid keys (100k)" verify.lua "$WORK/keys/valid.txt"
  run "d$r) /v1/auth, valid keys" auth.lua "$WORK/keys/valid.txt"
done
END_RSS=$(rss_kb "$SERVER")
stop
cp "$WORK/server.log" "$WORK/flush.log"
head -1000 "$WORK/keys/valid.txt" >"$WORK/hot.txt"
start "$WORK/data" --usage-flush-seconds 300; sleep 2
for r in 1 2 3; do
  run "A$r) baseline" verify.lua "$WORK/keys/valid.txt" /bench/baseline
  run "e$r) verify, 100k keys, flush deferred" verify.lua "$WORK/keys/valid.txt"
  run "h$r) verify, 1,000 keys, flush deferred" verify.lua "$WORK/hot.txt"
done
stop
echo
awk -v db="$DB" -v a1="$RPS_a1" -v a2="$RPS_a2" -v a3="$RPS_a3" -v b1="$RPS_b1" -v b2="$RPS_b2" -v b3="$RPS_b3" \
    -v d1="$RPS_d1" -v d2="$RPS_d2" -v d3="$RPS_d3" \
    -v pa1="$P99_a1" -v pa2="$P99_a2" -v pa3="$P99_a3" -v pb1="$P99_b1" -v pb2="$P99_b2" -v pb3="$P99_b3" '
  function med(x, y, z) { return (x <= y) ? ((y <= z) ? y : ((x <= z) ? z : x)) : ((x <= z) ? x : ((y <= z) ? z : y)) }
  BEGIN {
    printf "ratios (%s): b/a = %.2f (median of %.2f %.2f %.2f)   d/a = %.2f (median of %.2f %.2f %.2f)\n", db,
      med(b1/a1, b2/a2, b3/a3), b1/a1, b2/a2, b3/a3, med(d1/a1, d2/a2, d3/a3), d1/a1, d2/a2, d3/a3
    printf "p99: verify %.2f ms vs baseline %.2f ms (medians): %.2fx   (targets: b/a >= 0.88, d/a >= 0.88, p99 <= 1.2x)\n",
      med(pb1, pb2, pb3), med(pa1, pa2, pa3), med(pb1/pa1, pb2/pa2, pb3/pa3)
  }'
awk -v a1="$RPS_A1" -v a2="$RPS_A2" -v a3="$RPS_A3" -v e1="$RPS_e1" -v e2="$RPS_e2" -v e3="$RPS_e3" \
    -v h1="$RPS_h1" -v h2="$RPS_h2" -v h3="$RPS_h3" \
    -v pa1="$P99_A1" -v pa2="$P99_A2" -v pa3="$P99_A3" -v pe1="$P99_e1" -v pe2="$P99_e2" -v pe3="$P99_e3" '
  function med(x, y, z) { return (x <= y) ? ((y <= z) ? y : ((x <= z) ? z : x)) : ((x <= z) ? x : ((y <= z) ? z : y)) }
  BEGIN {
    printf "flush deferred (no persistence during the rounds): e/A = %.2f (median of %.2f %.2f %.2f), p99 %.2fx;   1,000 keys: h/A = %.2f (median of %.2f %.2f %.2f)\n",
      med(e1/a1, e2/a2, e3/a3), e1/a1, e2/a2, e3/a3, med(pe1/pa1, pe2/pa2, pe3/pa3), med(h1/a1, h2/a2, h3/a3), h1/a1, h2/a2, h3/a3
  }'
memory_line "$EMPTY_RSS" "$ONE_RSS" "$FULL_RSS"
awk -v z="$END_RSS" 'BEGIN { printf "        %.1f MiB after the runs\n", z/1024 }'
echo "flush profile (the last flushes under load, then the one at shutdown):"
grep -E "usage (flushed|write)" "$WORK/flush.log" | sed -E "s/\x1b\[[0-9;]*m//g; s/^.*(usage (flushed|write))/  \1/" | tail -8
