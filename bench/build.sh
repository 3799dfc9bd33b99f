#!/usr/bin/env bash
# Builds target/release/keyport-bench: the release binary with the `bench` feature (the baseline
# endpoint and the seeding commands), which the production binary does not carry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --locked -p server --features bench --bin keyport
cp target/release/keyport target/release/keyport-bench
