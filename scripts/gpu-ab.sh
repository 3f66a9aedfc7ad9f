#!/usr/bin/env bash
# Tuning runs on the GPU machine: builds the library and openmla-bench once per
# variant (extra compile definitions; the builds run side by side), then times
# the same cases with each, so one device call compares them on one card.
#   VARIANTS="base: min2:-DOPENMLA_MIN_BLOCKS_PER_PART=2"  (name:defs, space-separated)
#   CASES="b1_sq1_sk4096_hq128 b8_sq1_sk1024_hq16"       BENCH_ARGS="--quick --no-check"
#   ROUNDS=2: time the variants in turn, that many times (clocks drift over a call)
#   Under the 700 W cap (h_q 128) compare joules a step: BENCH_ARGS="--quick --no-check --warmup 5
#   --repeats 80" gives timed windows long enough for NVML's energy counter (bench/NOTES.md, 2026-12-07).
#   A variant "name@VAR=value:defs" also runs its bench with that environment;
#   "name#tree.tar:defs" builds from that tarball instead of this tree (e.g.
#   `git archive -o main.tar main`, left untracked so it travels with the call);
#   "name%bench/patches/x.patch:defs" builds this tree with that patch applied
#   (e.g. VARIANTS="base: idle%bench/patches/combine-idle-exit.patch:").
# Logs and JSON go to $1 (or $OUT).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/openmla-gpu-ab}}
mkdir -p "$OUT_DIR"
export PATH="$PATH:/usr/local/cuda/bin"
case_args=()
for c in ${CASES:?CASES is empty}; do case_args+=(--case "$c"); done
built=()
declare -A envs dirs pids srcs defs_of log_of
names=()
# Every variant's build runs at once: each has two long translation units (the
# bf16 and fp16 decode kernels, ~25 s each) and 16 cores, so two or three
# builds side by side take about as long as one.
for v in ${VARIANTS:-base:}; do
  name=${v%%:*}; defs=${v#*:}; defs=${defs//,/ }
  env_of=""; src=.
  if [[ $name == *@* ]]; then env_of=${name#*@}; name=${name%%@*}; fi
  if [[ $name == *%* ]]; then
    patch_file=$PWD/${name#*%}; name=${name%%\%*}; src=/tmp/openmla-ab-src-$name
    rm -rf "$src"; mkdir -p "$src"
    tar -c --exclude='./build*' --exclude='./.git' --exclude='./.deps' . | tar -x -C "$src"
    if ! (cd "$src" && git apply "$patch_file"); then echo "$name: $patch_file does not apply"; continue; fi
  elif [[ $name == *#* ]]; then
    tar=${name#*#}; name=${name%%#*}; src=/tmp/openmla-ab-src-$name
    rm -rf "$src"; mkdir -p "$src"
    if ! tar -xf "$tar" -C "$src"; then echo "$name: cannot unpack $tar"; continue; fi
  fi
  envs[$name]=$env_of
  # Variants that differ only in their environment share one build.
  key=$(echo "$src|$defs" | md5sum | cut -c1-8)
  dir=$PWD/build-ab-$key
  dirs[$name]=$dir
  names+=("$name")
  [ -n "${srcs[$key]:-}" ] && continue
  srcs[$key]=$src; defs_of[$key]=$defs; log_of[$key]=$OUT_DIR/build-$name.log
done
# Started once every source tree is copied (a build writing here would change
# the tree under tar).
for key in "${!srcs[@]}"; do
  (cmake -S "${srcs[$key]}" -B "$PWD/build-ab-$key" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOPENMLA_BUILD_TESTS=OFF \
     -DCMAKE_CXX_FLAGS="${defs_of[$key]}" -DCMAKE_CUDA_FLAGS="${defs_of[$key]}" > "${log_of[$key]}" 2>&1 &&
   cmake --build "$PWD/build-ab-$key" -j 16 --target openmla-bench >> "${log_of[$key]}" 2>&1) &
  pids[$key]=$!
done
declare -A ok
for key in "${!pids[@]}"; do wait "${pids[$key]}" && ok[$key]=1; done
for name in "${names[@]}"; do
  key=${dirs[$name]##*-}
  if [ -n "${ok[$key]:-}" ]; then built+=("$name"); continue; fi
  echo "$name: build FAILED"; tail -20 "$OUT_DIR/build-$name.log" 2>/dev/null
done
for round in $(seq 1 "${ROUNDS:-1}"); do
  for name in "${built[@]}"; do
    tag=$name-r$round
    env ${envs[$name]} "${dirs[$name]}/tools/openmla-bench" --only-cli "${case_args[@]}" ${BENCH_ARGS:---quick --no-check} \
      --json "$OUT_DIR/ab-$tag.json" > "$OUT_DIR/ab-$tag.log" 2>&1 || echo "$tag: bench FAILED"
    echo "== $tag ${envs[$name]}"
    # case | us | % tensor | max_abs_err | SM MHz | W over the window | mJ a step (the last two
    # only for timed windows of >= 0.5 s, e.g. BENCH_ARGS="--quick --no-check --warmup 5 --repeats 80")
    python3 - "$OUT_DIR/ab-$tag.json" <<'PY' 2>/dev/null || grep -E '^\| b' "$OUT_DIR/ab-$tag.log" | cut -d'|' -f2,4,8,9,11
import json, sys
def cell(v, f):
    return "-" if v is None else f % v
for c in json.load(open(sys.argv[1]))["cases"]:
    k = c.get("clocks") or {}
    print(" %s | %s | %s | %s | %s | %s | %s" % (c["name"], cell(c.get("us"), "%.2f"), cell(c.get("pct_tensor"), "%.1f"),
          cell(c.get("max_abs_err"), "%.2e"), cell(k.get("sm_mhz_median"), "%.0f"), cell(k.get("power_w_window"), "%.0f"),
          cell(c.get("mj_per_step"), "%.1f")))
PY
  done
done
