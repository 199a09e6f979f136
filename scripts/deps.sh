#!/usr/bin/env bash
# Installs the Debian packages atoll needs to build, test and benchmark.
# Idempotent: only missing packages are installed.
set -euo pipefail

# build: libseccomp for libcontainer's seccomp support
BUILD=(libseccomp-dev pkg-config)
# the default image and test workloads
IMAGES=(busybox-static debootstrap)
# peers and clients the tests and benchmarks drive
PEERS=(runc hyperfine iproute2 procps strace)
# the ecosystem tests (issue: containerd, podman, docker)
ECOSYSTEM=(containerd podman docker.io containernetworking-plugins)

want=("${BUILD[@]}" "${IMAGES[@]}" "${PEERS[@]}")
if [ "${1:-}" = "--all" ]; then
  want+=("${ECOSYSTEM[@]}")
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
