#!/usr/bin/env bash
# Copies GoogleTest's source (Debian's googletest package, pinned by
# scripts/install-deps.sh) into .deps/googletest, the ignored folder that
# scripts/gpu-check.sh builds the tests from on a machine without a registry.
# Run it here, then name .deps in the device call's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d /usr/src/googletest ] || { echo "fetch-gpu-deps: /usr/src/googletest not found (Debian's googletest)" >&2; exit 1; }
rm -rf .deps/googletest
mkdir -p .deps
cp -r /usr/src/googletest .deps/googletest
echo "fetch-gpu-deps: .deps/googletest ready ($(du -sh .deps/googletest | cut -f1))"
