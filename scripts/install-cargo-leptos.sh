#!/usr/bin/env bash
# Installs cargo-leptos with `no_downloads` from crates.io sources only.
# The published lockfile of 0.3.11 pins cargo-util-schemas 0.14.2, which needs a newer rustc than
# this toolchain; we build from the crate source with that one dependency pinned back.
set -euo pipefail
# cargo-leptos only orchestrates builds (its runtime is seconds against minutes of compiling
# Keyport), so it is built with a cheap release profile: opt-level 1 and parallel codegen cut
# its compile time on 2 cores by more than half.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_DEBUG=false
version="${1:?cargo-leptos version}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if cargo install cargo-leptos --version "=$version" --locked --features no_downloads 2>"$work/plain.log"; then
  exit 0
fi
echo "plain install of cargo-leptos failed (see below); building from source with pinned deps" >&2
tail -n 5 "$work/plain.log" >&2 || true
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-cargo-leptos"
version = "0.0.0"
edition = "2021"
[dependencies]
cargo-leptos = "=$version"
TOML
: >"$work/fetch/src/lib.rs"
(cd "$work/fetch" && cargo fetch -q)
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cargo-leptos-"$version" | head -n 1)
cp -r "$src" "$work/cargo-leptos"
cd "$work/cargo-leptos"
cargo update -q -p cargo-util-schemas --precise 0.14.1 || true
cargo install --path . --locked --features no_downloads
