#!/usr/bin/env bash
# One device call that fits its time: an A/B (scripts/gpu-ab.sh, when VARIANTS
# is set) for at most AB_BUDGET seconds, then scripts/gpu-check.sh with what is
# left of RUN_BUDGET, then both output folders packed as $OUT/ab.tgz and
# $OUT/check.tgz (a call brings back only a few files). Device time is short
# and a refused start costs 90-180 s of it, so one call should carry all of a
# change's checks; the budgets keep a slow stage from eating the packing.
#   RUN_BUDGET=560 AB_BUDGET=150 OPENMLA_COMMIT=<sha>
#   VARIANTS, CASES, ROUNDS, BENCH_ARGS: as gpu-ab.sh (BENCH_ARGS defaults to
#     "--quick --no-check --warmup 5 --repeats 80" here)
#   CHECK_STAGES (default "build tests"), PASSES, PATCH, *_FILTER: as gpu-check.sh
#   (its STAGES and BENCH_ARGS are its own: CHECK_BENCH_ARGS)
set -u
cd "$(dirname "$0")/.."
t0=$(date +%s)
RUN_BUDGET=${RUN_BUDGET:-560}
left() { echo $(( RUN_BUDGET - ($(date +%s) - t0) )); }
OUT_DIR=${1:-${OUT:-/tmp/openmla-gpu-call}}
mkdir -p "$OUT_DIR"
log="$OUT_DIR/call.txt"
: > "$log"
if [ -n "${VARIANTS:-}" ]; then
  ab_budget=${AB_BUDGET:-150}
  BENCH_ARGS=${BENCH_ARGS:-"--quick --no-check --warmup 5 --repeats 80"} \
    timeout "$ab_budget" bash scripts/gpu-ab.sh "$OUT_DIR/ab" > "$OUT_DIR/ab.log" 2>&1
  echo "ab: rc $? after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  cp "$OUT_DIR/ab.log" "$OUT_DIR/ab/" 2>/dev/null
  grep -vE "^(tar|ptxas|nvcc)" "$OUT_DIR/ab.log" | tail -80
fi
if [ "$(left)" -gt 40 ] && [ "${CHECK_STAGES:-build tests}" != none ]; then
  STAGES=${CHECK_STAGES:-"build tests"} BENCH_ARGS=${CHECK_BENCH_ARGS:-} \
    timeout $(( $(left) - 15 )) bash scripts/gpu-check.sh "$OUT_DIR/check" > "$OUT_DIR/check.log" 2>&1
  echo "check: rc $? after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  cp "$OUT_DIR/check.log" "$OUT_DIR/check/" 2>/dev/null
  cat "$OUT_DIR/check/summary.txt" 2>/dev/null
fi
cd "$OUT_DIR" || exit 1
for d in ab check; do
  [ -d "$d" ] && tar -czf "$d.tgz" "$d" && rm -rf "$d" "$d.log"
done
cat "$log"
