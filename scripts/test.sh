#!/usr/bin/env bash
# Builds everything and runs the test suite through CTest. Without a GPU the
# GPU tests print "no GPU" and skip; the CPU tests always run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-$(nproc)}"
# CTest keeps a skipped test's output to itself: show why the GPU tests skipped.
grep -h "skipping GPU tests" "${BUILD_DIR:-build}/Testing/Temporary/LastTest.log" 2>/dev/null | head -1 || true
