# Everyday commands: `make dev` (local API on :4001, dashboard page on :4000) and `make test` (everything CI checks).
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
# PgBouncer (transaction mode) in front of the test Postgres, for the second pass of the Rust tests.
TEST_PGBOUNCER_PORT ?= 6432
DEV_PORT ?= 4001
DEV_WEB_PORT ?= 4000
DEV_REDIS_PORT ?= 6380
# The browser test's own stack, away from `make dev` and the dev smoke test.
BROWSER_WEB_PORT ?= 4200
BROWSER_API_PORT ?= 4201
BROWSER_REDIS_PORT ?= 6580

# rust-toolchain.toml's toolchain for every cargo command below (installed when missing), or the machine's
# own where it cannot be installed; scripts/toolchain.sh says which. Not for `make help`.
ifndef RUSTUP_TOOLCHAIN
ifneq ($(filter-out help,$(or $(MAKECMDGOALS),help)),)
RUSTUP_TOOLCHAIN := $(shell scripts/toolchain.sh)
export RUSTUP_TOOLCHAIN
endif
endif

.DEFAULT_GOAL := help
.PHONY: help test test-rust test-rust-pgbouncer test-template test-e2e test-dev-smoke test-browser build-lambdas bench lint \
	deny-advisories fmt services dev warm

## This list: every target with the first line of its `##` comment.
help:
	@awk '/^## /{ if (!doc) doc = substr($$0, 4); next } /^[a-z][a-z0-9-]*:/{ if (doc) printf "  make %-22s %s\n", $$1, doc } { doc = "" }' $(MAKEFILE_LIST) | sed 's/: / /'

## Everything CI checks (what `.ci/run` runs after `make lint`).
## The Rust tests (directly and through PgBouncer), the template, end-to-end, `make dev` with the
## runbook's commands, the dashboard page in headless Chromium, release builds.
test: test-rust test-rust-pgbouncer test-template test-e2e test-dev-smoke test-browser build-lambdas

TEST_ENV = DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=redis://127.0.0.1:$(TEST_REDIS_PORT) \
	  TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:$(TEST_REDIS_CLUSTER_PORT) \
	  TEST_REDIS_TLS_URL=rediss://localhost:$(TEST_REDIS_TLS_PORT) TEST_REDIS_TLS_CA=$(DASHBOARD_SERVICES_DIR)/tls/ca.crt \
	  TEST_AWS_ENDPOINT_URL=http://127.0.0.1:$(TEST_AWS_PORT)

## The fast loop: the Rust tests; P=<crate> for one crate, T=<filter> for some tests.
## Against real Postgres, Redis (standalone, cluster, TLS) and a local AWS endpoint, all started
## when missing. One crate: P=shared (or dashboard-bundle, clear-cache,
## warm-cache); one test or module: T=<name filter>, e.g. `make test-rust P=shared T=database_footprint`.
test-rust: services
	$(TEST_ENV) cargo test $(if $(P),-p $(P),--workspace) --locked $(if $(T),-- $(T))

## The Rust tests again, the functions reaching Postgres through PgBouncer (transaction mode).
## Its pool is smaller than the tests' concurrency.
test-rust-pgbouncer: services
	scripts/services.sh pgbouncer $(TEST_PGBOUNCER_PORT)
	$(TEST_ENV) TEST_PGBOUNCER_ADDR=127.0.0.1:$(TEST_PGBOUNCER_PORT) \
	  cargo test --workspace --locked

## The template: cfn-lint, `sam validate --lint`, checkov (zero findings), then `sam build`.
## cfn-lint runs with the serverless rules; scripts/check_*.py check the translated template (the
## alarms against docs/RUNBOOK.md and the API's CORS among them); `sam build` targets x86_64 where
## the aarch64 target cannot be installed; SKIP_SAM_BUILD=1 stops before it.
test-template:
	scripts/check-template.sh

## Every file in events/ through `cargo lambda watch` and scripts/invoke.sh (`cargo lambda invoke`).
test-e2e:
	E2E_REDIS_PORT=$(TEST_REDIS_PORT) scripts/e2e.sh

## `make dev`, then the README's curl and redis-cli lines and `make warm` against it.
test-dev-smoke:
	scripts/dev-smoke.sh

## The dashboard page in headless Chromium (installed when missing) against a dev stack on its own ports.
test-browser:
	BROWSER_WEB_PORT=$(BROWSER_WEB_PORT) BROWSER_API_PORT=$(BROWSER_API_PORT) \
	  BROWSER_REDIS_PORT=$(BROWSER_REDIS_PORT) scripts/test-browser.sh

## `cargo lambda build --release --arm64` of the three functions, with their sizes.
build-lambdas:
	scripts/build-lambdas.sh

## Benchmarks (not part of `make test`): the goals and every figure, written to BENCHMARKS.md.
## The dataset (10,000 tenants) is generated once into the dashboard_bench database.
bench: services build-lambdas
	cargo build --release --locked -p dashboard-bundle -p clear-cache -p warm-cache
	cargo build --release --locked -p bench --example hello_lambda
	cargo run --release --locked -p bench

## Formatting, clippy (warnings as errors), cargo-deny's bans, licenses and sources (deny.toml), and
## rust-version against the locked dependencies. Advisories need the RustSec database from the network,
## which these machines cannot reach: `make deny-advisories` where it can be fetched.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	PATH="$$(scripts/tools.sh cargo-deny):$$PATH" cargo deny --locked check bans licenses sources
	python3 scripts/check_rust_version.py

## cargo-deny's advisories check (deny.toml): fetches the RustSec advisory database first.
deny-advisories:
	PATH="$$(scripts/tools.sh cargo-deny):$$PATH" cargo deny --locked check advisories

## Formats the workspace (what `make lint` checks).
fmt:
	cargo fmt --all

## Starts (installing when missing) Postgres, the test Redis servers and the local AWS endpoint.
services:
	scripts/services.sh postgres redis $(TEST_REDIS_PORT) redis-cluster $(TEST_REDIS_CLUSTER_PORT) \
	  redis-tls $(TEST_REDIS_TLS_PORT)
	scripts/moto.sh $(TEST_AWS_PORT)

## The local stack: API on http://localhost:4001, dashboard page on http://localhost:4000/dashboard.
dev:
	DEV_PORT=$(DEV_PORT) DEV_WEB_PORT=$(DEV_WEB_PORT) DEV_REDIS_PORT=$(DEV_REDIS_PORT) scripts/dev.sh

## Runs the warmer once against `make dev` (in another terminal).
warm:
	DEV_PORT=$(DEV_PORT) scripts/invoke.sh events/warm-cache-schedule.json
