// Merges a request's split-KV partials by their LSE, and writes the rows the
// decode kernel does not: requests with no cached token (out 0, lse +inf) and,
// after a bad plan, NaN everywhere so a bad length never passes silently.
#ifndef OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_
#define OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "common/split_plan.h"
#include "kernels/common/params.h"

namespace openmla::kernels::combine {

constexpr int kWarps = 8;  // one (s, h) row per warp

template <typename T>
__device__ __forceinline__ T to_t(float x);
template <>
__device__ __forceinline__ __nv_bfloat16 to_t<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ __forceinline__ __half to_t<__half>(float x) { return __float2half_rn(x); }

template <typename T>
__global__ void __launch_bounds__(kWarps * 32, 1) combine_kernel(const DenseDecodeParams p) {
  const PlanHeader* hdr = static_cast<const PlanHeader*>(p.plan);
  const PartMeta* parts = reinterpret_cast<const PartMeta*>(hdr + 1);
  const RequestMeta* reqs = reinterpret_cast<const RequestMeta*>(parts + p.num_parts);
  const int r = blockIdx.x;
  const int row = blockIdx.y * kWarps + threadIdx.x / 32;  // s * h_q + h
  const int lane = threadIdx.x % 32;
  if (row >= p.s_q * p.h_q) return;
  const int s = row / p.h_q, h = row % p.h_q;
  const bool bad_plan = hdr->error_code != kPlanOk ||
                        !plan_matches(hdr, p.batch, p.s_q, p.h_q, p.h_kv, p.num_parts);
  const RequestMeta rm = bad_plan ? RequestMeta{0, 0} : reqs[r];
  if (!bad_plan && rm.num_segs == 1) return;  // the decode kernel wrote this row

  T* orow = static_cast<T*>(p.out) + (int64_t)r * p.o_stride_b + (int64_t)s * p.o_stride_s +
            (int64_t)h * p.o_stride_h;
  float* lse_out = p.lse + (int64_t)r * p.lse_stride_b + (int64_t)h * p.lse_stride_h + s;
  constexpr int kPer = kHeadDimV / 32;  // 16 columns per lane
  float acc[kPer];
#pragma unroll
  for (int c = 0; c < kPer; ++c) acc[c] = 0.f;
  float lse = INFINITY;

  if (bad_plan) {
#pragma unroll
    for (int c = 0; c < kPer; ++c) acc[c] = NAN;
    lse = NAN;
  } else if (rm.num_segs > 1) {
    // One pass over the LSEs, 32 segments per step across the lanes (a
    // serial loop per pass left every load's latency exposed).
    const int64_t rows = (int64_t)p.s_q * p.h_q;
    const float* lse_col = p.lse_accum + (int64_t)rm.seg_begin * rows + row;
    const float* o_col = p.o_accum + ((int64_t)rm.seg_begin * rows + row) * kHeadDimV + lane * kPer;
    float mx = -INFINITY;
    for (int base = 0; base < rm.num_segs; base += 32) {
      const int i = base + lane;
      if (i < rm.num_segs) mx = fmaxf(mx, lse_col[i * rows]);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    if (mx != -INFINITY) {
      float sum = 0.f;
      for (int base = 0; base < rm.num_segs; base += 32) {
        const int i = base + lane;
        if (i < rm.num_segs) sum += __expf(lse_col[i * rows] - mx);
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
      const float inv = 1.f / sum;
      for (int base = 0; base < rm.num_segs; base += 32) {
        const int i = base + lane;
        const float w_lane = i < rm.num_segs ? __expf(lse_col[i * rows] - mx) * inv : 0.f;
        const int n = min(32, rm.num_segs - base);
        for (int k = 0; k < n; ++k) {
          const float w = __shfl_sync(0xffffffff, w_lane, k);
          const float4* src = reinterpret_cast<const float4*>(o_col + (int64_t)(base + k) * rows * kHeadDimV);
          float4 v[kPer / 4];
#pragma unroll
          for (int c = 0; c < kPer / 4; ++c) v[c] = src[c];
#pragma unroll
          for (int c = 0; c < kPer / 4; ++c) {
            acc[4 * c] += w * v[c].x;
            acc[4 * c + 1] += w * v[c].y;
            acc[4 * c + 2] += w * v[c].z;
            acc[4 * c + 3] += w * v[c].w;
          }
        }
      }
      lse = mx + logf(sum);
    }
  }
#pragma unroll
  for (int c = 0; c < kPer; ++c) orow[lane * kPer + c] = to_t<T>(acc[c]);
  if (lane == 0) *lse_out = lse;
}

template <typename T>
cudaError_t launch(const DenseDecodeParams& p, cudaStream_t stream) {
  dim3 grid(p.batch, (p.s_q * p.h_q + kWarps - 1) / kWarps);
  combine_kernel<T><<<grid, kWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace openmla::kernels::combine

#endif  // OPENMLA_KERNELS_COMBINE_COMBINE_KERNEL_CUH_
