#!/usr/bin/env bash
# `make test-browser`: the dashboard page in headless Chromium (Debian's package, installed when missing),
# driven by playwright-core (pinned, installed once into the tools directory), against a dev stack of
# its own: `scripts/dev.sh` on ports 4200 (page) / 4201 (API) and its own Redis on 6580, over a freshly
# migrated dashboard_browser database, so it never meets `make dev` (4000/4001/6380) or dev-smoke.
# Every process it starts is stopped on exit. Screenshot: .dev/browser-test/dashboard.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

web_port=${BROWSER_WEB_PORT:-4200}
api_port=${BROWSER_API_PORT:-4201}
redis_port=${BROWSER_REDIS_PORT:-6580}
database_url=${BROWSER_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dashboard_browser}
state=.dev/browser-test
# Tokens signed with it are worthless anywhere else; the test signs an expired one with it.
jwt_secret=browser-test-only-secret-0123456789abcdef
playwright_version=1.64.1
playwright_dir=${DASHBOARD_TOOLS_DIR:-$root/.dev}/playwright-core-$playwright_version

LOG_TAG=test-browser
source "$root/scripts/lib.sh"

for p in "$web_port" "$api_port" "$redis_port"; do
  if port_open "$p"; then
    log "port $p is in use; free it or move the test with BROWSER_WEB_PORT / BROWSER_API_PORT / BROWSER_REDIS_PORT"
    exit 1
  fi
done

if ! command -v chromium >/dev/null; then
  apt_install chromium
fi
if [ ! -f "$playwright_dir/node_modules/playwright-core/package.json" ]; then
  log "installing playwright-core@$playwright_version into $playwright_dir (it brings no browser)"
  mkdir -p "$playwright_dir"
  npm install --prefix "$playwright_dir" --no-save --no-package-lock --no-audit --no-fund --silent \
    "playwright-core@$playwright_version"
fi

rm -rf "$state"
mkdir -p "$state"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# A Redis of its own (empty: the first load must be a MISS), stopped with the test.
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$root/$state" \
  >"$state/redis.log" 2>&1 </dev/null &
pids+=($!)

scripts/services.sh postgres
DATABASE_URL=$database_url cargo run -q --locked -p devtools -- migrate --fresh >/dev/null

log "starting the dev stack (page :$web_port, API :$api_port, Redis :$redis_port)"
DEV_PORT=$api_port DEV_WEB_PORT=$web_port DEV_REDIS_PORT=$redis_port DEV_DATABASE_URL=$database_url \
  DEV_STATE_DIR=$state DEV_JWT_SECRET=$jwt_secret setsid scripts/dev.sh >"$state/dev.log" 2>&1 </dev/null &
dev=$!
pids+=($dev)
fail() { log "$*"; tail -40 "$state/dev.log"; exit 1; }
for _ in $(seq 1 1200); do
  port_open "$api_port" && port_open "$web_port" && break
  kill -0 "$dev" 2>/dev/null || fail "the dev stack exited"
  sleep 0.5
done
port_open "$api_port" && port_open "$web_port" || fail "the dev stack did not open $api_port and $web_port"

# cargo lambda watch builds each function on its first request: do that before the browser's clock runs.
# Neither request touches the cache.
log "first requests (cargo lambda watch builds the functions)"
curl -sf --max-time 900 -o /dev/null "http://127.0.0.1:$api_port/api/system/health" || fail "health check failed"
curl -s --max-time 900 -o /dev/null -X POST "http://127.0.0.1:$api_port/api/reports/clear-cache" \
  || fail "clear-cache did not answer"

BROWSER_WEB_URL=http://localhost:$web_port BROWSER_API_URL=http://localhost:$api_port \
  BROWSER_STATE_DIR=$state BROWSER_JWT_SECRET=$jwt_secret BROWSER_SCREENSHOT=$state/dashboard.png \
  PLAYWRIGHT_DIR=$playwright_dir node tests/browser/dashboard.mjs || fail "the browser test failed"
