#!/usr/bin/env bash
# Release builds of the three functions for Lambda (arm64, as deployed), and their sizes.
# Falls back to x86-64, and says so, when the aarch64 standard library cannot be installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PATH="$(scripts/tools.sh cargo-lambda):$PATH"

arch=--arm64
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  if ! timeout 300 rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "build-lambdas: the aarch64 standard library is not installed and could not be fetched;"
    echo "build-lambdas: building for x86-64 instead (deploy with Architectures: [x86_64] or build elsewhere)"
    arch=--x86-64
  fi
fi

cargo lambda build --release "$arch" --bin dashboard-bundle --bin clear-cache --bin warm-cache
out="${CARGO_TARGET_DIR:-target}/lambda"
for function in dashboard-bundle clear-cache warm-cache; do
  binary="$out/$function/bootstrap"
  [ -x "$binary" ] || { echo "build-lambdas: $binary is missing"; exit 1; }
  size=$(stat -c %s "$binary")
  printf "build-lambdas: %-17s %s  %s bytes (%s MB)\n" "$function" "${arch#--}" "$size" \
    "$(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }')"
done
