#!/usr/bin/env bash
# One call on the GPU machine: build from a clean tree, run the GPU and CPU
# tests, the benchmark and the Python suite; logs and JSON go to $1 (or $OUT).
# That machine has nvcc, CMake, ninja and PyTorch but no package registry:
# GoogleTest's source travels with the call in .deps/googletest (copied from
# Debian's googletest package by scripts/fetch-gpu-deps.sh).
#
# The device copy's git metadata can be older than the tree it carries (it
# read the session's starting commit, +dirty): pass OPENMLA_COMMIT=<sha> in
# the call so the bench JSON names the commit actually run.
#
#   STAGES="build tests bench python"  (default: all; also: bench-fused,
#                                      the same bench with OPENMLA_MERGE=kernel)
#   BENCH_ARGS="..."                   extra openmla-bench arguments
#   NOMC_FILTER, FUSED_FILTER, MERGE_FILTER, SPLIT_FILTER, LEGACY_FILTER: gtest
#   filters of the extra passes. Timings on an H200 (2026-12-03): build ~30 s,
#   the default suite ~90 s, a full extra pass ~80-90 s, Special* ~45 s,
#   so "build tests" (~540 s) fills one 600 s call and the bench needs another.
#   PASSES="default nomc fused merge split legacy"  (default: all) the test
#   passes to run, so that one call fits an A/B and the passes a change meets.
#   PATCH=bench/patches/x.patch       applied to this copy first (git apply); the
#   summary's commit line names it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/openmla-gpu-check}}
mkdir -p "$OUT_DIR"
STAGES=${STAGES:-"build tests bench python"}
BUILD_DIR=${BUILD_DIR:-build-gpu}
export PATH="$PATH:/usr/local/cuda/bin"
summary="$OUT_DIR/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }
PASSES=${PASSES:-"default nomc fused merge split legacy"}
pass() { [[ " $PASSES " == *" $1 "* ]]; }
status=0
# run_pass LABEL LOG SECONDS "VAR=value ..." [gtest arguments]: one extra GPU
# test pass under those variables, logged to $OUT_DIR/LOG.log; its verdict and
# gtest's totals go to the summary.
run_pass() {
  local label=$1 log=$OUT_DIR/$2.log limit=$3 vars=$4
  shift 4
  # shellcheck disable=SC2086  # vars is a list of assignments
  if env $vars timeout "$limit" "$BUILD_DIR/tests/gpu/openmla_gpu_tests" "$@" > "$log" 2>&1; then
    note "gpu tests, $label: ok"; else note "gpu tests, $label: FAILED"; status=1; fi
  grep -E "^\[  (PASSED|FAILED)|^\[  SKIPPED \] +[0-9]|tests ran" "$log" | head -10 | tee -a "$summary"
}
if [ -n "${PATCH:-}" ]; then
  git apply "$PATCH" || { echo "gpu-check: $PATCH does not apply" | tee -a "$summary"; exit 1; }
fi

nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.limit,temperature.gpu --format=csv >> "$summary" 2>&1
note "commit ${OPENMLA_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')}${PATCH:+ + $PATCH}"

if has build; then
  t0=$(date +%s)
  gtest=()
  [ -d .deps/googletest ] && gtest=("-DOPENMLA_GTEST_SRC=$PWD/.deps/googletest")
  if cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOPENMLA_PTXAS_VERBOSE=ON "${gtest[@]}" \
       > "$OUT_DIR/build.log" 2>&1 && cmake --build "$BUILD_DIR" -j 16 >> "$OUT_DIR/build.log" 2>&1; then
    note "build: ok ($(( $(date +%s) - t0 )) s)"
  else
    note "build: FAILED"; tail -40 "$OUT_DIR/build.log"; exit 1
  fi
  grep -A2 -E "dense_decode_(seesaw_|wgmma_)?kernel" "$OUT_DIR/build.log" | grep -E "Used [0-9]+ registers|spill" | sort -u | sed "s/^/ptxas: /" | tee -a "$summary"
  lib="$BUILD_DIR/libopenmla.a"
  if command -v cuobjdump >/dev/null && [ -f "$lib" ]; then
    cuobjdump --dump-sass "$lib" > "$BUILD_DIR/sass.txt" 2>/dev/null
    note "sass: HGMMA=$(grep -c HGMMA "$BUILD_DIR/sass.txt") HMMA=$(grep -c HMMA "$BUILD_DIR/sass.txt") LDL=$(grep -c 'LDL' "$BUILD_DIR/sass.txt") STL=$(grep -c 'STL' "$BUILD_DIR/sass.txt")"
  fi
fi

