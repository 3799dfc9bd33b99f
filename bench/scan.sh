#!/usr/bin/env bash
# How fast `keyport scan` reads a large tree, against GNU grep looking for the same prefix in the
# same run (grep only matches text; keyport also walks .gitignore rules, skips binaries and checks
# every candidate's checksum). Usage: bench/scan.sh [DIR] (default: the cargo registry sources).
# Needs target/release/keyport (./dev.sh build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${KEYPORT_BIN:-target/release/keyport}
DIR=${1:-$HOME/.cargo/registry/src}
[ -x "$BIN" ] || { echo "error: $BIN is missing: build it with ./dev.sh build" >&2; exit 1; }
files=$(find "$DIR" -type f | wc -l)
echo "tree: $DIR ($files files, $(du -sh "$DIR" | cut -f1))"
# Warm the page cache so both read from memory.
grep -rIc "kp_" "$DIR" >/dev/null 2>&1 || true
best() { # the fastest of three runs of "$@", in seconds
  local best=
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    best=$(python3 -c "a='$best'; b=$end-$start; print(min(float(a), b) if a else b)")
  done
  echo "$best"
}
k=$(best "$BIN" scan "$DIR")
g=$(best grep -rIc "kp_" "$DIR")
"$BIN" scan "$DIR" 2>&1 >/dev/null | tail -1
python3 - "$files" "$k" "$g" <<'PY'
import sys
files, k, g = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"keyport scan: {k:.2f} s, {files / k:,.0f} files/s")
print(f"grep -rIc kp_ (baseline): {g:.2f} s, {files / g:,.0f} files/s")
print(f"keyport scan / grep: {g / k:.2f}x the baseline's speed")
PY
