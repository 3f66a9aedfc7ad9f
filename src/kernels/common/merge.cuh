// Split requests merged inside the dense decode kernel ("fused merge",
// opt-in: OPENMLA_MERGE=kernel), and the rows no segment writes (requests
// without a cached token; everything after a bad plan), so that a decoding
// step is one launch. Measured on an H200 it is no faster than the combine
// kernel (bench/NOTES.md): the merge's dependent round trips sit on the tail
// either way, and the combine spreads them over more CTAs.
//
// Each CTA that wrote a segment of a split request arrives on the request's
// (request, tile) counter at the end of its part, all its partials stored
// (one fence for both). Then the CTA holding segment j of n waits for all n
// to arrive, then merges units
// [64 j / n, 64 (j + 1) / n) of the tile (a unit is 128 float4s of the
// partial layout, 2 KB) over the n segments, and arrives again; the last of
// the n + min(n, 64) arrivals resets the counter to zero for the next call
// on the same plan. Only the part's first and last segment can belong to a
// split request, and a CTA waits only after all its own segments are
// written, so the waits cannot form a cycle — provided every CTA of the grid
// is resident: the kernel must be launched cooperatively.
#ifndef OPENMLA_KERNELS_COMMON_MERGE_CUH_
#define OPENMLA_KERNELS_COMMON_MERGE_CUH_

#include <cmath>
#include <cstdint>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/partials.cuh"
#include "kernels/common/ptx.cuh"

namespace openmla::kernels::merge {

constexpr int kThreads = 256;
constexpr int kUnits = 64;
constexpr int kUnitFloat4s = kPartialTileFloats / 4 / kUnits;  // 128
// Shared scratch the merge needs: n x 64 segment weights + 64 merged LSEs.
__host__ __device__ constexpr int scratch_bytes(int max_segs) { return (max_segs + 1) * kRowsPerTile * 4; }

__device__ __forceinline__ int32_t* counter(const DenseDecodeParams& p, int r, int tile) {
  return p.merge_counters + (int64_t)r * p.h_kv * p.num_row_tiles + tile;
}

__device__ __forceinline__ int ld_acquire_gpu(const int32_t* ptr) {
  int v;
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(ptr) : "memory");
  return v;
}

// Every thread calls it after its stores: the barrier orders them before
// thread 0's fence and increment (the pattern of a grid barrier).
__device__ __forceinline__ int arrive(int32_t* ctr) {
  __syncthreads();
  int old = 0;
  if (threadIdx.x == 0) {
    __threadfence();
    old = atomicAdd(ctr, 1);
  }
  return old;
}

__device__ __forceinline__ void wait_for(const int32_t* ctr, int count) {
  if (threadIdx.x == 0)
    while (ld_acquire_gpu(ctr) < count) {
    }
  __syncthreads();
}

