# atoll: the two Quick start commands are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# The release binary, where cargo puts it (CARGO_TARGET_DIR moves it).
ATOLL := $(or $(CARGO_TARGET_DIR),target)/release/atoll
BUNDLE := target/default-bundle
ISOLATION ?= native
DEMO := sh -c 'echo "Hello from atoll ($$(uname -sr), pid $$$$)"; id; ls /; cat /proc/self/status | grep -E "^(Seccomp|NoNewPrivs|CapEff)"'

.PHONY: deps deps-all build run test lint docs conformance bench clean fuzz fuzz-smoke

deps:
	@./scripts/deps.sh

# Also the daemons the ecosystem tests drive (containerd, podman, Docker).
deps-all:
	@./scripts/deps.sh --all

build: deps
	$(CARGO) build --release --workspace

# Sets up the machine, builds, makes the default busybox bundle and runs it.
run: build
	@./scripts/default-bundle.sh $(ATOLL) $(BUNDLE) $(DEMO)
	$(ATOLL) --isolation $(ISOLATION) run --bundle $(BUNDLE) atoll-demo-$$$$

# The whole test suite (unit + integration, as root).
test: deps-all build lint
	$(CARGO) test --release --workspace -- --test-threads=$${TEST_THREADS:-2}
	./scripts/fuzz.sh smoke

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# Fuzzes every target for FUZZ_SECONDS each (FUZZ_TARGETS="a b" for some);
# `make test` runs a short smoke round of each (scripts/fuzz.sh).
FUZZ_SECONDS ?= 300
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh long $(FUZZ_TARGETS)

fuzz-smoke: deps
	./scripts/fuzz.sh smoke

# Regenerates the docs that come from code (keeping the conformance table
# `make conformance` wrote).
KEEP := $(or $(CARGO_TARGET_DIR),target)/conformance-section.md
docs: build
	sed -n '/^<!-- conformance:begin -->$$/,/^<!-- conformance:end -->$$/{//!p}' docs/compatibility.md > $(KEEP)
	$(ATOLL) compat > docs/compatibility.md
	./scripts/splice-docs.sh conformance docs/compatibility.md < $(KEEP)
	rm -f $(KEEP)
	$(ATOLL) allowlists | ./scripts/splice-docs.sh allowlists docs/security.md
	ATOLL_UPDATE_DOCS=1 $(CARGO) test --release -p atoll --test attacks

# gVisor's syscall test suite at both levels, its table into
# docs/compatibility.md: GVISOR_SYSCALL_TESTS=DIR-or-TARBALL (scripts/conformance.sh).
conformance: build
	ATOLL=$(ATOLL) ./scripts/conformance.sh

bench: build
	ATOLL=$(ATOLL) ./bench/run.sh

clean:
	$(CARGO) clean
