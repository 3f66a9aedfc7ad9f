// Merges a request's split-KV partials by their LSE, and writes the rows the
// decode kernel does not: requests with no cached token (out 0, lse +inf) and,
// after a bad plan, NaN everywhere so a bad length never passes silently.
//
// CTA = (combine-list entry, tile, column slice of one 256-column half). The
// planner lists the requests to write (kernels see them as CombineEntry), so
// no CTA is launched for a request the decode kernel wrote, and the entry
// holds all the CTA needs: the header and entry loads go out together, then
// every partial and LSE load of the slice at once (clamped indices, no branch
// around them, so they stay in flight), merged online (running max and sum
// per row: no separate LSE pass, no barrier before the partial loads). Each
// dependent round trip to memory costs about a microsecond, the whole budget
// of a small batch. With one or two tile-entries (b1) a CTA has kSplit
// groups of 128 threads that take alternate runs of segments and merge
// through shared memory at the end (b1 s_k 32768 h128: 58 segments a row).
#ifndef OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_
#define OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/partials.cuh"
#include "kernels/common/ptx.cuh"

namespace openmla::kernels::combine {

#ifdef OPENMLA_SEESAW_TRACE
// Trace builds only (tools/dev/seesaw_trace.cu, TRACE_CTAS=1): each CTA's
// globaltimer at entry, once the plan header and its entry are in, once the
// grid-dependency wait returned and at its end (stores issued), whether it
// merged anything, and the decode launch it followed (the seesaw kernel's
// CTA (0, 0) counts launches in stats word kStatsTraceLaunchWord after its wait),
// in two buffers by that count's parity: the tool compares one launch's
// combine with the next launch's decode.
constexpr int kTraceCombineCtas = 8192;
__device__ long long g_combine_cta[2][kTraceCombineCtas][6];
#define COMBINE_TRACE(buf, slot, val)                                                             \
  do {                                                                                            \
    const unsigned cta_ = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;         \
    if (threadIdx.x == 0 && cta_ < kTraceCombineCtas) g_combine_cta[(buf) & 1][cta_][slot] = (val); \
  } while (0)
#endif

// kGroups float4 column groups a thread (32 / kGroups slices of each 256-column
// half), kUnroll segments in flight a thread, kSplit groups of 128 threads.
template <int kGroups, int kUnroll, int kSplit>
struct Config {
  static constexpr int kThreads = 128 * kSplit;
  static constexpr int kSlices = 32 / kGroups;
  static constexpr int kMinBlocks = kSplit == 1 ? 4 : 1;  // <= 128 registers a thread either way
};

__device__ __forceinline__ float exp_or_zero(float x, float m) { return x == -INFINITY ? 0.f : __expf(x - m); }

// One row's running merge state.
struct RowMerge {
  float m = -INFINITY, sum = 0.f;
  // Moves the max to mb (>= m); returns the factor the accumulators take.
  __device__ __forceinline__ float rebase(float mb) {
    const float f = exp_or_zero(m, mb);  // m = -inf: nothing accumulated yet
    sum *= f;
    m = mb;
    return f;
  }
};

template <typename T, int kGroups>
__device__ __forceinline__ void store_rows(const DenseDecodeParams& p, int r, int kv_head, const int (&row)[2],
                                           int col0, bool write_lse, const float (&acc)[kGroups][4],
                                           const float (&lse)[2]) {
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    if (row[k] >= p.rows) continue;
    const int s = row[k] / p.group, h = kv_head * p.group + row[k] % p.group;
    T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
              (int64_t)h * p.o_stride_h + col0;
#pragma unroll
    for (int g = 0; g < kGroups; ++g)
      *reinterpret_cast<uint32_t*>(orow + g * 8) = ptx::pack2<T>(acc[g][2 * k], acc[g][2 * k + 1]);
    if (write_lse) p.lse[(int64_t)r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s] = lse[k];
  }
}