// Out columns of units [u0, u1) (thread half h takes u0 + h, u0 + h + 2, ...),
// kPos units x kSeg segments of loads in flight per thread (32 float4s): the
// merge sits on the step's tail, so its dependent round trips are what count.
template <typename T, int kSeg>
__device__ __forceinline__ void merge_columns(const DenseDecodeParams& p, int r, int tile, int n, int seg_begin,
                                              int u0, int u1, const float* sw) {
  constexpr int kPos = 32 / kSeg;
  const int row_tile = tile % p.num_row_tiles, kv_head = tile / p.num_row_tiles;
  const int t = threadIdx.x, e = t % kUnitFloat4s, lane = e % 32;
  const int ra = (e / 32) * 16 + lane / 4, rb = ra + 8;
  const float4* base = reinterpret_cast<const float4*>(partial_tile(p, seg_begin, tile)) + e;
  const int64_t seg_stride = (int64_t)p.h_kv * p.num_row_tiles * kPartialTileFloats / 4;
  for (int ub = u0 + t / kUnitFloat4s; ub < u1; ub += 2 * kPos) {
    float4 acc[kPos];
#pragma unroll
    for (int a = 0; a < kPos; ++a) acc[a] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i0 = 0; i0 < n; i0 += kSeg) {
      // Clamped indices (duplicates weigh nothing), so no branch keeps a
      // load from being issued with the others.
      float4 v[kPos][kSeg];
#pragma unroll
      for (int a = 0; a < kPos; ++a) {
        const int u = min(ub + 2 * a, u1 - 1);
        const float4* src = base + (u / 2) * 256 + (u % 2) * 128;
#pragma unroll
        for (int k = 0; k < kSeg; ++k) v[a][k] = __ldcg(src + min(i0 + k, n - 1) * seg_stride);
      }
#pragma unroll
      for (int k = 0; k < kSeg; ++k) {
        const bool live = i0 + k < n;
        const float wa = live ? sw[(i0 + k) * kRowsPerTile + ra] : 0.f;
        const float wb = live ? sw[(i0 + k) * kRowsPerTile + rb] : 0.f;
#pragma unroll
        for (int a = 0; a < kPos; ++a) {
          acc[a].x += wa * v[a][k].x;
          acc[a].y += wa * v[a][k].y;
          acc[a].z += wb * v[a][k].z;
          acc[a].w += wb * v[a][k].w;
        }
      }
    }
#pragma unroll
    for (int a = 0; a < kPos; ++a) {
      const int u = ub + 2 * a;
      if (u >= u1) break;
      const int col = (u % 2) * 256 + (u / 2) * 8 + 2 * (lane % 4);
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int row = row_tile * kRowsPerTile + (k ? rb : ra);
        if (row >= p.rows) continue;
        const int s = row / p.group, h = kv_head * p.group + row % p.group;
        T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
                  (int64_t)h * p.o_stride_h;
        *reinterpret_cast<uint32_t*>(orow + col) =
            k ? ptx::pack2<T>(acc[a].z, acc[a].w) : ptx::pack2<T>(acc[a].x, acc[a].y);
      }
    }
  }
}

// Units [u0, u1) of request r's tile, merged over its segments into out (and
// its LSE by the CTA holding unit 0). Partials and LSEs are read through L2
// (ld.global.cg): other SMs wrote them during this kernel.
template <typename T>
__device__ void merge_units(const DenseDecodeParams& p, int r, const RequestMeta rm, int tile, int u0, int u1,
                            float* sw) {
  const int row_tile = tile % p.num_row_tiles, kv_head = tile / p.num_row_tiles;
  const int tile_rows = min(kRowsPerTile, p.rows - row_tile * kRowsPerTile);
  const int n = rm.num_segs, t = threadIdx.x;
  const int64_t all_rows = (int64_t)p.s_q * p.h_q;
  float* s_m = sw + n * kRowsPerTile;

  {  // every segment's LSE of every row: sw[i][row] (padding rows -inf), 16 loads in flight a thread
    constexpr int kStep = kThreads / kRowsPerTile, kUnroll = 16;
    const int row = t % kRowsPerTile;
    const bool valid = row < tile_rows;
    const float* src = p.lse_accum + (int64_t)rm.seg_begin * all_rows +
                       lse_row_offset(p, kv_head, row_tile * kRowsPerTile + (valid ? row : 0));
    for (int i0 = t / kRowsPerTile; i0 < n; i0 += kStep * kUnroll) {
      float x[kUnroll];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k) x[k] = __ldcg(src + min(i0 + k * kStep, n - 1) * all_rows);
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (i0 + k * kStep < n) sw[(i0 + k * kStep) * kRowsPerTile + row] = valid ? x[k] : -INFINITY;
    }
  }
  __syncthreads();
  {  // merged LSE of each row: 4 threads a row
    const int row = t / 4, sub = t % 4;
    float m = -INFINITY;
    for (int i = sub; i < n; i += 4) m = fmaxf(m, sw[i * kRowsPerTile + row]);
    m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 2));
    float sum = 0.f;
    if (m != -INFINITY)
      for (int i = sub; i < n; i += 4) sum += __expf(sw[i * kRowsPerTile + row] - m);
    sum += __shfl_xor_sync(0xffffffff, sum, 1);
    sum += __shfl_xor_sync(0xffffffff, sum, 2);
    if (sub == 0) s_m[row] = m == -INFINITY ? -INFINITY : m + logf(sum);
  }
  __syncthreads();
  for (int idx = t; idx < n * kRowsPerTile; idx += kThreads) {  // weights in place
    const float m = s_m[idx % kRowsPerTile], x = sw[idx];
    sw[idx] = m == -INFINITY || x == -INFINITY ? 0.f : __expf(x - m);
  }
  __syncthreads();

  if (n <= 2) merge_columns<T, 2>(p, r, tile, n, rm.seg_begin, u0, u1, sw);
  else if (n <= 4) merge_columns<T, 4>(p, r, tile, n, rm.seg_begin, u0, u1, sw);
  else if (n <= 8) merge_columns<T, 8>(p, r, tile, n, rm.seg_begin, u0, u1, sw);
  else if (n <= 16) merge_columns<T, 16>(p, r, tile, n, rm.seg_begin, u0, u1, sw);
  else merge_columns<T, 32>(p, r, tile, n, rm.seg_begin, u0, u1, sw);

  if (u0 == 0 && u1 > 0 && t < tile_rows) {
    const int row = row_tile * kRowsPerTile + t;
    const int s = row / p.group, h = kv_head * p.group + row % p.group;
    p.lse[(int64_t)r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s] = s_m[t] == -INFINITY ? INFINITY : s_m[t];
  }
}

