#!/usr/bin/env bash
# Sends one event of events/ to its function with the dev tokens filled in: the design's
# `sam local invoke -e events/...` test path. Here (no Docker) through `cargo lambda invoke` against a
# running `make dev`; with --sam, or where nothing listens on DEV_PORT and Docker runs, it prints the
# `sam local invoke` line for the filled file instead (after `sam build`).
#
#   scripts/invoke.sh events/dashboard-bundle.json               the function comes from the file's name
#   scripts/invoke.sh events/clear-cache-tenant.json clear-cache
#   scripts/invoke.sh --sam events/dashboard-bundle.json
#
# DEV_TOKEN_TENANT_ADMIN and DEV_TOKEN_SUPERADMIN in the event become the tokens `make dev` wrote
# ($DEV_STATE_DIR/token-admin and token-superadmin), or INVOKE_ADMIN_TOKEN / INVOKE_SUPERADMIN_TOKEN when
# set (for `sam local invoke`, tokens signed with the secret that function reads). The filled file goes to
# $DEV_STATE_DIR/events/ (DEV_STATE_DIR: .dev). The response is printed as JSON on stdout. Port: DEV_PORT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
LOG_TAG=invoke
source "$root/scripts/lib.sh"

sam=no
if [ "${1:-}" = --sam ]; then sam=yes; shift; fi
event=${1:?usage: scripts/invoke.sh [--sam] events/<file>.json [function]}
function=${2:-$(event_function "$event")} || { log "name the function of $event"; exit 2; }
port=${DEV_PORT:-4001}
state=${DEV_STATE_DIR:-.dev}

token() {  # token <role> <placeholder>: INVOKE_<ROLE>_TOKEN, else the one make dev wrote; none unused
  local given="INVOKE_${1^^}_TOKEN"
  grep -q "$2" "$event" || return 0
  if [ -n "${!given:-}" ]; then printf '%s' "${!given}"; return; fi
  [ -f "$state/token-$1" ] || { log "no $state/token-$1: run make dev first, or set $given"; exit 1; }
  tr -d '\n' <"$state/token-$1"
}

mkdir -p "$state/events"
filled="$state/events/$(basename "$event")"
admin=$(token admin DEV_TOKEN_TENANT_ADMIN)
superadmin=$(token superadmin DEV_TOKEN_SUPERADMIN)
fill_event "$event" "$filled" "$admin" "$superadmin"

if [ "$sam" = no ] && ! port_open "$port" && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  log "nothing listens on $port (make dev); Docker runs: printing the sam local invoke line"
  sam=yes
fi
if [ "$sam" = yes ]; then
  echo "sam local invoke $(logical_id "$function") -e $filled"
  exit 0
fi
port_open "$port" || { log "nothing listens on $port: start make dev (or DEV_PORT=...), or use --sam"; exit 1; }
PATH="$(scripts/tools.sh cargo-lambda):$PATH"
cargo lambda invoke "$function" --data-file "$filled" --invoke-address 127.0.0.1 --invoke-port "$port" \
  --output-format json
