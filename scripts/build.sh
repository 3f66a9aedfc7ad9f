#!/usr/bin/env bash
# Configures and builds everything (library, kernels, tests, openmla-bench)
# into ${BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$PATH:/usr/local/cuda/bin"
BUILD_DIR=${BUILD_DIR:-build}
extra=()
[ -n "${OPENMLA_GTEST_SRC:-}" ] && extra+=("-DOPENMLA_GTEST_SRC=${OPENMLA_GTEST_SRC}")
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" "$@"
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}"
