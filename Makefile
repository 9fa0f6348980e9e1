# DeepNode developer entry points. `make test` and `make demo` install what is missing first.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export ORT_DYLIB_PATH ?= $(CURDIR)/.deps/onnxruntime/libonnxruntime.so.1.31.1

.PHONY: setup deps-npm deps-ort contracts build test test-forge test-cargo demo clean

setup: deps-npm contracts

deps-npm:
	@tools/setup-npm.sh

deps-ort:
	@tools/setup-ort.sh

contracts: deps-npm
	@echo "==> forge build"
	@forge build

build: setup
	@echo "==> cargo build (workspace)"
	@cargo build --workspace --bins

test-forge: contracts
	@echo "==> forge test"
	@forge test

test-cargo: setup
	@echo "==> cargo test (workspace)"
	@cargo test --workspace

test: test-forge test-cargo

demo: build
	@cargo run -q -p devnet --bin deepnode-demo -- $(DEMO_ARGS)

clean:
	rm -rf out cache target .demo
