// Developer tool (not built by CMake): how many cycles the seesaw kernel's
// GEMMs take on their own, with operands already in shared memory, so the
// pair period (bench/NOTES.md) can be set against what the tensor cores and
// shared memory deliver for exactly these shapes, not the datasheet:
//   S  = one 64x64 score tile, 36 k-steps of m64n64k16, both operands from
//        smem (Q and a cache block, chunked as the kernel lays them out);
//   PVr = 4 k-steps of m64n256k16, P from registers, V from smem (MN-major);
//   PVs = the same with P from a smem tile.
// Each mode runs `reps` times back to back in every CTA of a full grid (one
// CTA an SM, 256 threads); cycles a repetition = mean over CTAs of
// (clock64 at the end - at the start) / reps, thread 0 of each warpgroup.
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I src tools/dev/wgmma_rate.cu -o wgmma_rate
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/common/wgmma.cuh"

#include "cuda_check.h"

namespace wg = openmla::kernels::wgmma;
using T = __nv_bfloat16;

constexpr int kChunk = 64 * 128;     // one 64-row x 64-column chunk, 128-byte rows
constexpr int kTile = 9 * kChunk;    // a 64 x 576 tile
constexpr int kSmem = 3 * kTile + kChunk + 1024;

// What each warpgroup runs a repetition: bit 0 S, bit 1 PVr, bit 2 PVs.
struct Mode {
  const char* name;
  int wg0, wg1;
};
constexpr Mode kModes[] = {
    {"S alone (WG0)", 1, 0},
    {"S in both WGs (other block)", 1, 1},
    {"PVr alone (WG0)", 2, 0},
    {"PVs alone (WG0)", 4, 0},
    {"PVr in both WGs", 2, 2},
    {"S + PVr + PVs in both WGs (a pair's tensor work)", 7, 7},
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__global__ void __launch_bounds__(256, 1) rate_kernel(int wg0_mode, int wg1_mode, int reps, long long* cycles,
                                                      float* sink) {
  extern __shared__ unsigned char raw[];
  unsigned char* base = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw) + 1023) & ~uintptr_t(1023));
  // Small finite values everywhere (timing does not depend on them much,
  // but zeros could take a cheaper path).
  for (int i = threadIdx.x; i < (3 * kTile + kChunk) / 2; i += blockDim.x)
    reinterpret_cast<T*>(base)[i] = __float2bfloat16(0.01f * ((i * 37 + blockIdx.x) % 17 - 8));
  __syncthreads();
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();

  // Through a shuffle, so ptxas knows both are warp-uniform (otherwise it
  // serialises every wgmma behind the branches: C7520).
  const int wgi = __shfl_sync(0xffffffff, (int)threadIdx.x / 128, 0);
  const int mode = __shfl_sync(0xffffffff, wgi == 0 ? wg0_mode : wg1_mode, 0);
  const uint32_t q = smem_u32(base), k = smem_u32(base + kTile * (1 + wgi)), pt = smem_u32(base + 3 * kTile);
  const uint64_t dq = wg::desc_sw128(q, 16, 1024), dk = wg::desc_sw128(k, 16, 1024);
  const uint64_t dv = wg::desc_sw128(k + (wgi ? 4 * kChunk : 0), kChunk, 1024), dp = wg::desc_sw128(pt, 16, 1024);
  float s[32], o[128];
  for (int i = 0; i < 32; ++i) s[i] = 0.f;
  for (int i = 0; i < 128; ++i) o[i] = 0.f;
  uint32_t pk[16];
  for (int i = 0; i < 16; ++i) pk[i] = 0x3c003c00u ^ (threadIdx.x * 0x00010001u & 0x000f000fu);

  long long t0 = clock64();
  if (mode != 0) {
    for (int r = 0; r < reps; ++r) {
      wg::fence();
      if (mode & 1) {
#pragma unroll
        for (int kk = 0; kk < 36; ++kk) {
          const uint64_t off = ((kk / 4) * kChunk + (kk % 4) * 32) >> 4;
          wg::Wgmma<64, T>::mma<0>(s, dq + off, dk + off, kk == 0 ? 0 : 1);
        }
        wg::commit();
      }
      if (mode & 2) {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) wg::Wgmma<256, T>::mma_rs<1>(o, pk + 4 * kk, dv + kk * 128, 1);
        wg::commit();
      }
      if (mode & 4) {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) wg::Wgmma<256, T>::mma<1>(o, dp + kk * 2, dv + kk * 128, 1);
        wg::commit();
      }
      wg::wait<0>();
      wg::fence_regs<32>(s);
      wg::fence_regs<128>(o);
    }
  }
  long long t1 = clock64();
  if (threadIdx.x % 128 == 0) cycles[blockIdx.x * 2 + wgi] = t1 - t0;
  float acc = 0.f;
  for (int i = 0; i < 32; ++i) acc += s[i];
  for (int i = 0; i < 128; ++i) acc += o[i];
  if (acc == 12345.f) sink[threadIdx.x] = acc;  // keeps the GEMMs alive
}

int main(int argc, char** argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 200;
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CK(cudaFuncSetAttribute(rate_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  long long* d_cycles;
  float* d_sink;
  CK(cudaMalloc(&d_cycles, sizeof(long long) * 2 * sms));
  CK(cudaMalloc(&d_sink, sizeof(float) * 256));
  std::vector<long long> h(2 * sms);
  printf("cycles a repetition, mean over %d CTAs (min, max), %d repetitions; ideal at 1024 dense bf16 FMA/clk/SM:\n"
         "S 1152, PVr or PVs 512, S + PVr + PVs 2176 a warpgroup\n",
         sms, reps);
  for (const Mode& m : kModes) {
    for (int pass = 0; pass < 2; ++pass) {  // the first pass warms clocks and caches
      rate_kernel<<<sms, 256, kSmem>>>(m.wg0, m.wg1, reps, d_cycles, d_sink);
      CK(cudaGetLastError());
      CK(cudaDeviceSynchronize());
    }
    CK(cudaMemcpy(h.data(), d_cycles, sizeof(long long) * 2 * sms, cudaMemcpyDeviceToHost));
    for (int w = 0; w < 2; ++w) {
      if ((w == 0 ? m.wg0 : m.wg1) == 0) continue;
      double sum = 0, mn = 1e30, mx = 0;
      for (int b = 0; b < sms; ++b) {
        const double c = (double)h[b * 2 + w] / reps;
        sum += c;
        mn = c < mn ? c : mn;
        mx = c > mx ? c : mx;
      }
      printf("  %-50s WG%d: %7.1f (%.1f, %.1f)\n", m.name, w, sum / sms, mn, mx);
    }
  }
  return 0;
}