if has tests; then
  if ctest --test-dir "$BUILD_DIR" --output-on-failure -j 4 -E gpu > "$OUT_DIR/tests.log" 2>&1; then
    note "cpu tests: ok"; else note "cpu tests: FAILED"; status=1; fi
  if pass default; then
    if timeout 420 "$BUILD_DIR/tests/gpu/openmla_gpu_tests" ${GTEST_ARGS:-} >> "$OUT_DIR/tests.log" 2>&1; then
      note "gpu tests: ok"; else note "gpu tests: FAILED"; status=1; fi
  fi
  # The whole suite without multicast and column halves (the full-width
  # kernel every grid that cannot pair runs; the default run above gives it
  # only the shapes with an odd number of row tiles, and runs halves on the
  # small grids), then the opt-in merge inside the decode kernel (which
  # multicast and halves would turn off) on the special, graph and plan cases.
  if pass nomc; then
    run_pass "OPENMLA_MULTICAST=0" tests-nomc 420 "OPENMLA_MULTICAST=0 OPENMLA_SPLIT_COLUMNS=0" \
      --gtest_filter="${NOMC_FILTER:-*}"
  fi
  if pass fused; then
    run_pass "OPENMLA_MERGE=kernel" tests-fused 200 "OPENMLA_MULTICAST=0 OPENMLA_SPLIT_COLUMNS=0 OPENMLA_MERGE=kernel" \
      --gtest_filter="${FUSED_FILTER:-Special*:Dtypes*:Plan*:Graph*}"
  fi
  # The default merges two-segment requests in the decode kernel where a kv
  # head has <= 4 row tiles; the whole suite again with one way forced for
  # every shape (MERGE_RUN=combine by default; =pair covers the taller shapes;
  # MERGE_FILTER narrows it).
  # Column halves off there too: the default uses them on every grid that
  # fills at most half the SMs (most of the suite's small cases), so this is
  # where the full-width kernel meets those shapes.
  if pass merge; then
    mr=${MERGE_RUN:-combine}
    run_pass "OPENMLA_MERGE=$mr OPENMLA_SPLIT_COLUMNS=0" "tests-merge-$mr" 420 "OPENMLA_MERGE=$mr OPENMLA_SPLIT_COLUMNS=0" \
      --gtest_filter="${MERGE_FILTER:-*}"
  fi
  # And column halves on every seesaw call, the large grids included (not
  # the forced-multicast tests: their grids are too large to pair as halves).
  if pass split; then
    run_pass "OPENMLA_SPLIT_COLUMNS=force" tests-split 420 "OPENMLA_SPLIT_COLUMNS=force" \
      --gtest_filter="${SPLIT_FILTER:-*}:-Multicast.*"
  fi
  # The older kernels, one process each (OPENMLA_DENSE_KERNEL is read once a
  # process): their refusal of forced multicast and halves, and their own
  # results on the special cases (they write partials and outputs their own
  # way; ~45 s each on an H200).
  if pass legacy; then
    for k in wgmma mma_sync; do
      run_pass "OPENMLA_DENSE_KERNEL=$k" "tests-$k" 200 "OPENMLA_DENSE_KERNEL=$k" \
        --gtest_filter="SplitColumns*:Multicast.*:${LEGACY_FILTER:-Special*}"
    done
  fi
  grep -E "^\[  (PASSED|FAILED)|tests ran|FAILED" "$OUT_DIR/tests.log" | head -30 | tee -a "$summary"
fi

if has bench; then
  if timeout 300 "$BUILD_DIR/tools/openmla-bench" --json "$OUT_DIR/bench.json" ${BENCH_ARGS:-} > "$OUT_DIR/bench.log" 2>&1; then
    note "bench: ok"; else note "bench: FAILED"; status=1; fi
  tail -30 "$OUT_DIR/bench.log"
fi

if has bench-fused; then
  if OPENMLA_MULTICAST=0 OPENMLA_MERGE=kernel timeout 300 "$BUILD_DIR/tools/openmla-bench" --json "$OUT_DIR/bench-fused.json" \
       ${BENCH_ARGS:-} > "$OUT_DIR/bench-fused.log" 2>&1; then
    note "bench (OPENMLA_MERGE=kernel): ok"; else note "bench (OPENMLA_MERGE=kernel): FAILED"; status=1; fi
  grep -E '^\| b' "$OUT_DIR/bench-fused.log" | cut -d'|' -f2,4,8,9 | tee -a "$summary"
fi

if has python; then
  t0=$(date +%s)
  prebuilt=()
  [ -f "$BUILD_DIR/libopenmla.a" ] && prebuilt=(env "OPENMLA_PREBUILT_LIB=$PWD/$BUILD_DIR/libopenmla.a")
  if "${prebuilt[@]}" python3 -m pip install --no-build-isolation --no-deps -v ./python > "$OUT_DIR/python.log" 2>&1; then
    note "python install: ok ($(( $(date +%s) - t0 )) s)"
    if timeout 400 python3 -m pytest -q python/tests >> "$OUT_DIR/python.log" 2>&1; then
      note "python tests: ok"; else note "python tests: FAILED"; status=1; fi
    if python3 python/examples/flashmla_style.py >> "$OUT_DIR/python.log" 2>&1; then
      note "python example (FlashMLA-style script): ok"; else note "python example: FAILED"; status=1; fi
  else
    note "python install: FAILED"; status=1
  fi
  grep -E "passed|failed|error" "$OUT_DIR/python.log" | tail -5 | tee -a "$summary"
fi

cat "$summary"
exit $status
