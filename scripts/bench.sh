#!/usr/bin/env bash
# Builds and runs openmla-bench (arguments are passed on, e.g. --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
exec "${BUILD_DIR:-build}/tools/openmla-bench" "$@"
