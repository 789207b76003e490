#!/usr/bin/env bash
# Installs the tools, at the versions pinned below, and prints the directory to put in front of PATH: the
# Python-packaged ones into venvs, cargo-deny with `cargo install --locked` (a few minutes, once). They live
# in $DASHBOARD_TOOLS_DIR (default .dev/); CI keeps them outside the clone so successive runs reuse them. A
# tool installed for other pins is installed again.
#
#   PATH="$(scripts/tools.sh cargo-lambda):$PATH"
#   PATH="$(scripts/tools.sh sam):$PATH"            (sam, cfn-lint and the cfn-lint-serverless rules)
#   PATH="$(scripts/tools.sh checkov):$PATH"
#   "$(scripts/tools.sh moto_server)/moto_server" -p 5001
#   PATH="$(scripts/tools.sh cargo-deny):$PATH"
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DASHBOARD_TOOLS_DIR:-$root/.dev}
tool=${1:?usage: tools.sh cargo-lambda|sam|checkov|moto_server|cargo-deny}

# Exact versions, so that a new release cannot break a fresh machine. Raise them here, on purpose.
CARGO_LAMBDA=cargo-lambda==1.9.2
AWS_SAM_CLI=aws-sam-cli==1.170.0
CFN_LINT=cfn-lint==1.58.0
CFN_LINT_SERVERLESS=cfn-lint-serverless==0.3.6
CHECKOV=checkov==3.3.30
MOTO='moto[server]==5.2.5'
CARGO_DENY=cargo-deny@0.20.2

if [ "$tool" = cargo-deny ]; then
  # A crate, not a Python package: its own directory per version, so a raised pin installs beside the old.
  install="$dir/${CARGO_DENY/@/-}"
  if [ ! -x "$install/bin/cargo-deny" ]; then
    echo "[tools] installing $CARGO_DENY into $install (cargo install, a few minutes)" >&2
    mkdir -p "$dir"
    # Its own target directory: the workspace's CARGO_TARGET_DIR would keep its build products forever.
    CARGO_TARGET_DIR="$dir/cargo-install-target" cargo install --quiet --locked --root "$install" "$CARGO_DENY" >&2
    rm -rf "$dir/cargo-install-target"
  fi
  echo "$install/bin"
  exit 0
fi

# One venv per tool: they pin different versions of shared dependencies (boto3).
case "$tool" in
  cargo-lambda) venv="$dir/venv-lambda"; commands=(cargo-lambda); packages=("$CARGO_LAMBDA") ;;
  sam) venv="$dir/venv-sam"; commands=(sam cfn-lint); packages=("$AWS_SAM_CLI" "$CFN_LINT" "$CFN_LINT_SERVERLESS") ;;
  checkov) venv="$dir/venv-checkov"; commands=(checkov); packages=("$CHECKOV") ;;
  moto_server) venv="$dir/venv-moto"; commands=(moto_server); packages=("$MOTO") ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac

stamp="$venv/.pinned"
want="${packages[*]}"
ready=yes
for c in "${commands[@]}"; do [ -x "$venv/bin/$c" ] || ready=no; done
[ "$ready" = yes ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] || ready=no

if [ "$ready" = no ]; then
  echo "[tools] installing $want into $venv" >&2
  mkdir -p "$dir"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv support separately.
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q "${packages[@]}" >&2
  # Written last: an interrupted install is redone next time.
  printf '%s\n' "$want" >"$stamp"
fi
echo "$venv/bin"