template <typename T, int kGroups, int kUnroll, int kSplit>
__global__ void __launch_bounds__(Config<kGroups, kUnroll, kSplit>::kThreads,
                                  Config<kGroups, kUnroll, kSplit>::kMinBlocks)
    combine_kernel(const DenseDecodeParams p) {
  // A programmatic dependent launched after this grid (the next step's
  // decode) may start under OPENMLA_PDL=2: it waits for this grid to finish.
  if (p.pdl == 2) ptx::griddep_launch_dependents();
  constexpr int kAcc = 2 + 2 + 4 * kGroups;  // m, sum, accumulators
  __shared__ float s_part[kSplit > 1 ? kSplit - 1 : 1][kAcc][128];
  const CombineEntry* list = reinterpret_cast<const CombineEntry*>(
      static_cast<const char*>(p.plan) + plan_combine_offset(p.batch, p.num_parts));
  const int tile = blockIdx.y, half = blockIdx.z & 1, q0 = (blockIdx.z >> 1) * kGroups;
  const int row_tile = tile % p.num_row_tiles, kv_head = tile / p.num_row_tiles;
  const int t = threadIdx.x, sub = t / 128, wt = t % 128, warp = wt / 32, lane = t % 32;
  const int row[2] = {row_tile * kRowsPerTile + warp * 16 + lane / 4, row_tile * kRowsPerTile + warp * 16 + lane / 4 + 8};
  const int col0 = half * 256 + q0 * 8 + 2 * (lane % 4);
  const bool write_lse = blockIdx.z == 0 && lane % 4 == 0;

  // Header and first entry in one round trip (gridDim.x <= batch).
  union {
    int4 v[sizeof(PlanHeader) / 16];
    PlanHeader h;
  } u;
#pragma unroll
  for (int i = 0; i < (int)(sizeof(PlanHeader) / 16); ++i) u.v[i] = static_cast<const int4*>(p.plan)[i];
  int4 first = *reinterpret_cast<const int4*>(list + blockIdx.x);
  const bool usable = u.h.error_code == kPlanOk && plan_matches(&u.h, p.batch, p.s_q, p.h_q, p.h_kv, p.num_parts);
  // A CTA with nothing to write (no entry, or only a two-segment one the
  // decode kernel merged) leaves now: b128 launches entries x tiles x 16 CTAs
  // for a handful of split requests, and waiting ones would queue behind the
  // decode's last CTA and hold back the rest of the grid after it. CTA 0
  // always waits, so the grid still never ends before the decode.
  const bool one_entry = (int)(blockIdx.x + gridDim.x) >= u.h.num_combine;
  const bool idle = usable && one_entry &&
                    ((int)blockIdx.x >= u.h.num_combine || (first.z == 2 && p.pair_merge));
  if (idle && (blockIdx.x | blockIdx.y | blockIdx.z) != 0) return;
#ifdef OPENMLA_SEESAW_TRACE
  const long long trace_entry = ptx::globaltimer();
  long long trace_in;  // the clock once the header and the entry are in
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(trace_in) : "r"(u.v[0].x + first.x) : "memory");
#endif
  // Launched as a programmatic dependent of the decode kernel: the plan was
  // complete before that kernel started, its partials and rows are not
  // until here.
  ptx::griddep_wait();
#ifdef OPENMLA_SEESAW_TRACE
  const int trace_launch = threadIdx.x == 0 ? *reinterpret_cast<volatile int*>(p.steal_stats + kStatsTraceLaunchWord) : 0;
  COMBINE_TRACE(trace_launch, 0, trace_entry);
  COMBINE_TRACE(trace_launch, 1, trace_in);
  COMBINE_TRACE(trace_launch, 2, ptx::globaltimer());
  COMBINE_TRACE(trace_launch, 4, 0);
  COMBINE_TRACE(trace_launch, 5, trace_launch);
#endif

  if (!usable) {  // every row of every request NaN
    float acc[kGroups][4];
#pragma unroll
    for (int g = 0; g < kGroups; ++g)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[g][e] = NAN;
    const float lse[2] = {NAN, NAN};
    if (sub == 0)
      for (int r = blockIdx.x; r < p.batch; r += gridDim.x)
        store_rows<T, kGroups>(p, r, kv_head, row, col0, write_lse, acc, lse);
    return;
  }

  const int64_t rows = (int64_t)p.s_q * p.h_q;
  const int64_t seg_stride = (int64_t)p.h_kv * p.num_row_tiles * kPartialTileFloats / 4;  // float4s
  int64_t lse_off[2];
