#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and `sam validate --lint`, then runs `sam build`. Offline: a region
# and dummy credentials are all they need.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PATH="$(scripts/tools.sh sam):$PATH"
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
cfn-lint template.yaml
echo "check-template: cfn-lint template.yaml passed"
sam validate --lint
# The README's build step: SAM's rust-cargolambda build of the three functions.
PATH="$(scripts/tools.sh cargo-lambda):$PATH" sam build