// This CTA's share of the merge of request r (plan entry rm), whose segment
// `seg` it wrote (nothing when r is not split). Every thread calls it.
template <typename T>
__device__ __forceinline__ void merge_request(const DenseDecodeParams& p, int r, const RequestMeta rm, int seg,
                                              int tile, float* sw) {
  if (rm.num_segs <= 1) return;
  const int n = rm.num_segs, j = seg - rm.seg_begin;
  const int u0 = kUnits * j / n, u1 = kUnits * (j + 1) / n;
  if (u0 == u1) return;  // more segments than units: this one only arrived
  int32_t* ctr = counter(p, r, tile);
  wait_for(ctr, n);
  merge_units<T>(p, r, rm, tile, u0, u1, sw);
  // The barrier inside also keeps the scratch from being rewritten (next
  // request) while it is read.
  const int old = arrive(ctr);
  if (threadIdx.x == 0 && old == n + min(n, kUnits) - 1) atomicExch(ctr, 0);
}

// Rows of tile `tile` that no segment covers, for requests r = first, first +
// stride, ...: out 0 and lse +inf for a request without a cached token; NaN
// for every request when the plan is unusable (a bad length, or made for
// other shapes: then `reqs` is not read).
template <typename T>
__device__ void fill_uncovered_rows(const DenseDecodeParams& p, const RequestMeta* reqs, bool plan_ok, int tile,
                                    int first, int stride) {
  const int row_tile = tile % p.num_row_tiles, kv_head = tile / p.num_row_tiles;
  const int tile_rows = min(kRowsPerTile, p.rows - row_tile * kRowsPerTile);
  const int t = threadIdx.x;
  const float o_val = plan_ok ? 0.f : NAN, lse_val = plan_ok ? INFINITY : NAN;
  const uint32_t packed = ptx::pack2<T>(o_val, o_val);
  for (int r = first; r < p.batch; r += stride) {
    if (plan_ok && reqs[r].num_segs != 0) continue;
    for (int m = 0; m < tile_rows; ++m) {
      const int row = row_tile * kRowsPerTile + m;
      const int s = row / p.group, h = kv_head * p.group + row % p.group;
      T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
                (int64_t)h * p.o_stride_h;
      reinterpret_cast<uint32_t*>(orow)[t] = packed;  // 256 threads x 2 columns
    }
    if (t < tile_rows) {
      const int row = row_tile * kRowsPerTile + t;
      const int s = row / p.group, h = kv_head * p.group + row % p.group;
      p.lse[(int64_t)r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s] = lse_val;
    }
  }
}

}  // namespace openmla::kernels::merge

#endif  // OPENMLA_KERNELS_COMMON_MERGE_CUH_
