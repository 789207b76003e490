#!/usr/bin/env bash
# Prints the Rust toolchain for this checkout's cargo commands (the Makefile exports it as
# RUSTUP_TOOLCHAIN): rust-toolchain.toml's channel, installed with its components and targets when it is
# missing, or, where it cannot be installed (no route to the Rust toolchain server), the machine's
# default toolchain, said so on stderr: Cargo.toml's rust-version still refuses one that is too old.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
channel=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)

if rustup run "$channel" rustc --version >/dev/null 2>&1; then
  echo "$channel"
  exit 0
fi
echo "[toolchain] installing $channel (rust-toolchain.toml: its components and targets)" >&2
# With no argument, rustup installs the toolchain rust-toolchain.toml names, as the file describes it.
if out=$(timeout 900 rustup toolchain install 2>&1) && rustup run "$channel" rustc --version >/dev/null 2>&1; then
  echo "$channel"
  exit 0
fi
fallback=$(cd / && rustup show active-toolchain | cut -d' ' -f1)
echo "[toolchain] $channel could not be installed ($(grep -m1 -i error <<<"$out" || echo "see rustup toolchain install"));" >&2
echo "[toolchain] using $fallback ($(cd / && rustc --version))" >&2
echo "$fallback"
