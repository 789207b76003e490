#!/usr/bin/env bash
# Prints the python of a venv holding PyJWT and cryptography (pinned), installing it on first use.
# The auth tests mint their keys and tokens with it: an implementation independent of the Rust crate
# that verifies them. The venv lives in $DASHBOARD_TOOLS_DIR (default .dev/), like scripts/tools.sh's.
#
#   "$(scripts/jwt-tools.sh)" scripts/jwt_mint.py < spec.json
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DASHBOARD_TOOLS_DIR:-$root/.dev}
venv="$dir/venv-jwt"
packages=(PyJWT==2.15.1 cryptography==50.0.2)
stamp="$venv/.installed-$(printf '%s_' "${packages[@]}")"

if [ ! -f "$stamp" ]; then
  mkdir -p "$dir"
  # Test binaries run in parallel: one installs, the others wait for it.
  exec 9>"$dir/.venv-jwt.lock"
  flock 9
  if [ ! -f "$stamp" ]; then
    echo "[jwt-tools] installing ${packages[*]} into $venv" >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q "${packages[@]}" >&2
    touch "$stamp"
  fi
fi
echo "$venv/bin/python"
