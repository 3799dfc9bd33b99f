# Shared by bench/flush.sh, soak.sh and crash.sh (sourced, after they set KEYPORT_LOG and
# CONNECTIONS/DURATION): the binary (KEYPORT_BENCH_BIN, or built by bench/build.sh), a work
# directory removed at exit (KEEP_LOG=path keeps the server's log), a free-ish port, and helpers
# to start the server, drive it with wrk and reset the database. bench/run.sh sets its own
# BIN, WORK, PORT and URL first and keeps them.
BIN=${BIN:-${KEYPORT_BENCH_BIN:-target/release/keyport-bench}}
if [ -z "${WORK:-}" ]; then
  [ -n "${KEYPORT_BENCH_BIN:-}" ] || bench/build.sh
  WORK=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$WORK/server.log" "$KEEP_LOG"; rm -rf "$WORK"' EXIT
  PORT=$((20000 + RANDOM % 12000))  # below the ephemeral ports (32768-60999): no client socket holds it
  URL="http://127.0.0.1:$PORT"
fi
command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
export KEYPORT_BENCH_BASELINE=1 KEYPORT_SHUTDOWN_GRACE_SECONDS=0

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

start() { # data-dir [extra serve args...]
  local dir=$1; shift
  "$BIN" serve "$@" --addr "127.0.0.1:$PORT" --data-dir "$dir" >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -fs "$URL/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "keyport did not start:"; cat "$WORK/server.log"; exit 1
}

stop() { kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

# wrk's latency ("850.00us", "5.23ms", "1.02s") in milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'; }

run() { # name script args... : sets RPS_<name>, P99_<name> (ms), N_<name> (requests)
  local name=$1 script=$2; shift 2
  local tag=${name%%)*}
  local out="$WORK/$tag.out"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "bench/$script" "$URL" -- "$@" >"$out" 2>&1
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ { print $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out")
  p99=$(awk '$1 == "99%" { print $2 }' "$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$out")
  printf '%-44s %12s req/s   p50 %8s   p99 %8s   %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:+non-2xx: $non2xx}"
  eval "RPS_$tag=$rps; P99_$tag=$(ms "$p99"); N_$tag=$(awk '/requests in/ { print $1 }' "$out"); NON2XX_$tag=${non2xx:-0}"
}

# memory_line EMPTY FEW FULL (RSS in KiB: no keys; 100,000 keys in the database and a key cache
# of 100, the least it takes; all 100,000 cached). Per cached key is (FULL - FEW) / 99,900: both
# have read the same database (SQLite's page cache, bounded by --sqlite-cache-mib, fills alike),
# so the difference is what holding the keys takes. (FULL - EMPTY) / 100,000 also counts that
# page cache.
memory_line() {
  awk -v e="$1" -v o="$2" -v f="$3" 'BEGIN {
    printf "memory: RSS %.1f MiB empty, %.1f MiB with 100,000 keys and a cache of 100, %.1f MiB with all cached\n", e/1024, o/1024, f/1024
    printf "        %.0f bytes per cached key (all cached - cache of 100; target <= 1024), %.0f per key over the empty process\n", (f-o)*1024/99900, (f-e)*1024/100000 }'
}

# The median of three numbers.
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# A fresh database: on PostgreSQL (KEYPORT_DATABASE_URL set) that database is dropped and
# created again; otherwise each run uses its own SQLite file. Sets DB to the engine's name.
fresh_database() {
  DB=sqlite
  [ -n "${KEYPORT_DATABASE_URL:-}" ] || return 0
  DB=postgresql
  local name=${KEYPORT_DATABASE_URL##*/}
  PGOPTIONS=--client-min-messages=warning psql -q "${KEYPORT_DATABASE_URL%/*}/postgres" \
    -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
}
