# atoll: the two Quick start commands are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# The release binary, where cargo puts it (CARGO_TARGET_DIR moves it).
ATOLL := $(or $(CARGO_TARGET_DIR),target)/release/atoll
BUNDLE := target/default-bundle
# `make run` runs the default bundle in the sandbox (the userspace level);
# ISOLATION=native runs it on the host kernel, runc-style.
ISOLATION ?= userspace
# Global flags for that run (e.g. --debug, --root DIR).
ATOLL_FLAGS ?=
# What proves where the workload runs: the kernel it talks to (uname), that
# kernel's log (dmesg), and /proc as it sees it (processes, status, memory).
DEMO := sh -c 'echo "== uname -a: the kernel this shell talks to"; uname -a; \
  echo "== dmesg: the log of that kernel"; dmesg 2>&1 | head -n 6; \
  echo "== ps: the processes its /proc shows"; ps -o pid,user,comm; \
  echo "== /proc/self/status"; grep -E "^(Pid|PPid|NoNewPrivs|Seccomp|CapEff):" /proc/self/status; \
  echo "== /proc/meminfo"; head -n 2 /proc/meminfo'

.PHONY: deps deps-all build run test test-vm vm-e2e lint docs conformance cpython-table bench bench-vm clean fuzz fuzz-smoke

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
	@echo "== atoll --isolation $(ISOLATION) run (the other level: make run ISOLATION=$(if $(filter native,$(ISOLATION)),userspace,native))"
	@$(ATOLL) $(ATOLL_FLAGS) --isolation $(ISOLATION) run --bundle $(BUNDLE) atoll-demo-$$$$

# The whole test suite (unit + integration, as root).
# The userspace suites run once more on the ptrace platform with every file
# access through the gofer (the defaults are systrap, wherever the host
# supports it, and direct file access). Then the vm level's end-to-end
# tests (below: 3 to 7 minutes here, in the emulated test VM).
test: deps-all build lint
	$(CARGO) test --release --workspace -- --test-threads=$${TEST_THREADS:-2}
	ATOLL_PLATFORM=ptrace ATOLL_TEST_DIRECTFS=false $(CARGO) test --release -p atoll --test userspace --test userspace_services --test confinement -- --test-threads=$${TEST_THREADS:-2}
	@$(MAKE) --no-print-directory vm-e2e
	./scripts/fuzz.sh smoke

# The vm level's end-to-end tests (tests/vm/) alone: they boot guests,
# inside the QEMU-emulated test VM of scripts/test-vm.sh on hosts whose
# /dev/kvm cannot (minutes per run); ATOLL_VM_DIRECT=1 runs them on a host
# whose /dev/kvm boots guests. The first run downloads and unpacks
# Debian's cloud kernel (scripts/vm-kernel.sh, vm-assets.sh).
test-vm: deps-all
	$(CARGO) build --release -p atoll
	@$(MAKE) --no-print-directory vm-e2e

# (the part `test` and `test-vm` share; needs atoll built)
vm-e2e:
	# The guest agent is in the initramfs: rebuilt here, or test-vm.sh
	# would boot the agent of the last asset build.
	./scripts/vm-assets.sh $(or $(CARGO_TARGET_DIR),target)/vm-assets
	ATOLL=$(ATOLL) ./tests/vm/run.sh

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

# Regenerates the docs that come from code (keeping the table `make
# cpython-table` wrote; docs/conformance.md comes from `make conformance`).
KEEP := $(or $(CARGO_TARGET_DIR),target)/kept-section.md
docs: build
	cp docs/compatibility.md $(KEEP).doc
	$(ATOLL) compat > docs/compatibility.md
	sed -n "/^<!-- cpython:begin -->\$$/,/^<!-- cpython:end -->\$$/{//!p}" $(KEEP).doc > $(KEEP)
	./scripts/splice-docs.sh cpython docs/compatibility.md < $(KEEP)
	rm -f $(KEEP) $(KEEP).doc
	$(ATOLL) --isolation userspace allowlists | ./scripts/splice-docs.sh allowlists docs/security.md
	$(ATOLL) --isolation vm allowlists | ./scripts/splice-docs.sh vm-allowlists docs/security.md
	ATOLL_UPDATE_DOCS=1 $(CARGO) test --release -p atoll --test attacks

# gVisor's syscall test suite at both levels (and at runsc with RUNSC=PATH),
# generating docs/conformance.md: GVISOR_SYSCALL_TESTS=DIR-or-TARBALL
# (scripts/conformance.sh).
conformance: build
	ATOLL=$(ATOLL) ./scripts/conformance.sh

# CPython's regression tests for its OS-facing modules at both levels, the
# per-module table into docs/compatibility.md (scripts/cpython-tests.py;
# the first run builds the Debian runtimes rootfs).
cpython-table: build
	ATOLL=$(ATOLL) ./scripts/cpython-tests.py

bench: build
	ATOLL=$(ATOLL) ./bench/run.sh
	ATOLL=$(ATOLL) ./bench/pod.sh

# The vm level's figures (bench/vm.sh), inside the QEMU-emulated test VM
# of scripts/test-vm.sh: boot to first output, exec round trip, the VMM's
# memory beyond guest RAM, VM exits, QEMU -M microvm booting the same
# kernel. Printed only: `make bench` (bench/run.sh's vm section) measures
# the same and writes it into docs/benchmarks.md.
bench-vm: deps-all
	$(CARGO) build --release -p atoll -p atoll-vmm
	ATOLL=$(ATOLL) ./bench/vm.sh

clean:
	$(CARGO) clean
