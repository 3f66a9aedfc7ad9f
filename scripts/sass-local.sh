#!/usr/bin/env bash
# SASS of the seesaw decode kernel without a GPU: compiles one kernel file to a
# cubin with the local nvcc and dumps the kernel with cuobjdump (NVIDIA's pinned
# nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm wheels, fetched into the
# ignored build-sass/ once; not .deps/, which travels to the GPU machine).
#   scripts/sass-local.sh [bf16|fp16] [out.sass]
# Prints what to check before a device run: registers and spills (ptxas -v),
# wgmma serialisation warnings, HGMMA count, generic (LD.E/ST.E) vs shared
# (LDS/STS) accesses, local memory.
set -euo pipefail
cd "$(dirname "$0")/.."
dtype=${1:-bf16}
out=${2:-/tmp/openmla-seesaw-$dtype.sass}
bin=build-sass/cuda-tools/nvidia/cu13/bin
tool=$bin/cuobjdump
if [ ! -x "$tool" ] || [ ! -x "$bin/nvdisasm" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps -d "$tmp" "nvidia-cuda-cuobjdump==13.5.37" "nvidia-cuda-nvdisasm==13.5.37"
  mkdir -p build-sass/cuda-tools
  for w in "$tmp"/*.whl; do python3 -m zipfile -e "$w" build-sass/cuda-tools; done
  chmod +x "$bin"/*
  rm -rf "$tmp"
fi
export PATH="$PWD/$bin:$PATH"
case $dtype in bf16 | fp16) ;; *) echo "sass-local: dtype is bf16 or fp16" >&2; exit 2 ;; esac
cubin=$(mktemp --suffix=.cubin)
log=$(nvcc -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Isrc -Iinclude \
  -Xptxas -v -cubin -o "$cubin" "src/kernels/sm90/dense_decode/dense_decode_$dtype.cu" 2>&1)
echo "$log" | grep -A3 "Compiling entry.*seesaw" | grep -E "entry|spill|Used" |
  sed 's/^ *//;s/^ptxas info *: //;s/Compiling entry function .*seesaw_kernel/seesaw_kernel/;s/EEv14CU.*//' || true
# wgmma serialised by ptxas (C7510-C7520) is the costliest silent failure.
serial=$(echo "$log" | grep "seesaw" | grep -c "serialized" || true)
echo "sass-local: ptxas serialisation warnings in the seesaw kernels: $serial"
echo "$log" | grep "seesaw" | grep "serialized" | sed 's/ in the function.*//' | sort -u || true
# Every instantiation of the seesaw kernel, one after another.
"$tool" -sass "$cubin" | awk '/Function : /{keep = index($0, "dense_decode_seesaw_kernel") > 0} keep' > "$out"
rm -f "$cubin"
count() { grep -cE "[^A-Z.]$1[ .]" "$out" || true; }
echo "sass-local: $out ($(grep -c 'Function : ' "$out") kernels): HGMMA=$(count HGMMA) LD.E=$(count 'LD\.E')" \
     "ST.E=$(count 'ST\.E') LDS=$(count LDS) STS=$(count STS) LDL=$(count LDL) STL=$(count STL) MUFU=$(count MUFU)"
