#!/usr/bin/env bash
# Builds target/release/keyport-bench: the release binary with the `bench` feature (the baseline
# endpoint and the seeding commands), which the production binary does not carry. It is built in
# its own target directory (target/bench), so target/release/keyport stays the production binary
# with the embedded site.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_TARGET_DIR=target/bench cargo build --release --locked -p server --features bench --bin keyport
mkdir -p target/release
cp target/bench/release/keyport target/release/keyport-bench
