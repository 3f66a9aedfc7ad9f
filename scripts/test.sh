#!/usr/bin/env bash
# Builds everything and runs the test suite through CTest. Without a GPU the
# GPU tests print "no GPU" and skip; the CPU tests always run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-$(nproc)}"
