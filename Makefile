# The two everyday commands: `make dev` (local API on :4001) and `make test` (the whole suite).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
TEST_REDIS_PORT ?= 6379
# Local AWS endpoint (moto) for the warmer's EventBridge fan-out tests.
TEST_AWS_PORT ?= 5001

.PHONY: test lint dev services fmt

## Start Postgres and Redis when missing, then run every test against them.
test: services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=redis://127.0.0.1:$(TEST_REDIS_PORT) \
	  TEST_AWS_ENDPOINT_URL=http://127.0.0.1:$(TEST_AWS_PORT) \
	  cargo test --workspace --locked

## Formatting and clippy, warnings as errors.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

services:
	scripts/services.sh postgres redis $(TEST_REDIS_PORT)
	scripts/moto.sh $(TEST_AWS_PORT)

## Local API on http://localhost:4001 (see README).
dev:
	scripts/dev.sh
