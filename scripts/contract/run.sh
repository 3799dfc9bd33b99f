#!/usr/bin/env bash
# Contract test: Schemathesis (PyPI) against /v1/openapi.json of a running release binary, with
# an admin's key, checking that every answer is documented, typed and never a server error, and
# that invalid input is refused. Usage: scripts/contract/run.sh [extra schemathesis options]
# Needs target/release/keyport (./dev.sh build) and Schemathesis in target/tools-venv (./dev.sh
# test installs it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BIN=${KEYPORT_BIN:-$ROOT/target/release/keyport}
VENV=$ROOT/target/tools-venv
[ -x "$BIN" ] || { echo "error: $BIN is missing: build it with ./dev.sh build" >&2; exit 1; }
[ -x "$VENV/bin/schemathesis" ] || { echo "error: Schemathesis is missing: ./dev.sh test installs it into $VENV" >&2; exit 1; }

DATA=$(mktemp -d "${TMPDIR:-/tmp}/keyport-contract-XXXXXX")
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT
SECONDS_BUDGET=${KEYPORT_CONTRACT_SECONDS:-150}
ADMIN=contract-admin@example.com
kp() { "$BIN" "$@" --data-dir "$DATA"; }
# An admin on a plan without limits (the fuzzer is not here to test rate limiting), and one
# management key per second of the run, minted before the server starts so it knows them all.
ADMIN_ID=$(KEYPORT_ADMIN_PASSWORD='contract admin passphrase' kp admin create --email "$ADMIN" | grep -o 'usr_[A-Za-z0-9]*' | head -n 1)
PLAN_ID=$(kp plans create --name Contract)
kp plans assign --email "$ADMIN" --plan Contract >/dev/null
# The fuzzer may do anything to other users and plans, but not put its own account on a
# throttled plan or throttle its plan (the hooks point such calls at an id no one has).
export KEYPORT_CONTRACT_PROTECTED="$ADMIN_ID,$PLAN_ID"
for _ in $(seq $((SECONDS_BUDGET + 30))); do
  kp keys create --owner "$ADMIN" --api keyport --scopes admin --name contract --expires-in-days 1
done >"$DATA/keys.txt"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" serve --addr "127.0.0.1:$PORT" --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

export KEYPORT_CONTRACT_KEYS="$DATA/keys.txt"
export PYTHONPATH="$ROOT/scripts/contract" SCHEMATHESIS_HOOKS=keyport_hooks
status=0
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
  --max-time "$SECONDS_BUDGET" \
  --workers 2 \
  --request-timeout 10 \
  --suppress-health-check too_slow,filter_too_much \
  "$@" || status=$?
# Why calls were refused as unauthenticated (the supply's keys revoked by the fuzzer, mostly).
echo "--- management API callers refused, by reason ---"
sed 's/\x1b\[[0-9;]*m//g' "$DATA/server.log" | grep -o 'status=40[13] reason=.* method' \
  | sed 's/ method$//' | sort | uniq -c | sort -rn | head -n 8 || true
if [ "$status" != 0 ]; then
  echo "--- last lines of the server log ---"
  tail -n 40 "$DATA/server.log"
fi
exit "$status"
