#!/usr/bin/env bash
# Installs a binary crate at an exact version with its own lockfile. When that lockfile names a
# crate version the registry mirror does not have (seen: webpki-roots 1.0.11), retries from a
# copy of the source with that one dependency moved back to the previous patch release.
set -euo pipefail
crate="${1:?crate}"
version="${2:?version}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if cargo install "$crate" --version "=$version" --locked 2>"$log"; then exit 0; fi
cat "$log" >&2
echo "install of $crate $version failed; trying with pinned dependencies" >&2
work="$(mktemp -d)"
mkdir -p "$work/fetch/src"
printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
  "$crate" "$crate" "$version" >"$work/fetch/Cargo.toml"
: >"$work/fetch/src/lib.rs"
(cd "$work/fetch" && cargo fetch -q) || true
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate-$version" | head -n 1)
cp -r "$src" "$work/src"
cd "$work/src"
# Step every locked dependency the registry lacks back one patch release.
for attempt in 1 2 3 4 5; do
  if cargo fetch --locked -q 2>"$log"; then break; fi
  # e.g. failed to select a version for the requirement `webpki-roots = "^1.0.10"` (locked to 1.0.11)
  name=$(sed -nE 's/.*requirement `([A-Za-z0-9_-]+) = .*locked to ([0-9.]+)\).*/\1/p' "$log" | head -n 1)
  ver=$(sed -nE 's/.*requirement `([A-Za-z0-9_-]+) = .*locked to ([0-9.]+)\).*/\2/p' "$log" | head -n 1)
  [ -n "$name" ] && [ -n "$ver" ] || { cat "$log" >&2; exit 1; }
  patch=${ver##*.}; [ "$patch" -gt 0 ] || { cat "$log" >&2; exit 1; }
  echo "pinning $name $ver -> ${ver%.*}.$((patch - 1))" >&2
  cargo update -q -p "$name@$ver" --precise "${ver%.*}.$((patch - 1))"
done
cargo install --path . --locked
