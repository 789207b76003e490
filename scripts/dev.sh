#!/usr/bin/env bash
# `make dev`: a local API on http://localhost:4001 over its own Redis (6380) and a migrated, seeded
# Postgres database, served by `cargo lambda watch`. Prints dev tokens and curl lines to paste.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${DEV_PORT:-4001}
redis_port=${DEV_REDIS_PORT:-6380}
database_url=${DEV_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dashboard_dev}
# A development-only secret: tokens signed with it are worthless anywhere else.
jwt_secret=${DEV_JWT_SECRET:-dev-only-secret-not-for-production-0123456789}

scripts/services.sh postgres redis "$redis_port"
PATH="$(scripts/tools.sh cargo-lambda):$PATH"

mkdir -p .dev
cat > .dev/dev.env <<ENV
DATABASE_URL=$database_url
REDIS_URL=redis://127.0.0.1:$redis_port
JWT_SECRET=$jwt_secret
BUNDLE_TTL_SECONDS=300
RUST_LOG=info
ENV
# To sign in with a real IdP, call `make dev` with its JWT_* variables set (README, "Sign-in"): they
# reach the functions too, next to the dev secret, so the HS256 dev tokens keep working.
env | grep -E '^JWT_(JWKS_URL|ISSUER|AUDIENCE|ALGORITHMS|SECRET_PREVIOUS|TENANT_CLAIM|ROLE_CLAIM|ROLE_MAP|LEEWAY_SECONDS|JWKS_TIMEOUT_MS)=' \
  >> .dev/dev.env || true

export DATABASE_URL=$database_url JWT_SECRET=$jwt_secret
cargo run -q -p devtools -- migrate
cargo run -q -p devtools -- seed-demo
tenant=a11dfb63-4b18-4eb8-872e-747af2e37c46
admin=$(cargo run -q -p devtools -- token admin "$tenant")
root_token=$(cargo run -q -p devtools -- token superadmin)
printf '%s\n' "$admin" > .dev/token-admin
printf '%s\n' "$root_token" > .dev/token-superadmin

cat <<MSG

Local API on http://localhost:$port (Redis on $redis_port, database $database_url)
Dev tokens (30 days) are in .dev/token-admin (tenant $tenant) and .dev/token-superadmin.

  JWT=\$(cat .dev/token-admin)
  curl http://localhost:$port/api/system/health
  curl 'http://localhost:$port/api/reports/dashboard-bundle?bust_cache=true' -H "Authorization: Bearer \$JWT"
  curl -X POST http://localhost:$port/api/reports/clear-cache -H "Content-Type: application/json" -H "Authorization: Bearer \$JWT" -d '{}'
  redis-cli -p $redis_port KEYS "dashboard:bundle:*"

MSG
exec cargo lambda watch --invoke-port "$port" --env-file .dev/dev.env
