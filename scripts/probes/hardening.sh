#!/usr/bin/env bash
# Probes of the hardening rules (issue 12) against any keyport binary, old or new, from the
# outside: starts it on a free port with a throwaway data directory, and prints one line per
# probe (forward auth without an API, verify's cost range, privilege minting, the CSP header,
# list query errors, throttling without enumeration, concurrent guesses, IPv6 /64 grouping,
# session ids at rest, verification callers, where the server key lives), then runs
# hardening_portal.py for the rules that need signed-in browsers.
# Usage: scripts/probes/hardening.sh target/release/keyport
# Not part of ./dev.sh test (the Rust tests assert each rule); it shows before/after figures.
set -uo pipefail
BIN=$1
DATA=$(mktemp -d); PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
U=http://127.0.0.1:$PORT
KEYPORT_ADMIN_PASSWORD='probe admin passphrase' $BIN admin create --email root@example.com --data-dir $DATA >/dev/null 2>&1
$BIN serve --addr 127.0.0.1:$PORT --data-dir $DATA > $DATA/log 2>&1 & S=$!
trap 'kill $S; rm -rf $DATA' EXIT
for _ in $(seq 100); do curl -fs $U/readyz >/dev/null && break; sleep 0.1; done
jar=$DATA/jar
signup() { curl -s -o /dev/null -c $jar -b $jar -H "Origin: $U" -d "email=$1&password=glacier+lantern+pepper" $U/signup; }
signup dev@example.com
signup target@example.com
mint() { $BIN keys create --owner "$1" --api keyport --scopes "$2" --name probe --expires-in-days 1 --data-dir $DATA 2>/dev/null; }
ADMIN=$(mint root@example.com admin)
DEV=$(mint dev@example.com keys:read,keys:write)
sleep 6  # keys minted while serving reach the server by its periodic refresh
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
echo "P1 forward auth, valid key, no X-Keyport-Api: HTTP $(code -H "Authorization: Bearer $DEV" $U/v1/auth)"
echo "P2 verify with cost 2147483648: HTTP $(code -H 'Content-Type: application/json' -d "{\"key\":\"$DEV\",\"cost\":2147483648}" $U/v1/keys/verify)"
echo "P3 keys:read+write key creates a keyport key with audit:read: HTTP $(code -H "Authorization: Bearer $DEV" -H 'Content-Type: application/json' -d '{"name":"minted","api":"keyport","scopes":["audit:read"],"expires_at":"2027-01-01T00:00:00Z"}' $U/v1/keys)"
echo "P4 Content-Security-Policy on /: $(curl -sI $U/ | grep -i '^content-security-policy' | cut -c1-60 || true)"
echo "P7 GET /v1/keys?limit=-1: $(curl -s -o /dev/null -w '%{http_code} %{content_type}' -H "Authorization: Bearer $DEV" "$U/v1/keys?limit=-1")"
login() { # email ip -> the message shown after the redirect
  local j=$DATA/j$RANDOM
  curl -s -o /dev/null -c $j -b $j -H "Origin: $U" -H "X-Forwarded-For: $2" -d "email=$1&password=wrong+password+here" $U/login
  curl -s -b $j $U/login | grep -o 'Too many attempts[^<]*\|Incorrect email or password' | head -1; }
for i in 1 2 3 4 5; do login dev@example.com 192.0.2.$i >/dev/null; login nobody@example.com 192.0.2.$((i+20)) >/dev/null; done
echo "P5 6th wrong password, real account: $(login dev@example.com 192.0.2.9) | unknown address: $(login nobody@example.com 192.0.2.29)"
for i in $(seq 50); do (curl -s -o /dev/null -H "Origin: $U" -H "X-Forwarded-For: 198.18.0.$i" -d "email=target@example.com&password=guess+$i+wrong" $U/login &) ; done; sleep 8
n=$(curl -s -H "Authorization: Bearer $ADMIN" "$U/v1/audit?action=sign_in.failure&limit=200" | python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["events"] if str(e.get("ip","")).startswith("198.18.")))')
echo "P6 50 concurrent wrong passwords for one account: $n evaluated"
for i in $(seq 21); do login "g$i@example.com" "2001:db8:1:2::$i" >/dev/null; done
echo "P9 after 21 failures across one IPv6 /64, another address of it: $(login g99@example.com 2001:db8:1:2::99)"
python3 - "$DATA/keyport.db" "$jar" <<'PY'
import sqlite3, sys, hashlib
ids = [r[0] for r in sqlite3.connect(sys.argv[1]).execute("select id from sessions")]
cookie = [l.split("\t")[-1].strip() for l in open(sys.argv[2]) if "keyport_session" in l]
c = cookie[-1] if cookie else ""
print("P8 sessions table holds the cookie value itself:", c in ids, "| its SHA-256:", hashlib.sha256(c.encode()).hexdigest() in ids)
PY

# A second server with verification callers required and the server key outside the data
# directory (both set through the environment, which an older binary ignores).
DATA2=$(mktemp -d); KEYS=$(mktemp -d); PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KEYPORT_ADMIN_PASSWORD='probe admin passphrase' KEYPORT_SECRET_KEY_FILE=$KEYS/server.key $BIN admin create --email root@example.com --data-dir $DATA2 >/dev/null 2>&1
KEYPORT_SECRET_KEY_FILE=$KEYS/server.key KEYPORT_VERIFY_REQUIRES_TOKEN=true $BIN serve --addr 127.0.0.1:$PORT2 --data-dir $DATA2 > $DATA2/log 2>&1 & S2=$!
trap 'kill $S $S2; rm -rf $DATA $DATA2 $KEYS' EXIT
for _ in $(seq 100); do curl -fs http://127.0.0.1:$PORT2/readyz >/dev/null && break; sleep 0.1; done
KEY2=$(KEYPORT_SECRET_KEY_FILE=$KEYS/server.key $BIN keys create --owner root@example.com --api keyport --scopes keys:read --name probe --expires-in-days 1 --data-dir $DATA2 2>/dev/null)
sleep 6
echo "P18 (16) KEYPORT_VERIFY_REQUIRES_TOKEN=true, verify called without a caller token: HTTP $(code -H 'Content-Type: application/json' -d "{\"key\":\"$KEY2\"}" http://127.0.0.1:$PORT2/v1/keys/verify)"
echo "P19 (17) KEYPORT_SECRET_KEY_FILE elsewhere: key files in the data directory: $(ls $DATA2 | grep -c 'secret' || true); at the configured path: $(ls $KEYS | wc -l)"
python3 "$(dirname "$0")/hardening_portal.py" "$BIN"
