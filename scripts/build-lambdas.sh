#!/usr/bin/env bash
# Release builds of the three functions for Lambda (arm64, as deployed), and their sizes.
# Falls back to x86-64, and says so, when the aarch64 standard library cannot be installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PATH="$(scripts/tools.sh cargo-lambda):$PATH"

# arm64, or x86_64 where the aarch64 standard library cannot be installed (scripts/lambda-arch.sh says so).
if [ "$(scripts/lambda-arch.sh)" = arm64 ]; then arch=--arm64; else arch=--x86-64; fi

# clear-cache on its own: in one build with the others it would get `shared`'s postgres feature
# (features unify within a build) and link sqlx, which it never calls. `sam build` builds each apart.
cargo lambda build --release "$arch" --bin dashboard-bundle --bin warm-cache
cargo lambda build --release "$arch" --bin clear-cache
out="${CARGO_TARGET_DIR:-target}/lambda"
for function in dashboard-bundle clear-cache warm-cache; do
  binary="$out/$function/bootstrap"
  [ -x "$binary" ] || { echo "build-lambdas: $binary is missing"; exit 1; }
  size=$(stat -c %s "$binary")
  printf "build-lambdas: %-17s %s  %s bytes (%s MB)\n" "$function" "${arch#--}" "$size" \
    "$(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }')"
done
