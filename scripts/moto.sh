#!/usr/bin/env bash
# Makes sure a local AWS API endpoint (moto_server) answers on 127.0.0.1:${1:-5001}, for the warmer's
# EventBridge fan-out tests. Installs moto into .dev/venv-moto when needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-5001}
source "$root/scripts/lib.sh"
if port_open "$port"; then echo "[services] moto: using the endpoint on $port" >&2; exit 0; fi
bin=$("$root/scripts/tools.sh" moto_server)
echo "[services] moto: starting moto_server on $port (log: .dev/moto-$port.log)" >&2
mkdir -p "$root/.dev"
setsid nohup "$bin/moto_server" -H 127.0.0.1 -p "$port" >"$root/.dev/moto-$port.log" 2>&1 </dev/null &
for _ in $(seq 1 100); do port_open "$port" && exit 0; sleep 0.1; done
echo "[services] moto_server did not start; see .dev/moto-$port.log" >&2
exit 1