#pragma unroll
  for (int k = 0; k < 2; ++k)  // padding rows read the tile's first row (never stored)
    lse_off[k] = lse_row_offset(p, kv_head, row[k] < p.rows ? row[k] : row_tile * kRowsPerTile);

  for (int i = blockIdx.x; i < u.h.num_combine; i += gridDim.x) {
    const CombineEntry e = i == (int)blockIdx.x ? CombineEntry{first.x, first.y, first.z, first.w} : list[i];
    const int ns = e.num_segs;  // 0 (no cached token) or >= 2
    if (ns == 2 && p.pair_merge) continue;  // the decode kernel wrote it
    // Warps whose 16 rows are all padding (h_q 16: 3 of 4) load nothing: their
    // reads would be 3/4 of the CTA's bytes.
    const int ns_loaded = warp * 16 < p.rows - row_tile * kRowsPerTile ? ns : 0;
    RowMerge rm[2];
    float acc[kGroups][4];
#pragma unroll
    for (int g = 0; g < kGroups; ++g)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[g][c] = 0.f;

    const float4* base = reinterpret_cast<const float4*>(partial_tile(p, e.seg_begin, tile)) + q0 * 256 + half * 128 + wt;
    const float* lse_src = p.lse_accum + (int64_t)e.seg_begin * rows;
    for (int i0 = sub * kUnroll; i0 < ns_loaded; i0 += kSplit * kUnroll) {
      // The 4 lanes of a row share its LSE loads: lane c loads segments
      // i0 + c, i0 + c + 4, ...; max, sum and weights travel by shuffles, so
      // the registers go to the partials and every load is in flight at once.
      constexpr int kW = (kUnroll + 3) / 4;
      const int c = lane % 4;
      float4 v[kUnroll][kGroups];
      float w[kW][2];
#pragma unroll
      for (int uu = 0; uu < kUnroll; ++uu) {
        const int s = min(i0 + uu, ns - 1);  // clamped, weight 0 below
#pragma unroll
        for (int g = 0; g < kGroups; ++g) v[uu][g] = base[s * seg_stride + g * 256];
      }
#pragma unroll
      for (int j = 0; j < kW; ++j) {
        const int s = min(i0 + 4 * j + c, ns - 1);
#pragma unroll
        for (int k = 0; k < 2; ++k) w[j][k] = lse_src[s * rows + lse_off[k]];
      }
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        float mb = rm[k].m;
#pragma unroll
        for (int j = 0; j < kW; ++j) {
          if (4 * j + c >= kUnroll || i0 + 4 * j + c >= ns) w[j][k] = -INFINITY;
          mb = fmaxf(mb, w[j][k]);
        }
        mb = fmaxf(mb, __shfl_xor_sync(0xffffffff, mb, 1));
        mb = fmaxf(mb, __shfl_xor_sync(0xffffffff, mb, 2));
        const float f = rm[k].rebase(mb);
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
          acc[g][2 * k] *= f;
          acc[g][2 * k + 1] *= f;
        }
        float part = 0.f;
#pragma unroll
        for (int j = 0; j < kW; ++j) {
          w[j][k] = exp_or_zero(w[j][k], mb);  // mb = -inf: every w is -inf, all 0
          part += w[j][k];
        }
        part += __shfl_xor_sync(0xffffffff, part, 1);
        part += __shfl_xor_sync(0xffffffff, part, 2);
        rm[k].sum += part;
      }
