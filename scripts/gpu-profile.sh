#!/usr/bin/env bash
# Profiling on the GPU machine: per-kernel ncu figures (no cache flush, clocks
# left alone) for a few bench cases, and the combine kernel's SASS.
#   CASES="b1_sq1_sk32768_hq128 ..."  METRICS=...  SECTIONS="--set detailed"
#   DEFS="-DOPENMLA_MIN_BLOCKS_PER_PART=4": compile definitions of this build
#   (its own build folder), e.g. the b1 combine at half the segments
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/openmla-gpu-profile}}
mkdir -p "$OUT_DIR"
export PATH=$PATH:/usr/local/cuda/bin
DEFS=${DEFS:-}
B=build-p${DEFS:+-$(echo "$DEFS" | md5sum | cut -c1-8)}
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOPENMLA_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="$DEFS" -DCMAKE_CUDA_FLAGS="$DEFS" > "$OUT_DIR/build.log" 2>&1 &&
  cmake --build "$B" -j 16 >> "$OUT_DIR/build.log" 2>&1 || { tail -20 "$OUT_DIR/build.log"; exit 1; }
echo "build: $B ${DEFS:-(no extra definitions)}"
cuobjdump --dump-sass "$B/libopenmla.a" > "$OUT_DIR/sass.txt" 2>/dev/null
M=${METRICS:-gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,sm__cycles_active.avg}
for c in ${CASES:-b1_sq1_sk32768_hq128 b1_sq1_sk4096_hq128 b8_sq1_sk1024_hq16 b128_sq1_sk4096_hq128}; do
  echo "== $c"
  timeout 150 ncu --clock-control none --cache-control none ${SECTIONS:---metrics $M} -k regex:"${KERNELS:-seesaw|combine}" \
    --launch-skip 2 --launch-count ${COUNT:-2} "$B/tools/openmla-bench" --only-cli --case "$c" --no-check --quick \
    > "$OUT_DIR/ncu-$c.txt" 2>&1
  grep -E "^  [a-z ]*void|duration|bytes|cycles" "$OUT_DIR/ncu-$c.txt" | sed -E 's/\(CUtensorMap.*//; s/ +/ /g'
done
