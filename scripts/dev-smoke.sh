#!/usr/bin/env bash
# Runs `make dev` and then the operators' runbook commands exactly as the README shows them (port 4001,
# Redis on 6380, a dev token from .dev/token-admin, the dashboard page on 4000 and its /api/* forwarding),
# plus scripts/invoke.sh and `make warm`; stops `make dev` afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source "$root/scripts/lib.sh"
fail() { echo "dev-smoke: $*"; tail -40 .dev/dev-smoke.log; exit 1; }
expect() {  # expect <name> <python condition on the JSON in `j`> <json text>
  python3 -c "import json,sys; j=json.loads(sys.argv[2]); sys.exit(0 if ($1) else 1)" "$1" "$3" \
    || fail "$2: unexpected response: ${3:0:500}"
  echo "dev-smoke: $2: ok"
}

for p in 4001 4000; do
  port_open $p && { echo "dev-smoke: port $p is in use (is make dev running?)"; exit 1; }
done
mkdir -p .dev
setsid make dev >.dev/dev-smoke.log 2>&1 </dev/null &
dev=$!
trap 'kill -- -$dev 2>/dev/null; wait $dev 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do port_open 4001 && port_open 4000 && break; kill -0 $dev 2>/dev/null || fail "make dev exited"; sleep 0.5; done
port_open 4001 || fail "nothing listens on 4001"
curl -sf http://localhost:4000/dashboard | grep -q '<title>Dashboard bundle' || fail "no dashboard page on 4000"
echo "dev-smoke: dashboard page on 4000: ok"
# A known signing secret, /api/cron/execute and /dev/config's superadmin token stay on this machine.
python3 scripts/dev_exposure.py --api-port 4001 --web-port 4000 || fail "make dev is reachable from elsewhere"

JWT=$(cat .dev/token-admin)
tenant=a11dfb63-4b18-4eb8-872e-747af2e37c46
expect 'j["status"] == "ok" and j["redis_cache"] == "connected"' "health" \
  "$(curl -s http://localhost:4001/api/system/health)"
expect 'j["status"] == "success" and j["data"]["meta"]["tenant_id"] == "'$tenant'"' "dashboard bundle" \
  "$(curl -s 'http://localhost:4001/api/reports/dashboard-bundle?bust_cache=true' -H "Authorization: Bearer $JWT")"
redis-cli -p 6380 KEYS "dashboard:bundle:*" | grep -q "dashboard:bundle:$tenant:include=true" \
  || fail "redis-cli KEYS does not show the bundle"
echo "dev-smoke: redis-cli KEYS: ok"
expect 'j["data"]["cleared"] is True and j["data"]["scope"] == "tenant"' "clear {}" \
  "$(curl -s -X POST http://localhost:4001/api/reports/clear-cache -H "Content-Type: application/json" -H "Authorization: Bearer $JWT" -d '{}')"
expect 'j["data"]["tenant_id"] == "'$tenant'"' "clear one tenant" \
  "$(curl -s -X POST http://localhost:4001/api/reports/clear-cache -H "Content-Type: application/json" -H "Authorization: Bearer $JWT" -d '{"tenant_id": "'$tenant'"}')"
# The page's server forwards /api/* (method, Authorization, body, status, headers): page and API share
# one origin. A preflight that reaches a function anyway is a plain JSON 405 without CORS headers (CORS
# is API Gateway's).
expect 'j["status"] == "ok"' "health through the page's server" "$(curl -s http://localhost:4000/api/system/health)"
headers=$(curl -s -D - -o .dev/dev-smoke.body 'http://localhost:4000/api/reports/dashboard-bundle' -H "Authorization: Bearer $JWT")
grep -qi '^x-cache: \(HIT\|MISS\)' <<<"$headers" || fail "no X-Cache through the page's server: $headers"
expect 'j["data"]["meta"]["tenant_id"] == "'$tenant'"' "bundle through the page's server" "$(cat .dev/dev-smoke.body)"
expect 'j["data"]["scope"] == "tenant"' "clear through the page's server" \
  "$(curl -s -X POST http://localhost:4000/api/reports/clear-cache -H "Content-Type: application/json" -H "Authorization: Bearer $JWT" -d '{"tenant_id": "'$tenant'"}')"
