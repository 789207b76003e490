#!/usr/bin/env bash
# End-to-end check: `cargo lambda watch` serves the workspace and every file in events/ is sent with
# scripts/invoke.sh (tokens filled in, then `cargo lambda invoke --data-file`), against real Postgres (a
# fresh `dashboard_e2e` database with the demo tenants) and Redis (keys under a prefix of this run).
# Status codes and bodies are checked by scripts/e2e_expect.py, which fails on any event file it has no
# expectation for.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${E2E_PORT:-9310}
redis_port=${E2E_REDIS_PORT:-6379}
database_url=${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dashboard_e2e}
secret=e2e-only-secret-e2e-only-secret-0123456789
prefix="e2e:$$:"

scripts/services.sh postgres redis "$redis_port"
PATH="$(scripts/tools.sh cargo-lambda):$PATH"
work=$(mktemp -d)
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL=$database_url JWT_SECRET=$secret
cargo run -q -p devtools -- migrate --fresh >/dev/null
cargo run -q -p devtools -- seed-demo >/dev/null
admin=$(cargo run -q -p devtools -- token admin a11dfb63-4b18-4eb8-872e-747af2e37c46)
superadmin=$(cargo run -q -p devtools -- token superadmin)

cat > "$work/env" <<ENV
DATABASE_URL=$database_url
REDIS_URL=redis://127.0.0.1:$redis_port
JWT_SECRET=$secret
CACHE_KEY_PREFIX=$prefix
RUST_LOG=warn
ENV

# Build once up front so the first invocation does not wait for the compiler.
cargo build -q -p dashboard-bundle -p clear-cache -p warm-cache
cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" --env-file "$work/env" >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

# Reads first, then the warmer, then the clears (they empty what the others filled).
order=$(python3 scripts/e2e_expect.py --order events)
for file in $order; do
  if ! response=$(DEV_PORT=$port DEV_STATE_DIR=$work INVOKE_ADMIN_TOKEN=$admin INVOKE_SUPERADMIN_TOKEN=$superadmin \
    scripts/invoke.sh "$file" 2>"$work/invoke.err"); then
    echo "e2e: $file: invoke failed"; cat "$work/invoke.err"; tail -30 "$work/watch.log"; exit 1
  fi
  printf '%s' "$response" | python3 scripts/e2e_expect.py --check "$(basename "$file")"
done
echo "e2e: every event in events/ answered as expected"
