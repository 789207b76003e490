#!/usr/bin/env bash
# Installs the Python-packaged tools into venvs under .dev/ when they are not on PATH, and prints the
# directory to put in front of PATH.
#
#   PATH="$(scripts/tools.sh cargo-lambda):$PATH"
#   "$(scripts/tools.sh moto_server)/moto_server" -p 5001
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tool=${1:?usage: tools.sh cargo-lambda|moto_server}

# One venv per tool: they pin different versions of shared dependencies (boto3).
case "$tool" in
  cargo-lambda) venv="$root/.dev/venv-lambda"; packages=(cargo-lambda) ;;
  moto_server) venv="$root/.dev/venv-moto"; packages=('moto[server]') ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac

if command -v "$tool" >/dev/null; then dirname "$(command -v "$tool")"; exit 0; fi
if [ ! -x "$venv/bin/$tool" ]; then
  echo "[tools] installing ${packages[*]} into $venv" >&2
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv support separately.
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q "${packages[@]}" >&2
fi
echo "$venv/bin"
