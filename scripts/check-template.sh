#!/usr/bin/env bash
# Checks template.yaml with every scanner CI runs, each required to report nothing: cfn-lint with the
# AWS Labs serverless rules (cfn-lint-serverless), `sam validate --lint` and checkov (CloudFormation
# framework; it reads the SAM template as is). Findings that do not apply are suppressed in the template
# itself, next to the resource, with the reason. Then runs `sam build` (SKIP_SAM_BUILD=1 stops before it:
# the scanners and checks alone, no Rust build). Offline: a region and dummy credentials are all they need.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PATH="$(scripts/tools.sh sam):$(scripts/tools.sh checkov):$PATH"
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}

cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
echo "check-template: cfn-lint (with cfn-lint-serverless rules): no findings"
sam validate --lint
# The Scheduler input in the template and the event file the tests feed the warmer are the same shape.
"$(scripts/tools.sh sam)/python" scripts/check_scheduler_input.py
# Gateway mode: off by default (the body SAM makes from the events alone); on, a JWT authorizer on the
# bundle and clear routes and none on health (the template translated offline, conditions resolved).
"$(scripts/tools.sh sam)/python" scripts/check_gateway_auth.py
# CORS is API Gateway's alone: the HttpApi answers the dashboard page's preflights from AllowedOrigins
# (GET and POST, Authorization and Content-Type), none without it, and no function has a CORS setting.
"$(scripts/tools.sh sam)/python" scripts/check_cors.py
# Each function may read only its own secrets (a database secret per function that uses the database),
# HS256 is off without JwtSecretArn, and the Rules refuse an IdP without an audience.
"$(scripts/tools.sh sam)/python" scripts/check_secret_grants.py
# Every alarm notifies the alarm topic (AlarmTopicArn, else the stack's own) and ends its description with
# its docs/RUNBOOK.md entry, which exists; prod does not deploy without AlarmEmail or AlarmTopicArn; the
# BYPASS and STALE shares of bundle requests are alarmed on.
"$(scripts/tools.sh sam)/python" scripts/check_alarms.py
# --skip-download: no call to the vendor's API (offline); --quiet prints failed checks only.
checkov --framework cloudformation --skip-download --quiet --compact -f template.yaml
echo "check-template: checkov: no failed checks"
if [ "${SKIP_SAM_BUILD:-}" = 1 ]; then
  echo "check-template: sam build skipped (SKIP_SAM_BUILD=1)"
  exit 0
fi

# The build step of docs/deploy.md: SAM's rust-cargolambda build of the three functions. The aarch64
# target is settled here, once, before SAM starts any cargo-lambda; without it the build is for x86_64.
arch=$(scripts/lambda-arch.sh)
overrides=()
[ "$arch" = arm64 ] || overrides=(--parameter-overrides "Architecture=$arch")
PATH="$(scripts/tools.sh cargo-lambda):$PATH" sam build "${overrides[@]}"
for function in DashboardBundleFunction ClearCacheFunction WarmCacheFunction; do
  binary=.aws-sam/build/$function/bootstrap
  [ -x "$binary" ] || { echo "check-template: $binary is missing"; exit 1; }
done
echo "check-template: sam build ($arch) built the three functions"
