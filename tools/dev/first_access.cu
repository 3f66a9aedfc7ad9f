// Developer tool (not built by CMake): how long the first memory accesses of a
// kernel take, to explain the seesaw prologue (bench/NOTES.md, 2026-12-03).
// Thread 0 of each of 132 CTAs, clock64 after each step:
//   1 plain load of a plan word, 2 a second plain load (another line), 3 first
//   TMA (8 KB box) with the kernel-parameter tensor map, 4 a second TMA (other
//   rows), 5 a plain load from a third allocation.
// Modes: tensormap prefetch at entry or not; data warm (same buffers, back to
// back), L2 flushed (a 256 MB write in between), rotated over 16 separate
// allocations (pages not touched for 16 launches), or both (as openmla-bench
// rotates its copies).
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I src tools/dev/first_access.cu -lcuda
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda_check.h"

constexpr int kSteps = 6;

__device__ __forceinline__ long long clock_after(int dep) {
  long long t;
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(t) : "r"(dep) : "memory");
  return t;
}

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void tma_2d(void* dst, const void* map, unsigned long long* bar, int c0, int c1) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(8192) : "memory");
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          smem_u32(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
}

__device__ __forceinline__ void mbar_wait(unsigned long long* bar, unsigned parity) {
  asm volatile(
      "{\n.reg .pred done;\nW_%=:\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n@!done bra W_%=;\n}\n" ::"r"(
          smem_u32(bar)),
      "r"(parity)
      : "memory");
}

__global__ void probe(const __grid_constant__ CUtensorMap map, const int* plan, const int* table, int prefetch,
                      long long* out) {
  __shared__ alignas(1024) unsigned char buf[2][8192];
  __shared__ unsigned long long bar;
  if (threadIdx.x != 0) return;
  long long t[kSteps];
  t[0] = clock64();
  if (prefetch) asm volatile("prefetch.tensormap [%0];\n" ::"l"(&map) : "memory");
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_u32(&bar)) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  const int a = plan[blockIdx.x * 64];
  t[1] = clock_after(a);
  const int b = plan[blockIdx.x * 64 + 32768];
  t[2] = clock_after(b);
  tma_2d(buf[0], &map, &bar, 0, ((a + b) & 1023) * 64 + blockIdx.x * 64);
  mbar_wait(&bar, 0);
  t[3] = clock_after(buf[0][5]);
  tma_2d(buf[1], &map, &bar, 64, blockIdx.x * 64 + 30000);
  mbar_wait(&bar, 1);
  t[4] = clock_after(buf[1][5]);
  const int c = table[blockIdx.x * 97];
  t[5] = clock_after(c);
  for (int i = 0; i < kSteps; ++i) out[blockIdx.x * kSteps + i] = t[i] - t[0];
  if (a == 12345678) out[0] = b + c;  // keep the loads
}

__global__ void flush(int4* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = make_int4((int)i, 1, 2, 3);
}

int main() {
  constexpr int kCtas = 132, kCopies = 16;
  constexpr size_t kCols = 576, kDataRows = 65536;  // 72 MB of bf16 a copy
  std::vector<void*> data(kCopies), plans(kCopies), tables(kCopies);
  for (int c = 0; c < kCopies; ++c) {
    CK(cudaMalloc(&data[c], kDataRows * kCols * 2));
    CK(cudaMemset(data[c], 0, kDataRows * kCols * 2));
    CK(cudaMalloc(&plans[c], 1 << 20));
    CK(cudaMemset(plans[c], 0, 1 << 20));
    CK(cudaMalloc(&tables[c], 1 << 20));
    CK(cudaMemset(tables[c], 0, 1 << 20));
  }
  int4* junk;
  const size_t junk_n = (256u << 20) / 16;
  CK(cudaMalloc(&junk, junk_n * 16));
  long long* d_out;
  CK(cudaMalloc(&d_out, kCtas * kSteps * 8));
  std::vector<CUtensorMap> maps(kCopies);
  for (int c = 0; c < kCopies; ++c) {
    cuuint64_t dims[2] = {kCols, kDataRows};
    cuuint64_t strides[1] = {kCols * 2};
    cuuint32_t box[2] = {64, 64}, es[2] = {1, 1};
    CUresult r = cuTensorMapEncodeTiled(&maps[c], CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, data[c], dims, strides, box, es,
                                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      printf("encode failed %d\n", (int)r);
      return 1;
    }
  }
  const char* names[4] = {"warm (same buffers back to back)", "L2 flushed (256 MB write before)",
                          "rotated over 16 allocations", "rotated and flushed"};
  for (int scenario = 0; scenario < 4; ++scenario) {
    for (int prefetch = 0; prefetch < 2; ++prefetch) {
      double sum[kSteps] = {};
      long long cta0[kSteps] = {};
      int runs = 0;
      for (int it = 0; it < 24; ++it) {
        const int c = scenario >= 2 ? it % kCopies : 0;
        if (scenario == 1 || scenario == 3) flush<<<264, 512>>>(junk, junk_n);
        probe<<<kCtas, 128>>>(maps[c], (const int*)plans[c], (const int*)tables[c], prefetch, d_out);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        if (it < 8) continue;  // warm-up (and the first pass over the copies)
        std::vector<long long> h(kCtas * kSteps);
        CK(cudaMemcpy(h.data(), d_out, h.size() * 8, cudaMemcpyDeviceToHost));
        for (int b = 0; b < kCtas; ++b)
          for (int i = 0; i < kSteps; ++i) sum[i] += (double)h[b * kSteps + i] / kCtas;
        for (int i = 0; i < kSteps; ++i) cta0[i] += h[i];
        ++runs;
      }
      printf("%-36s prefetch %d | mean over CTAs, cycles from entry: load1 %6.0f load2 %6.0f tma1 %6.0f tma2 %6.0f "
             "load3 %6.0f | CTA 0: %lld %lld %lld %lld %lld\n",
             names[scenario], prefetch, sum[1] / runs, sum[2] / runs, sum[3] / runs, sum[4] / runs, sum[5] / runs,
             cta0[1] / runs, cta0[2] / runs, cta0[3] / runs, cta0[4] / runs, cta0[5] / runs);
    }
  }
  return 0;
}
