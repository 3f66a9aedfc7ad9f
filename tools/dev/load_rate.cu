// Developer tool (not built by CMake): how many bytes a cycle one SM can take
// in through bulk copies (the seesaw kernel's refills), alone and with every
// SM loading, from L2 and from HBM, and whether TMA multicast to a cluster of
// 2 raises what each SM receives (the h_q = 128 pair moves 144 KB into each
// SM every ~6200 cycles; bench/NOTES.md 2026-12-02 reads its refills as ~34
// B/cycle, and multicast gave 2%, not 10-20%).
// One CTA an SM, thread 0 keeps kDepth copies of 16 KB in flight through a
// ring of smem slots (full barrier a slot; under multicast the slot's owner,
// rank s % 2, issues into both CTAs after both released it on its empty
// barrier, as the kernel's GroupLoader does). Cycles from the first issue to
// the last landing, mean over CTAs; B/cycle = bytes each SM received / that.
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I src -I tools/dev tools/dev/load_rate.cu
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cuda_check.h"
#include "kernels/common/ptx.cuh"

namespace ptx = openmla::kernels::ptx;

constexpr int kSlotBytes = 16384;
constexpr int kMaxDepth = 12;  // 192 KB of slots

__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint64_t* bar, bool multicast) {
  if (multicast)
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], "
        "%4;\n" ::"r"(ptx::smem_addr(dst)),
        "l"(src), "r"(kSlotBytes), "r"(ptx::smem_addr(bar)), "h"((unsigned short)3)
        : "memory");
  else
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                     ptx::smem_addr(dst)),
                 "l"(src), "r"(kSlotBytes), "r"(ptx::smem_addr(bar))
                 : "memory");
}

__global__ void __launch_bounds__(128, 1)
    load_rate(const unsigned char* src, size_t region, size_t base, int copies, int depth, int multicast,
              long long* cycles) {
  extern __shared__ __align__(1024) unsigned char slots[];
  __shared__ uint64_t full[kMaxDepth], empty[kMaxDepth];
  const uint32_t rank = multicast ? ptx::cluster_ctarank() : 0;
  if (threadIdx.x == 0) {
    for (int s = 0; s < depth; ++s) {
      ptx::mbar_init(&full[s], 1);
      ptx::mbar_init(&empty[s], multicast ? 2 : 1);
    }
    ptx::fence_mbar_init();
    for (int s = 0; s < depth && s < copies; ++s) ptx::mbar_arrive_expect_tx(&full[s], kSlotBytes);
  }
  __syncwarp();  // barrier.cluster is .aligned: the warp converged first
  if (multicast)
    ptx::cluster_sync();  // both armed before either copies into the other
  else
    __syncthreads();
  if (threadIdx.x == 0) {
    const size_t group = multicast ? blockIdx.x / 2 : blockIdx.x;  // a cluster reads one stream
    const size_t off = base + group * (size_t)copies * kSlotBytes;
    const long long t0 = clock64();
    for (int i = 0; i < copies + depth - 1; ++i) {
      if (i < copies) {
        const int s = i % depth, k = i / depth;
        const uint32_t owner = multicast ? (uint32_t)(s % 2) : 0u;
        if (rank == owner) {
          if (k > 0) ptx::mbar_wait(&empty[s], (k - 1) & 1);  // every CTA released round k - 1
          bulk_copy(slots + s * kSlotBytes, src + (off + (size_t)i * kSlotBytes) % region, &full[s], multicast != 0);
        }
      }
      const int j = i - (depth - 1);  // consume copy j: its slot goes back
      if (j >= 0 && j < copies) {
        const int s = j % depth;
        ptx::mbar_wait(&full[s], (j / depth) & 1);
        if (j + depth < copies) {
          ptx::mbar_arrive_expect_tx(&full[s], kSlotBytes);  // armed before the release: cannot land first
          if (multicast)
            ptx::mbar_arrive_cluster(&empty[s], (uint32_t)(s % 2));
          else
            ptx::mbar_arrive(&empty[s]);
        }
      }
    }
    cycles[blockIdx.x] = clock64() - t0;
  }
  __syncthreads();
  if (multicast) ptx::cluster_sync();  // the peer may still arrive on our barriers
}

int main() {
  const size_t hbm_region = (size_t)8 << 30, l2_region = (size_t)16 << 20;
  unsigned char* buf;
  CK(cudaMalloc(&buf, hbm_region));
  CK(cudaMemset(buf, 1, hbm_region));
  long long* d_cycles;
  CK(cudaMalloc(&d_cycles, 256 * sizeof(long long)));
  const int smem = kMaxDepth * kSlotBytes;
  CK(cudaFuncSetAttribute(load_rate, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  constexpr int kCopies = 96;  // 1.5 MB a CTA
  printf("source  multicast  depth  ctas  cycles/CTA  B/cycle/SM  kernel(us)  GB/s into SMs\n");
  size_t rot = 0;
  for (int hbm = 0; hbm < 2; ++hbm)
    for (int mc = 0; mc < 2; ++mc)
      for (int depth : {4, 12})
        for (int ctas : {2, 16, 66, 132}) {
          std::vector<double> cyc;
          float best_ms = 1e9f;
          for (int it = 0; it < 12; ++it) {
            const size_t region = hbm ? hbm_region : l2_region;
            // HBM: each launch starts 256 MB further on (what it reads is not in L2).
            const size_t base = hbm ? (rot++ % 24) * ((size_t)256 << 20) : 0;
            cudaLaunchAttribute attr[1];
            attr[0].id = cudaLaunchAttributeClusterDimension;
            attr[0].val.clusterDim.x = mc ? 2 : 1;
            attr[0].val.clusterDim.y = 1;
            attr[0].val.clusterDim.z = 1;
            cudaLaunchConfig_t cfg{};
            cfg.gridDim = dim3(ctas);
            cfg.blockDim = dim3(128);
            cfg.dynamicSmemBytes = smem;
            cfg.attrs = attr;
            cfg.numAttrs = 1;
            CK(cudaEventRecord(e0));
            CK(cudaLaunchKernelEx(&cfg, load_rate, (const unsigned char*)buf, region, base, kCopies, depth, mc,
                                  d_cycles));
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            if (it < 2) continue;
            best_ms = std::min(best_ms, ms);
            std::vector<long long> h(ctas);
            CK(cudaMemcpy(h.data(), d_cycles, ctas * sizeof(long long), cudaMemcpyDeviceToHost));
            double sum = 0;
            for (long long c : h) sum += (double)c;
            cyc.push_back(sum / ctas);
          }
          std::sort(cyc.begin(), cyc.end());
          const double c = cyc[cyc.size() / 2];
          const double bytes = (double)kCopies * kSlotBytes;
          printf("%-6s  %9d  %5d  %4d  %10.0f  %10.1f  %10.2f  %13.0f\n", hbm ? "HBM" : "L2", mc, depth, ctas, c,
                 bytes / c, best_ms * 1e3, ctas * bytes / (best_ms * 1e-3) / 1e9);
        }
  return 0;
}
