// Merges a request's split-KV partials by their LSE, and writes the rows the
// decode kernel does not: requests with no cached token (out 0, lse +inf) and,
// after a bad plan, NaN everywhere so a bad length never passes silently.
//
// CTA = (request, tile, column slice); its 256 threads mirror the decode
// kernel's accumulator layout (kernels/common/partials.cuh), so every partial
// load is a coalesced float4, and each thread keeps kSegUnroll segments' loads
// in flight (each dependent round trip to memory costs about a microsecond,
// the whole budget of a small batch).
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

constexpr int kThreads = 256;
constexpr int kLseUnroll = 8;


// kGroups float4 column groups per thread (32 / kGroups column slices per
// tile in grid.z): few requests get many thin CTAs, many requests fat ones;
// kGroups * kSegUnroll loads in flight per thread.
template <int kGroups>
struct Slicing {
  static constexpr int kSlices = 32 / kGroups;
  static constexpr int kSegUnroll = 4;
};

template <typename T, int kGroupsPerSlice>
__global__ void __launch_bounds__(kThreads) combine_kernel(const DenseDecodeParams p) {
  constexpr int kSegUnroll = Slicing<kGroupsPerSlice>::kSegUnroll;
  const PlanHeader* hdr = static_cast<const PlanHeader*>(p.plan);
  const PartMeta* parts = reinterpret_cast<const PartMeta*>(hdr + 1);
  const RequestMeta* reqs = reinterpret_cast<const RequestMeta*>(parts + p.num_parts);
  const int r = blockIdx.x, tile = blockIdx.y, q0 = blockIdx.z * kGroupsPerSlice;
  const int row_tile = tile % p.num_row_tiles, kv_head = tile / p.num_row_tiles;
  const int t = threadIdx.x, wg = t / 128, warp = (t % 128) / 32, lane = t % 32;
  const bool bad_plan = hdr->error_code != kPlanOk ||
                        !plan_matches(hdr, p.batch, p.s_q, p.h_q, p.h_kv, p.num_parts);
  const RequestMeta rm = bad_plan ? RequestMeta{0, 0} : reqs[r];
  if (!bad_plan && rm.num_segs == 1) return;  // the decode kernel wrote these rows

  int row[2];
  bool valid[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    row[k] = row_tile * kRowsPerTile + warp * 16 + lane / 4 + 8 * k;
    valid[k] = row[k] < p.rows;
  }
  if (!valid[0] && !valid[1]) return;

  float acc[kGroupsPerSlice][4];
#pragma unroll
  for (int g = 0; g < kGroupsPerSlice; ++g)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[g][e] = bad_plan ? NAN : 0.f;
  float lse[2] = {bad_plan ? NAN : INFINITY, bad_plan ? NAN : INFINITY};

  if (!bad_plan && rm.num_segs > 1) {
    const int64_t rows = (int64_t)p.s_q * p.h_q;
    int64_t lrow[2];  // this row's index in lse_accum
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int rr = valid[k] ? row[k] : row[0];
      const int s = rr / p.group, h = kv_head * p.group + rr % p.group;
      lrow[k] = (int64_t)rm.seg_begin * rows + (int64_t)s * p.h_q + h;
    }
    // kLseUnroll LSEs per row in flight per step (a plain loop waited on each),
    // in two passes: the maximum, then the sum of exp(lse - max).
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
    for (int pass = 0; pass < 2; ++pass)
      for (int i0 = 0; i0 < rm.num_segs; i0 += kLseUnroll) {
        float x[kLseUnroll][2];
#pragma unroll
        for (int u = 0; u < kLseUnroll; ++u)
#pragma unroll
          for (int k = 0; k < 2; ++k)
            x[u][k] = i0 + u < rm.num_segs ? p.lse_accum[lrow[k] + (i0 + u) * rows] : -INFINITY;
#pragma unroll
        for (int u = 0; u < kLseUnroll; ++u)
#pragma unroll
          for (int k = 0; k < 2; ++k) {
            if (pass == 0) mx[k] = fmaxf(mx[k], x[u][k]);
            else if (mx[k] != -INFINITY) sum[k] += __expf(x[u][k] - mx[k]);
          }
      }
    float inv[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      inv[k] = mx[k] == -INFINITY ? 0.f : 1.f / sum[k];
      lse[k] = mx[k] == -INFINITY ? INFINITY : mx[k] + logf(sum[k]);
    }
    const float4* base = reinterpret_cast<const float4*>(partial_tile(p, rm.seg_begin, tile)) + q0 * 256 + t;
    const int64_t seg_stride = (int64_t)p.h_kv * p.num_row_tiles * kPartialTileFloats / 4;  // float4s
    for (int i0 = 0; i0 < rm.num_segs; i0 += kSegUnroll) {
      float4 v[kSegUnroll][kGroupsPerSlice];
      float w[kSegUnroll][2];
#pragma unroll
      for (int u = 0; u < kSegUnroll; ++u) {
        const int i = i0 + u;
        const bool in = i < rm.num_segs;
#pragma unroll
        for (int g = 0; g < kGroupsPerSlice; ++g)
          v[u][g] = in ? base[i * seg_stride + g * 256] : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int k = 0; k < 2; ++k)
          w[u][k] = in && mx[k] != -INFINITY ? __expf(p.lse_accum[lrow[k] + i * rows] - mx[k]) * inv[k] : 0.f;
      }
#pragma unroll
      for (int u = 0; u < kSegUnroll; ++u)
#pragma unroll
        for (int g = 0; g < kGroupsPerSlice; ++g) {
          acc[g][0] += w[u][0] * v[u][g].x;
          acc[g][1] += w[u][0] * v[u][g].y;
          acc[g][2] += w[u][1] * v[u][g].z;
          acc[g][3] += w[u][1] * v[u][g].w;
        }
    }
  }

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
