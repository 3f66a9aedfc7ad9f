#!/usr/bin/env bash
# one-off: build, steal tests, default suite, A/B steal on/off (untracked; deleted before commit)
set -uo pipefail
cd "$(dirname "$0")"
S=$OUT/summary.txt; : > $S
export PATH="$PATH:/usr/local/cuda/bin"
STAGES=build OPENMLA_COMMIT=${OPENMLA_COMMIT:-x} bash scripts/gpu-check.sh $OUT/check >> $S 2>&1
T=build-gpu/tests/gpu/openmla_gpu_tests
timeout 120 $T --gtest_filter='Steal.*' > $OUT/steal.log 2>&1; echo "steal tests rc=$?" >> $S
grep -E "^\[ case|FAILED|PASSED|OK \]" $OUT/steal.log | cut -c1-220 >> $S
B=build-gpu/tools/openmla-bench
CASES="--case b128_sq1_sk4096_hq16 --case b128_sq1_sk16384_hq16 --case b128_sq1_sk4096_hq64 --case b8_sq1_sk1024_hq16"
for r in 1 2; do for v in 1 0; do
  OPENMLA_STEAL=$v timeout 100 $B --only-cli $CASES --quick --no-check --json $OUT/ab-s$v-r$r.json > $OUT/ab-s$v-r$r.log 2>&1
  echo "== steal=$v r$r rc=$?" >> $S; grep -E '^\| b' $OUT/ab-s$v-r$r.log | cut -d'|' -f2,4,8,9 >> $S
done; done
if [ "${FULL:-1}" = 1 ]; then
  timeout 200 $T > $OUT/suite.log 2>&1; echo "default suite rc=$?" >> $S
  grep -E "FAILED|PASSED|tests ran" $OUT/suite.log | head -30 >> $S
fi
tar -czf $OUT/logs.tgz -C $OUT check steal.log suite.log $(cd $OUT && ls ab-*.log) 2>/dev/null
