#!/usr/bin/env bash
# `make dev`: a local API on http://localhost:4001 over its own Redis (6380) and a migrated, seeded
# Postgres database, served by `cargo lambda watch`, and the dashboard page on
# http://localhost:4000/dashboard (scripts/dev_web.py, which forwards /api/* to the API: page and API
# share one origin, so no CORS is involved; a deployment's is API Gateway's). Prints dev tokens and curl
# lines to paste.
#
# Ports, database and state directory can be moved (the browser test runs a second stack this way):
# DEV_PORT (4001), DEV_WEB_PORT (4000), DEV_REDIS_PORT (6380), DEV_DATABASE_URL, DEV_STATE_DIR (.dev).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${DEV_PORT:-4001}
web_port=${DEV_WEB_PORT:-4000}
redis_port=${DEV_REDIS_PORT:-6380}
state=${DEV_STATE_DIR:-.dev}
database_url=${DEV_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dashboard_dev}
# A development-only secret: tokens signed with it are worthless anywhere else.
jwt_secret=${DEV_JWT_SECRET:-dev-only-secret-not-for-production-0123456789}

source "$root/scripts/lib.sh"
for p in "$port" "$web_port"; do
  if port_open "$p"; then
    echo "make dev: port $p is in use (another make dev?); move it with DEV_PORT / DEV_WEB_PORT" >&2
    exit 1
  fi
done

scripts/services.sh postgres redis "$redis_port"
PATH="$(scripts/tools.sh cargo-lambda):$PATH"

mkdir -p "$state"
cat > "$state/dev.env" <<ENV
DATABASE_URL=$database_url
REDIS_URL=redis://127.0.0.1:$redis_port
JWT_SECRET=$jwt_secret
BUNDLE_TTL_SECONDS=300
# The runbook's check expects every "bypass the cache" to recompute (deployments keep the 10 s bound).
BUST_INTERVAL_MS=0
RUST_LOG=info
# The previous runbook's manual warm: POST /api/cron/execute reaches warm-cache (dev only).
WARM_CRON_ROUTE=true
ENV
# To sign in with a real IdP, call `make dev` with its JWT_* variables set (docs/configuration.md,
# "Sign-in"): they reach the functions too, next to the dev secret, so the HS256 dev tokens keep working.
env | grep -E '^JWT_(JWKS_URL|ISSUER|AUDIENCE|ALGORITHMS|SECRET_PREVIOUS|TENANT_CLAIM|ROLE_CLAIM|ROLE_MAP|LEEWAY_SECONDS|JWKS_TIMEOUT_MS)=' \
  >> .dev/dev.env || true

export DATABASE_URL=$database_url JWT_SECRET=$jwt_secret
migrated=$(cargo run -q -p devtools -- migrate --recreate-if-stale)
echo "$migrated"
# A recreated database starts its data versions again: entries of the old one must not be served.
if grep -q "recreating" <<<"$migrated"; then
  redis-cli -p "$redis_port" FLUSHDB >/dev/null
fi
cargo run -q -p devtools -- seed-demo
tenant=a11dfb63-4b18-4eb8-872e-747af2e37c46
admin=$(cargo run -q -p devtools -- token admin "$tenant")
root_token=$(cargo run -q -p devtools -- token superadmin)
printf '%s\n' "$admin" > "$state/token-admin"
printf '%s\n' "$root_token" > "$state/token-superadmin"
# The demo manager and employee of the tenant (their employee ids are the seed's): scoped dashboards.
for role in manager employee; do
  cargo run -q -p devtools -- token "$role" "$tenant" > "$state/token-$role"
done

# The page's dev routes read the database through devtools (built by the commands above).
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
python3 scripts/dev_web.py --port "$web_port" --api-port "$port" --state-dir "$state" \
  --devtools "$target_dir/debug/devtools" &
web=$!
trap 'kill $web 2>/dev/null; wait $web 2>/dev/null || true' EXIT

cat <<MSG

Local API on http://localhost:$port (Redis on $redis_port, database $database_url)
Dashboard page on http://localhost:$web_port/dashboard (it forwards /api/* to the API)
Dev tokens (30 days) are in $state/token-admin (tenant $tenant), $state/token-superadmin, and
$state/token-manager and $state/token-employee (the tenant's demo manager and employee: scoped dashboards).

  JWT=\$(cat $state/token-admin)
  curl http://localhost:$port/api/system/health
  curl 'http://localhost:$port/api/reports/dashboard-bundle?bust_cache=true' -H "Authorization: Bearer \$JWT"
  curl -X POST http://localhost:$port/api/reports/clear-cache -H "Content-Type: application/json" -H "Authorization: Bearer \$JWT" -d '{}'
  redis-cli -p $redis_port KEYS "dashboard:bundle:*"

MSG
# Not exec: the trap above stops the web server when the API stops. --disable-cors: watch's own CORS
# layer mirrors any origin; the page reaches the API through its own origin (dev_web.py forwards /api/*),
# and deployed CORS is API Gateway's (template.yaml, HttpApi CorsConfiguration).
# --invoke-address: watch listens on every interface (::) by default, and this API accepts tokens of a
# known secret and runs the warmer on an unauthenticated POST /api/cron/execute: this machine only.
# (`cargo lambda invoke` then needs --invoke-address 127.0.0.1, as `make warm` passes.)
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --env-file "$state/dev.env" --disable-cors
