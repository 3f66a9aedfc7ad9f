#!/usr/bin/env bash
# Installs what the build needs on a Debian 12 machine that has the CUDA 13
# toolkit: CMake, Ninja, GoogleTest (Debian's pinned versions). Skips anything
# already present, so it needs no network on a machine that has them.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=("cmake=3.25.1-1")
command -v ninja >/dev/null || need+=("ninja-build=1.11.1-2~deb12u1")
[ -f /usr/include/gtest/gtest.h ] || [ -n "${OPENMLA_GTEST_SRC:-}" ] || need+=("libgtest-dev=1.12.1-0.2" "googletest=1.12.1-0.2")
command -v g++ >/dev/null || need+=("g++")
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || {
  echo "install-deps: the CUDA 13 toolkit (nvcc) is required and not found" >&2; exit 1; }