#pragma unroll
      for (int uu = 0; uu < kUnroll; ++uu) {
        const int src = (lane & ~3) | (uu % 4);
        const float w0 = __shfl_sync(0xffffffff, w[uu / 4][0], src);
        const float w1 = __shfl_sync(0xffffffff, w[uu / 4][1], src);
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
          acc[g][0] += w0 * v[uu][g].x;
          acc[g][1] += w0 * v[uu][g].y;
          acc[g][2] += w1 * v[uu][g].z;
          acc[g][3] += w1 * v[uu][g].w;
        }
      }
    }

    if constexpr (kSplit > 1) {
      if (sub > 0) {
        float* d = &s_part[sub - 1][0][wt];
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          d[(2 * k) * 128] = rm[k].m;
          d[(2 * k + 1) * 128] = rm[k].sum;
        }
#pragma unroll
        for (int g = 0; g < kGroups; ++g)
#pragma unroll
          for (int c = 0; c < 4; ++c) d[(4 + 4 * g + c) * 128] = acc[g][c];
      }
      __syncthreads();
      if (sub == 0) {
#pragma unroll
        for (int o = 0; o < kSplit - 1; ++o) {
          const float* d = &s_part[o][0][wt];
#pragma unroll
          for (int k = 0; k < 2; ++k) {
            const float mo = d[(2 * k) * 128], so = d[(2 * k + 1) * 128];
            const float mb = fmaxf(rm[k].m, mo);
            const float f = rm[k].rebase(mb), fo = exp_or_zero(mo, mb);
            rm[k].sum += so * fo;
#pragma unroll
            for (int g = 0; g < kGroups; ++g)
#pragma unroll
              for (int c = 2 * k; c < 2 * k + 2; ++c) acc[g][c] = acc[g][c] * f + d[(4 + 4 * g + c) * 128] * fo;
          }
        }
      }
      __syncthreads();  // s_part is reused by the next entry
    }

    if (sub == 0) {
      float lse[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        // No key seen (or no cached token): out 0, lse +inf.
        const bool none = rm[k].m == -INFINITY;
        const float inv = none ? 0.f : 1.f / rm[k].sum;
        lse[k] = none ? INFINITY : rm[k].m + logf(rm[k].sum);
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
          acc[g][2 * k] *= inv;
          acc[g][2 * k + 1] *= inv;
        }
      }
      store_rows<T, kGroups>(p, e.r, kv_head, row, col0, write_lse, acc, lse);
    }
#ifdef OPENMLA_SEESAW_TRACE
    COMBINE_TRACE(trace_launch, 4, 1);
#endif
  }
#ifdef OPENMLA_SEESAW_TRACE
  COMBINE_TRACE(trace_launch, 3, ptx::globaltimer());
#endif
}

template <typename T, int kGroups, int kUnroll, int kSplit>
cudaError_t launch_config(const DenseDecodeParams& p, int entries, cudaStream_t stream) {
  using C = Config<kGroups, kUnroll, kSplit>;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(entries, p.h_kv * p.num_row_tiles, 2 * C::kSlices);
  cfg.blockDim = dim3(C::kThreads);
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = p.pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, combine_kernel<T, kGroups, kUnroll, kSplit>, p);
}

#ifndef OPENMLA_COMBINE_MANY_UNROLL
#define OPENMLA_COMBINE_MANY_UNROLL 2  // -D for tuning runs only
#endif
#ifndef OPENMLA_COMBINE_FEW_UNROLL
#define OPENMLA_COMBINE_FEW_UNROLL 16  // -D for tuning runs only
#endif

// The list holds at most min(batch, num_parts) entries but for requests with
// no cached token; a CTA takes entries x, x + gridDim.x, ...
template <typename T>
cudaError_t launch(const DenseDecodeParams& p, cudaStream_t stream) {
  const int entries = p.batch < p.num_parts ? p.batch : p.num_parts;
  const int64_t tile_entries = (int64_t)entries * p.h_kv * p.num_row_tiles;
  // Many (b128: split requests of 2-3 segments): 4 column groups and 2
  // segments in flight a thread (8 groups or 4 segments spill). Few (b1-b8:
  // requests of 15-130 segments): thin slices, 16 segments in flight a
  // thread, and for one or two tile-entries, whose 64 CTAs a tile leave SMs
  // idle, 4 groups of threads a CTA.
  if (tile_entries >= 32) return launch_config<T, 4, OPENMLA_COMBINE_MANY_UNROLL, 1>(p, entries, stream);
  if (tile_entries > 2) return launch_config<T, 1, OPENMLA_COMBINE_FEW_UNROLL, 1>(p, entries, stream);
  return launch_config<T, 1, OPENMLA_COMBINE_FEW_UNROLL, 4>(p, entries, stream);
}

}  // namespace openmla::kernels::combine

#endif  // OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_
