#!/usr/bin/env bash
# Prints the Lambda architecture this machine can build for: arm64 (as deployed) when the aarch64
# standard library is installed or can be installed now, else x86_64 (said so on stderr).
#
# Run it once before any build that starts several cargo-lambda processes (sam build, parallel or not):
# each of them would otherwise try to install the target itself, and concurrent installs fail
# ("can't find crate for std").
set -euo pipefail
target=aarch64-unknown-linux-gnu
installed() { rustup target list --installed 2>/dev/null | grep -qx "$target"; }
if installed; then echo arm64; exit 0; fi
if command -v rustup >/dev/null && timeout 300 rustup target add "$target" >/dev/null 2>&1 && installed; then
  echo "[lambda-arch] installed the $target standard library" >&2
  echo arm64
  exit 0
fi
echo "[lambda-arch] the $target standard library is not installed and could not be fetched;" >&2
echo "[lambda-arch] building for x86_64 instead (deploy with Architecture=x86_64, or build elsewhere)" >&2
echo x86_64
