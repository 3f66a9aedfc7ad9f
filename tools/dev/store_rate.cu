// Developer tool (not built by CMake): how fast one SM can write a split
// segment's fp32 partial (64 x 512 floats = 128 KB, what a seesaw CTA stores
// at the end of an h_q = 128 segment; the trace puts that at ~5500 cycles).
// Is it the SM's egress or the way the stores are issued? One CTA an SM
// (256 threads, 200 KB of dynamic smem), `ctas` CTAs, each writing its own
// 128 KB tile; clock64 in thread 0 (after a barrier) at the start, once every
// thread's stores are issued, and after a __threadfence (stores acknowledged).
// Modes:
//   0  st.global.v4, 256 threads, fragment-major as tile_io::store_partial
//   1  st.global.v4 from 128 threads (a warpgroup), the other idle
//   2  the tile through smem (st.shared.v4), then cp.async.bulk shared->global
//      in 8 pieces of 16 KB, waited with cp.async.bulk.wait_group 0
//   3  as 2 but the smem fill is not timed (the tile already staged)
//   4  st.global.v4 with .cs (evict-first streaming stores)
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I src tools/dev/store_rate.cu
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cuda_check.h"

constexpr int kTileFloats = 64 * 512;
constexpr int kTileBytes = kTileFloats * 4;
constexpr int kSmem = 200 * 1024;

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// The thread's 32 float4 into the smem copy of the tile, seen by the bulk copy.
__device__ __forceinline__ void stage_tile(unsigned char* smem, const float* v, int t) {
  float4* s = reinterpret_cast<float4*>(smem) + t;
#pragma unroll
  for (int q = 0; q < 32; ++q) s[q * 256] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__global__ void __launch_bounds__(256, 1) store_tile(float* out, int mode, long long* times) {
  extern __shared__ __align__(1024) unsigned char smem[];
  const int t = threadIdx.x;
  float v[128];
#pragma unroll
  for (int j = 0; j < 128; ++j) v[j] = t * 0.5f + j;
  float4* dst = reinterpret_cast<float4*>(out + (size_t)blockIdx.x * kTileFloats) + t;
  if (mode == 3) {
    stage_tile(smem, v, t);
  }
  __syncthreads();
  const long long t0 = clock64();
  if (mode == 0 || mode == 4 || (mode == 1 && t < 128)) {
    const int reps = mode == 1 ? 2 : 1;
    for (int r = 0; r < reps; ++r) {
#pragma unroll
      for (int q = 0; q < 32; ++q) {
        const float4 x = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
        float4* d = dst + q * 256 + r * 128;
        if (mode == 4)
          __stcs(d, x);
        else
          *d = x;
      }
    }
  } else if (mode == 2) {
    stage_tile(smem, v, t);
  }
  __syncthreads();
  const long long t1 = clock64();
  if ((mode == 2 || mode == 3) && t == 0) {
    for (int i = 0; i < 8; ++i)
      asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(
                       reinterpret_cast<unsigned char*>(out + (size_t)blockIdx.x * kTileFloats) + i * 16384),
                   "r"(smem_u32(smem + i * 16384)), "r"(16384)
                   : "memory");
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
    asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
  }
  __threadfence();
  __syncthreads();
  const long long t2 = clock64();
  if (t == 0) {
    times[blockIdx.x * 2 + 0] = t1 - t0;
    times[blockIdx.x * 2 + 1] = t2 - t0;
  }
}

int main() {
  const int max_ctas = 132;
  float* out;
  long long* times;
  CK(cudaMalloc(&out, (size_t)max_ctas * kTileBytes));
  CK(cudaMalloc(&times, max_ctas * 2 * sizeof(long long)));
  CK(cudaFuncSetAttribute(store_tile, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  const char* names[] = {"st.v4 256 thr", "st.v4 128 thr", "smem + bulk", "bulk (staged)", "st.cs.v4 256"};
  printf("mode            ctas  issued(cyc)  acked(cyc)  B/cyc/SM  kernel(us)  GB/s(all)\n");
  for (int ctas : {64, 132}) {
    for (int mode = 0; mode < 5; ++mode) {
      std::vector<double> issued, acked;
      float best_ms = 1e9f;
      for (int it = 0; it < 20; ++it) {
        CK(cudaEventRecord(e0));
        store_tile<<<ctas, 256, kSmem>>>(out, mode, times);
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        best_ms = std::min(best_ms, ms);
        std::vector<long long> h(ctas * 2);
        CK(cudaMemcpy(h.data(), times, h.size() * sizeof(long long), cudaMemcpyDeviceToHost));
        if (it < 5) continue;
        double a = 0, b = 0;
        for (int c = 0; c < ctas; ++c) a += h[c * 2], b += h[c * 2 + 1];
        issued.push_back(a / ctas);
        acked.push_back(b / ctas);
      }
      std::sort(issued.begin(), issued.end());
      std::sort(acked.begin(), acked.end());
      const double is = issued[issued.size() / 2], ac = acked[acked.size() / 2];
      printf("%-15s %4d  %11.0f  %10.0f  %8.1f  %10.2f  %9.0f\n", names[mode], ctas, is, ac, kTileBytes / ac,
             best_ms * 1e3, (double)ctas * kTileBytes / (best_ms * 1e-3) / 1e9);
    }
  }
  return 0;
}
