#!/usr/bin/env bash
# The usage analytics benchmark (issue 6): seeds 10 million verifications over 30 days for one
# key and lighter traffic for 1,000 more into a fresh SQLite file, compacts them as the
# background job does, and times the 30-day key chart and the admin dashboard queries.
#
#   bench/usage.sh            (on a throwaway SQLite file)
#   KEYPORT_DATABASE_URL=postgres://... bench/usage.sh   (on PostgreSQL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=target/release/keyport-bench
bench/build.sh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "== $(nproc) cores"
KEYPORT_LOG=${KEYPORT_LOG:-warn} "$BIN" bench usage --data-dir "$WORK"
