# atoll: the two Quick start commands are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
ATOLL := target/release/atoll
BUNDLE := target/default-bundle
ISOLATION ?= native
DEMO := sh -c 'echo "Hello from atoll ($$(uname -sr), pid $$$$)"; id; ls /; cat /proc/self/status | grep -E "^(Seccomp|NoNewPrivs|CapEff)"'

.PHONY: deps build run test lint docs bench clean

deps:
	@./scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace

# Sets up the machine, builds, makes the default busybox bundle and runs it.
run: build
	@./scripts/default-bundle.sh $(ATOLL) $(BUNDLE) $(DEMO)
	$(ATOLL) --isolation $(ISOLATION) run --bundle $(BUNDLE) atoll-demo-$$$$

# The whole test suite (unit + integration, as root).
test: build lint
	$(CARGO) test --release --workspace -- --test-threads=$${TEST_THREADS:-2}

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# Regenerates the docs that come from code.
docs: build
	$(ATOLL) compat > docs/compatibility.md

bench: build
	./bench/run.sh

clean:
	$(CARGO) clean
