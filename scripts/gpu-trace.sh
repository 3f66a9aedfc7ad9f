#!/usr/bin/env bash
# On the GPU machine: build the library with OPENMLA_SEESAW_TRACE and
# tools/dev/seesaw_trace.cu, then print the seesaw timeline of CTA (0, 0) for
# each case ("h_q batch s_k"). Output under $1 (or $OUT)/trace.
#   TRACE_CASES="16 8 1024;128 1 4096"   TRACE_ENV="TRACE_ALL=1"
#   TRACE_FLAGS="-DFOO=1" (more CUDA flags; each set builds in its own folder)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
dir=${1:-${OUT:-/tmp}}/trace; mkdir -p "$dir"
t0=$(date +%s)
flags="-DOPENMLA_SEESAW_TRACE ${TRACE_FLAGS:-}"
bdir=/tmp/build-trace-$(echo "$flags" | md5sum | cut -c1-8)
{ cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOPENMLA_BUILD_TESTS=OFF \
    -DOPENMLA_BUILD_TOOLS=OFF "-DCMAKE_CUDA_FLAGS=$flags" &&
  ninja -C "$bdir" -j 16 &&
  nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src tools/dev/seesaw_trace.cu \
    "$bdir/libopenmla.a" -lcuda -o "$bdir/seesaw_trace"; } > "$dir/build.log" 2>&1 ||
  { tail -30 "$dir/build.log"; exit 1; }
echo "trace build ($flags): $(( $(date +%s) - t0 )) s"
IFS=';' read -ra cases <<< "${TRACE_CASES:-16 8 1024;128 1 4096;128 1 32768;128 128 4096;16 128 4096}"
for c in "${cases[@]}"; do
  echo "== h_q batch s_k = $c ${TRACE_ENV:-TRACE_ALL=1}"
  env ${TRACE_ENV:-TRACE_ALL=1} "$bdir/seesaw_trace" $c
done 2>&1 | tee "$dir/trace.txt"
