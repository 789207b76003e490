# Everyday commands: `make dev` (local API on :4001) and `make test` (everything CI checks).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
TEST_REDIS_PORT ?= 6379
# A 3-node cluster (on this port and the next two) and a TLS-only server, for the cache client tests.
TEST_REDIS_CLUSTER_PORT ?= 7000
TEST_REDIS_TLS_PORT ?= 6390
DASHBOARD_SERVICES_DIR ?= $(HOME)/.cache/dashboard-cache/services
export DASHBOARD_SERVICES_DIR
# Local AWS endpoint (moto) for the warmer's EventBridge fan-out tests.
TEST_AWS_PORT ?= 5001
DEV_PORT ?= 4001

.PHONY: test unit-test check-template e2e dev-smoke build-lambdas bench lint fmt services dev warm

## The whole suite: unit and integration tests, template lint, end-to-end, `make dev` with the
## runbook's commands, release builds.
test: unit-test check-template e2e dev-smoke build-lambdas

## cargo test against real Postgres, Redis and a local EventBridge (started when missing).
unit-test: services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=redis://127.0.0.1:$(TEST_REDIS_PORT) \
	  TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:$(TEST_REDIS_CLUSTER_PORT) \
	  TEST_REDIS_TLS_URL=rediss://localhost:$(TEST_REDIS_TLS_PORT) TEST_REDIS_TLS_CA=$(DASHBOARD_SERVICES_DIR)/tls/ca.crt \
	  TEST_AWS_ENDPOINT_URL=http://127.0.0.1:$(TEST_AWS_PORT) \
	  cargo test --workspace --locked

## cfn-lint (with the serverless rules), `sam validate --lint` and checkov on template.yaml, zero
## findings; then `sam build` (x86_64 where the aarch64 target cannot be installed).
check-template:
	scripts/check-template.sh

## Every file in events/ through `cargo lambda watch` + `cargo lambda invoke`.
e2e:
	E2E_REDIS_PORT=$(TEST_REDIS_PORT) scripts/e2e.sh

## `make dev`, then the README's curl and redis-cli lines and `make warm` against it.
dev-smoke:
	scripts/dev-smoke.sh

## `cargo lambda build --release --arm64` of the three functions, with their sizes.
build-lambdas:
	scripts/build-lambdas.sh

## Benchmarks (not part of `make test`): prints one table and writes BENCHMARKS.md. The dataset
## (10,000 tenants) is generated once into the dashboard_bench database.
bench: services build-lambdas
	cargo build --release --locked -p dashboard-bundle -p clear-cache -p warm-cache
	cargo run --release --locked -p bench

## Formatting and clippy, warnings as errors.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

services:
	scripts/services.sh postgres redis $(TEST_REDIS_PORT) redis-cluster $(TEST_REDIS_CLUSTER_PORT) \
	  redis-tls $(TEST_REDIS_TLS_PORT)
	scripts/moto.sh $(TEST_AWS_PORT)

## Local API on http://localhost:4001 (see README).
dev:
	scripts/dev.sh

## Runs the warmer once against `make dev` (in another terminal).
warm:
	PATH="$$(scripts/tools.sh cargo-lambda):$$PATH" cargo lambda invoke warm-cache \
	  --data-file events/warm-cache-schedule.json --invoke-port $(DEV_PORT) --invoke-address 127.0.0.1
