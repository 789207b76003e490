#!/usr/bin/env bash
# Installs the Python-packaged tools into venvs when they are not on PATH, and prints the directory
# to put in front of PATH. Venvs live in $DASHBOARD_TOOLS_DIR (default .dev/); CI keeps them outside
# the clone so successive runs reuse them.
#
#   PATH="$(scripts/tools.sh cargo-lambda):$PATH"
#   PATH="$(scripts/tools.sh sam):$PATH"            (sam and cfn-lint)
#   "$(scripts/tools.sh moto_server)/moto_server" -p 5001
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DASHBOARD_TOOLS_DIR:-$root/.dev}
tool=${1:?usage: tools.sh cargo-lambda|sam|moto_server}

# One venv per tool: they pin different versions of shared dependencies (boto3).
case "$tool" in
  cargo-lambda) venv="$dir/venv-lambda"; commands=(cargo-lambda); packages=(cargo-lambda) ;;
  sam) venv="$dir/venv-sam"; commands=(sam cfn-lint); packages=(aws-sam-cli cfn-lint) ;;
  moto_server) venv="$dir/venv-moto"; commands=(moto_server); packages=('moto[server]') ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac

on_path=yes
for c in "${commands[@]}"; do command -v "$c" >/dev/null || on_path=no; done
if [ "$on_path" = yes ]; then dirname "$(command -v "${commands[0]}")"; exit 0; fi

if [ ! -x "$venv/bin/${commands[-1]}" ]; then
  echo "[tools] installing ${packages[*]} into $venv" >&2
  mkdir -p "$dir"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv support separately.
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q "${packages[@]}" >&2
fi
echo "$venv/bin"
