#!/usr/bin/env bash
# Installs the Debian packages atoll needs to build, test and benchmark.
# Idempotent: only missing packages are installed.
set -euo pipefail

# build: libseccomp for libcontainer's seccomp support; gcc and glibc's
# static libraries for the C programs of the tests and benchmarks (-static)
BUILD=(libseccomp-dev pkg-config gcc libc6-dev)
# protoc: the CRI client of the ecosystem tests (k8s-cri) is generated at build
TESTBUILD=(protobuf-compiler)
# the default image and test workloads
IMAGES=(busybox-static debootstrap)
# the vm level's guest assets (scripts/vm-assets.sh): Debian's cloud kernel
# is unpacked (lz4-compressed bzImage payload), the initramfs made with
# busybox's cpio
VMASSETS=(lz4 perl)
# peers and clients the tests and benchmarks drive
PEERS=(runc hyperfine wrk iproute2 procps strace)
# fuzzing (scripts/fuzz.sh, run by make test): libfuzzer-sys compiles libFuzzer in C++
FUZZ=(g++)
# the daemons the ecosystem tests drive (containerd + its CNI plugins,
# podman + conmon, Docker): installed by `make test` (--all), not `make run`
ECOSYSTEM=(containerd podman conmon docker.io containernetworking-plugins)
# the test VM the vm level's tests run in (scripts/test-vm.sh): QEMU
# emulating an SVM-capable CPU in software; e2fsprogs makes its root disk
TESTVM=(qemu-system-x86 e2fsprogs)

want=("${BUILD[@]}" "${TESTBUILD[@]}" "${IMAGES[@]}" "${VMASSETS[@]}" "${PEERS[@]}" "${FUZZ[@]}")
if [ "${1:-}" = "--all" ]; then
  want+=("${ECOSYSTEM[@]}" "${TESTVM[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
