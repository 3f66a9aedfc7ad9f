// Merges a request's split-KV partials by their LSE, and writes the rows the
// decode kernel does not: requests with no cached token (out 0, lse +inf) and,
// after a bad plan, NaN everywhere so a bad length never passes silently.
//
// CTA = (request, tile, column slice); its 256 threads mirror the decode
// kernel's accumulator layout (kernels/common/partials.cuh), so every partial
// load is a coalesced float4. Each dependent round trip to memory costs about
// a microsecond, the whole budget of a small batch, so: the merged LSE of all
// 64 rows comes from one parallel pass (4 threads a row, all their loads in
// flight) into shared memory, and each thread then keeps 16 float4 partial
// loads in flight (b1 s_k 32768 h128 merges 66 segments a row).
#ifndef OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_
#define OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "common/split_plan.h"
#include "kernels/common/params.h"
#include "kernels/common/part_cursor.cuh"
#include "kernels/common/partials.cuh"
#include "kernels/common/ptx.cuh"

namespace openmla::kernels::combine {

constexpr int kThreads = 256;
constexpr int kLseThreadsPerRow = kThreads / kRowsPerTile;  // 4
constexpr int kLseUnroll = 8;  // LSE loads in flight per thread

// kGroups float4 column groups per thread (32 / kGroups column slices per
// tile in grid.z): few requests get many thin CTAs, many requests fat ones.
template <int kGroups>
struct Slicing {
  static constexpr int kSlices = 32 / kGroups;
  static constexpr int kSegUnroll = 16 / kGroups;  // 16 float4 loads in flight per thread
};

// Merged LSE of one tile row over the request's segments (natural log; -inf
// when no segment saw a key): the 4 threads of a row split the segments and
// merge their (max, sum) by shuffles.
__device__ __forceinline__ float merged_lse(const DenseDecodeParams& p, const RequestMeta& rm, int64_t off,
                                            int sub) {
  const int64_t rows = (int64_t)p.s_q * p.h_q;
  const float* src = p.lse_accum + (int64_t)rm.seg_begin * rows + off;
  float m = -INFINITY, sum = 0.f;
  for (int i0 = sub; i0 < rm.num_segs; i0 += kLseThreadsPerRow * kLseUnroll) {
    // Loads of clamped indices (no branch around them, so all stay in flight),
    // masked afterwards.
    float x[kLseUnroll];
#pragma unroll
    for (int u = 0; u < kLseUnroll; ++u) x[u] = src[min(i0 + u * kLseThreadsPerRow, rm.num_segs - 1) * rows];
#pragma unroll
    for (int u = 0; u < kLseUnroll; ++u)
      if (i0 + u * kLseThreadsPerRow >= rm.num_segs) x[u] = -INFINITY;
    float mb = m;
#pragma unroll
    for (int u = 0; u < kLseUnroll; ++u) mb = fmaxf(mb, x[u]);
    if (mb == -INFINITY) continue;
    sum *= __expf(m - mb);  // m = -inf: sum is 0 and stays 0
#pragma unroll
    for (int u = 0; u < kLseUnroll; ++u) sum += __expf(x[u] - mb);
    m = mb;
  }
#pragma unroll
  for (int d = 1; d < kLseThreadsPerRow; d *= 2) {
    const float mo = __shfl_xor_sync(0xffffffff, m, d), so = __shfl_xor_sync(0xffffffff, sum, d);
    const float mn = fmaxf(m, mo);
    if (mn != -INFINITY) sum = sum * __expf(m - mn) + so * __expf(mo - mn);
    m = mn;
  }
  return m == -INFINITY ? -INFINITY : m + logf(sum);
}

template <typename T, int kGroupsPerSlice>
__global__ void __launch_bounds__(kThreads, 1) combine_kernel(const DenseDecodeParams p) {
  constexpr int kSegUnroll = Slicing<kGroupsPerSlice>::kSegUnroll;
  __shared__ float s_lse[kRowsPerTile];
  const PlanHeader* hdr = static_cast<const PlanHeader*>(p.plan);
  const PartMeta* parts = reinterpret_cast<const PartMeta*>(hdr + 1);
  const RequestMeta* reqs = reinterpret_cast<const RequestMeta*>(parts + p.num_parts);
  const int r = blockIdx.x, tile = blockIdx.y, q0 = blockIdx.z * kGroupsPerSlice;
  const int row_tile = tile % p.num_row_tiles, kv_head = tile / p.num_row_tiles;
  const int t = threadIdx.x, wg = t / 128, warp = (t % 128) / 32, lane = t % 32;
  const RequestMeta rm_loaded = reqs[r];  // in flight with the header's loads
  const bool bad_plan = !plan_usable(p);
  const RequestMeta rm = bad_plan ? RequestMeta{0, 0} : rm_loaded;
  if (!bad_plan && rm.num_segs == 1) return;  // the decode kernel wrote these rows
  const int tile_rows = min(kRowsPerTile, p.rows - row_tile * kRowsPerTile);

  int row[2];
  bool valid[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    row[k] = row_tile * kRowsPerTile + warp * 16 + lane / 4 + 8 * k;
    valid[k] = row[k] < p.rows;
  }

  float acc[kGroupsPerSlice][4];
#pragma unroll
  for (int g = 0; g < kGroupsPerSlice; ++g)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[g][e] = bad_plan ? NAN : 0.f;
  float lse[2] = {bad_plan ? NAN : INFINITY, bad_plan ? NAN : INFINITY};

  if (!bad_plan && rm.num_segs > 1) {
    {
      const int i = t / kLseThreadsPerRow;  // all 64 rows at once; padding rows read row 0
      const int rr = row_tile * kRowsPerTile + (i < tile_rows ? i : 0);
      const float l = merged_lse(p, rm, lse_row_offset(p, kv_head, rr), t % kLseThreadsPerRow);
      if (t % kLseThreadsPerRow == 0) s_lse[i] = l;
    }
    __syncthreads();
    const int64_t rows = (int64_t)p.s_q * p.h_q;
    float lse_m[2];
    const float* lse_src[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      lse_m[k] = s_lse[warp * 16 + lane / 4 + 8 * k];
      lse[k] = lse_m[k] == -INFINITY ? INFINITY : lse_m[k];
      lse_src[k] = p.lse_accum + (int64_t)rm.seg_begin * rows + lse_row_offset(p, kv_head, valid[k] ? row[k] : row[0]);
    }
    const float4* base = reinterpret_cast<const float4*>(partial_tile(p, rm.seg_begin, tile)) + q0 * 256 + t;
    const int64_t seg_stride = (int64_t)p.h_kv * p.num_row_tiles * kPartialTileFloats / 4;  // float4s
    for (int i0 = 0; i0 < rm.num_segs; i0 += kSegUnroll) {
      float4 v[kSegUnroll][kGroupsPerSlice];
      float w[kSegUnroll][2];
#pragma unroll
      for (int u = 0; u < kSegUnroll; ++u) {
        const int i = min(i0 + u, rm.num_segs - 1);  // clamped, weight 0 below
#pragma unroll
        for (int g = 0; g < kGroupsPerSlice; ++g) v[u][g] = base[i * seg_stride + g * 256];
#pragma unroll
        for (int k = 0; k < 2; ++k) w[u][k] = lse_src[k][i * rows];
      }
#pragma unroll
      for (int u = 0; u < kSegUnroll; ++u) {
#pragma unroll
        for (int k = 0; k < 2; ++k)
          w[u][k] = i0 + u >= rm.num_segs || lse_m[k] == -INFINITY || w[u][k] == -INFINITY
                        ? 0.f : __expf(w[u][k] - lse_m[k]);
#pragma unroll
        for (int g = 0; g < kGroupsPerSlice; ++g) {
          acc[g][0] += w[u][0] * v[u][g].x;
          acc[g][1] += w[u][0] * v[u][g].y;
          acc[g][2] += w[u][1] * v[u][g].z;
          acc[g][3] += w[u][1] * v[u][g].w;
        }
      }
    }
  }
  if (!valid[0] && !valid[1]) return;

#pragma unroll
  for (int k = 0; k < 2; ++k) {
    if (!valid[k]) continue;
    const int s = row[k] / p.group, h = kv_head * p.group + row[k] % p.group;
    T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
              (int64_t)h * p.o_stride_h;
#pragma unroll
    for (int g = 0; g < kGroupsPerSlice; ++g)
      *reinterpret_cast<uint32_t*>(orow + wg * 256 + (q0 + g) * 8 + 2 * (lane % 4)) =
          ptx::pack2<T>(acc[g][2 * k], acc[g][2 * k + 1]);
    if (blockIdx.z == 0 && wg == 0 && lane % 4 == 0)
      p.lse[(int64_t)r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s] = lse[k];
  }
}

template <typename T, int kGroups>
cudaError_t launch_sliced(const DenseDecodeParams& p, cudaStream_t stream) {
  dim3 grid(p.batch, p.h_kv * p.num_row_tiles, Slicing<kGroups>::kSlices);
  combine_kernel<T, kGroups><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const DenseDecodeParams& p, cudaStream_t stream) {
  const int64_t tiles = (int64_t)p.batch * p.h_kv * p.num_row_tiles;
  if (tiles >= 32) return launch_sliced<T, 4>(p, stream);
  return launch_sliced<T, 1>(p, stream);
}

}  // namespace openmla::kernels::combine

#endif  // OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_