headers=$(curl -s -D - -o .dev/dev-smoke.body -X OPTIONS http://localhost:4000/api/reports/dashboard-bundle \
  -H 'Origin: https://elsewhere.example' -H 'Access-Control-Request-Method: GET')
grep -q '^HTTP/[0-9.]* 405' <<<"$headers" || fail "a preflight reaching the function: $headers"
! grep -qi '^access-control-' <<<"$headers" || fail "a function answered with CORS headers: $headers"
expect 'j["error"] == "method_not_allowed"' "preflight reaching the function: JSON 405, no CORS" "$(cat .dev/dev-smoke.body)"
# The design's `sam local invoke -e events/...` path, here through cargo lambda invoke (make warm uses it too).
expect 'j["statusCode"] == 200 and json.loads(j["body"])["data"]["meta"]["tenant_id"] == "'$tenant'"' \
  "scripts/invoke.sh events/dashboard-bundle.json" "$(scripts/invoke.sh events/dashboard-bundle.json 2>/dev/null)"
expect 'j["trigger"] == "schedule" and j["failures"] == 0' "make warm" "$(make -s warm 2>/dev/null)"
ttl=$(redis-cli -p 6380 TTL dashboard:bundle:SUPERADMIN_GLOBAL:include=true)
[ "$ttl" -gt 0 ] || fail "TTL of the global bundle is $ttl after make warm"
echo "dev-smoke: redis-cli TTL: ok ($ttl s)"
# The previous runbook's manual warm and its cron_job query.
expect 'j["status"] == "success" and j["data"]["failures"] == 0 and j["data"]["tenants_warmed"] >= 1' "cron execute" \
  "$(curl -s -X POST http://localhost:4001/api/cron/execute -H "Content-Type: application/json" -d '{"function_name": "warmDashboardBundleCache"}')"
expect 'j["error"] == "unknown_function"' "cron execute, unknown function" \
  "$(curl -s -X POST http://localhost:4001/api/cron/execute -d '{"function_name": "nope"}')"
job=$(psql "${DEV_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dashboard_dev}" -XAtc \
  "SELECT row_to_json(j) FROM (SELECT id, name, last_run, next_run, metadata FROM cron_job
     WHERE function_name = 'warmDashboardBundleCache' ORDER BY last_run DESC) j")
expect 'j["last_run"] is not None and j["next_run"] is not None and j["metadata"]["tenants_warmed"] >= 1' "cron_job" "$job"

# The runbook's job controls, as an operator types them: the job off (each firing records a skipped run,
# the manual execute still runs), back on, the schedule moved (next_run follows), a bad one refused.
dev_db=${DEV_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dashboard_dev}
job_sql() { psql "$dev_db" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
where="WHERE function_name = 'warmDashboardBundleCache'"
job_sql "UPDATE cron_job SET is_active = false $where"
expect 'j["skipped"] == "cron_job.is_active is false" and j["bundles_warmed"] == 0' "make warm, job off" \
  "$(make -s warm 2>/dev/null)"
expect 'j["status"] == "success" and j["data"]["bundles_warmed"] >= 1' "cron execute, job off" \
  "$(curl -s -X POST http://localhost:4001/api/cron/execute -d '{"function_name": "warmDashboardBundleCache"}')"
job_sql "UPDATE cron_job SET is_active = true $where"
expect '"skipped" not in j and j["bundles_warmed"] >= 1' "make warm, job back on" "$(make -s warm 2>/dev/null)"
job_sql "UPDATE cron_job SET schedule = 'cron:0 2 * * *' $where"
expect 'j["hm"] == "02:00" and j["soon"]' "next_run after the schedule moved" "$(job_sql \
  "SELECT json_build_object('hm', to_char(next_run AT TIME ZONE 'UTC', 'HH24:MI'),
                            'soon', next_run > now() AND next_run <= now() + interval '1 day') FROM cron_job $where")"
refused=$(job_sql "UPDATE cron_job SET schedule = 'cron:0 25 * * *' $where" 2>&1 || true)
grep -q 'the hour field "25" is outside 0-23' <<<"$refused" || fail "a bad schedule was not refused: $refused"
echo "dev-smoke: a bad schedule is refused: ok"
job_sql "UPDATE cron_job SET schedule = 'cron(0 0 * * ? *)' $where"
