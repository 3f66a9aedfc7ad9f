// Developer tool (not built by CMake): how many bytes a cycle one SM can take
// in, by each way the kernels load (bench/NOTES.md, 2026-12-03): 1-D bulk
// copies, 2-D tensor copies of the seesaw kernel's box (64 rows x 128 B of a
// 1152-byte cache row, 128-byte swizzle, 8 KB), both with and without TMA
// multicast to a cluster of 2, and cp.async (LSU) from every thread; alone
// (2 CTAs) and with every SM loading, from L2 and from HBM.
// Bulk/tensor: `issuers` threads (lane 0 of warps 0..issuers-1) each keep a
// ring of depth/issuers 8 KB slots full (full barrier a slot; under multicast
// a slot's owner, rank s % 2, issues into both CTAs after both released it, as
// the kernel's GroupLoader does). LSU: each thread copies its 64 B of a slot
// (4 x 16 B), one commit group a slot, 12 groups in flight.
// Cycles from the first issue to the last landing (thread 0, after a CTA
// barrier), mean over CTAs; B/cycle = bytes each SM received / that.
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I src -I tools/dev tools/dev/load_rate.cu
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cuda_check.h"
#include "kernels/common/ptx.cuh"

namespace ptx = openmla::kernels::ptx;

constexpr int kSlotBytes = 8192;
constexpr int kMaxDepth = 24;  // 192 KB of slots
constexpr int kRowBytes = 1152, kCols = 576, kBoxRows = 64;
constexpr int kLsuDepth = 12;

enum Path { kBulk = 0, kTensor = 1 };

__device__ __forceinline__ void issue(int path, void* dst, const CUtensorMap* map, const unsigned char* src, int col,
                                      int row, uint64_t* bar, bool multicast) {
  const uint32_t d = ptx::smem_addr(dst), b = ptx::smem_addr(bar);
  if (path == kBulk) {
    if (multicast)
      asm volatile(
          "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], "
          "%4;\n" ::"r"(d),
          "l"(src), "r"(kSlotBytes), "r"(b), "h"((unsigned short)3)
          : "memory");
    else
      asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(d),
                   "l"(src), "r"(kSlotBytes), "r"(b)
                   : "memory");
  } else {
    if (multicast)
      asm volatile(
          "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, "
          "{%2, %3}], [%4], %5;\n" ::"r"(d),
          "l"(map), "r"(col), "r"(row), "r"(b), "h"((unsigned short)3)
          : "memory");
    else
      asm volatile(
          "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
              d),
          "l"(map), "r"(col), "r"(row), "r"(b)
          : "memory");
  }
}

// Copy i of a CTA's stream: block i / 9 of its run of blocks, column chunk i % 9.
__global__ void __launch_bounds__(128, 1)
    tma_rate(const __grid_constant__ CUtensorMap map, const unsigned char* src, size_t region, size_t base_block,
             size_t blocks_in_region, int copies, int depth, int issuers, int path, int multicast, long long* cycles) {
  extern __shared__ __align__(1024) unsigned char slots[];
  __shared__ uint64_t full[kMaxDepth], empty[kMaxDepth];
  const uint32_t rank = multicast ? ptx::cluster_ctarank() : 0;
  if (threadIdx.x == 0) {
    for (int s = 0; s < depth; ++s) {
      ptx::mbar_init(&full[s], 1);
      ptx::mbar_init(&empty[s], multicast ? 2 : 1);
    }
    ptx::fence_mbar_init();
  }
  __syncthreads();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int ring = depth / issuers, mine = copies / issuers;
  if (lane == 0 && warp < issuers)
    for (int s = 0; s < ring && s < mine; ++s) ptx::mbar_arrive_expect_tx(&full[warp * ring + s], kSlotBytes);
  __syncwarp();  // barrier.cluster is .aligned: the warp converged first
  if (multicast)
    ptx::cluster_sync();  // both armed before either copies into the other
  else
    __syncthreads();
  const long long t0 = clock64();
  if (lane == 0 && warp < issuers) {
    const size_t group = multicast ? blockIdx.x / 2 : blockIdx.x;  // a cluster reads one stream
    // One 64-bit modulo here, none in the loop: an earlier version paid two
    // a copy (~1000 cycles of one thread's dependent arithmetic) and measured
    // that instead of the copies.
    const uint32_t first_block = (uint32_t)((base_block + group * (size_t)(copies / 9 + 1)) % blocks_in_region);
    const uint32_t nblk = (uint32_t)blocks_in_region;
    for (int k = 0; k < mine + ring - 1; ++k) {
      if (k < mine) {
        const int i = k * issuers + warp;  // the stream's copies, interleaved over the issuers
        const int s = warp * ring + k % ring, round = k / ring;
        const uint32_t owner = multicast ? (uint32_t)(s % 2) : 0u;
        if (rank == owner) {
          if (round > 0) ptx::mbar_wait(&empty[s], (round - 1) & 1);  // every CTA released the last round
          uint32_t blk = first_block + (uint32_t)(i / 9);
          if (blk >= nblk) blk -= nblk;
          const unsigned char* p = src + ((size_t)blk * 9 + i % 9) * (size_t)kSlotBytes;
          issue(path, slots + s * kSlotBytes, &map, p, (i % 9) * 64, (int)(blk * kBoxRows), &full[s], multicast != 0);
        }
      }
      const int j = k - (ring - 1);  // consume this issuer's copy j: its slot goes back
      if (j >= 0 && j < mine) {
        const int s = warp * ring + j % ring;
        ptx::mbar_wait(&full[s], (j / ring) & 1);
        if (j + ring < mine) {
          ptx::mbar_arrive_expect_tx(&full[s], kSlotBytes);  // armed before the release: cannot land first
          if (multicast)
            ptx::mbar_arrive_cluster(&empty[s], (uint32_t)(s % 2));
          else
            ptx::mbar_arrive(&empty[s]);
        }
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) cycles[blockIdx.x] = clock64() - t0;
  if (multicast) ptx::cluster_sync();  // the peer may still arrive on our barriers
}

// The same stream by cp.async from every thread: a slot is 64 rows x 128 B,
// thread t copies row t / 2's half t % 2 (with 256 threads, two slots a round).
template <int kThreads>
__global__ void __launch_bounds__(kThreads, 1)
    lsu_rate(const unsigned char* src, size_t base_block, size_t blocks_in_region, int copies, long long* cycles) {
  extern __shared__ __align__(1024) unsigned char slots[];
  constexpr int kSlotsARound = kThreads / 128;
  const int t = threadIdx.x % 128, sub = threadIdx.x / 128;
  const uint32_t first_block = (uint32_t)((base_block + blockIdx.x * (size_t)(copies / 9 + 1)) % blocks_in_region);
  const uint32_t nblk = (uint32_t)blocks_in_region;
  __syncthreads();
  const long long t0 = clock64();
  for (int r = 0; r < copies / kSlotsARound; ++r) {
    const int i = r * kSlotsARound + sub;
    uint32_t blk = first_block + (uint32_t)(i / 9);
    if (blk >= nblk) blk -= nblk;
    const unsigned char* row = src + ((size_t)blk * kBoxRows + t / 2) * kRowBytes + (i % 9) * 128 + (t % 2) * 64;
    const uint32_t dst = ptx::smem_addr(slots + ((r % kLsuDepth) * kSlotsARound + sub) * kSlotBytes) + t * 64;
#pragma unroll
    for (int q = 0; q < 4; ++q)
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst + q * 16), "l"(row + q * 16) : "memory");
    ptx::cp_async_commit();
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kLsuDepth - 1) : "memory");
  }
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
  __syncthreads();
  if (threadIdx.x == 0) cycles[blockIdx.x] = clock64() - t0;
}

int main() {
  const size_t hbm_region = (size_t)8 << 30, l2_region = (size_t)16 << 20;
  unsigned char* buf;
  CK(cudaMalloc(&buf, hbm_region));
  CK(cudaMemset(buf, 1, hbm_region));
  long long* d_cycles;
  CK(cudaMalloc(&d_cycles, 256 * sizeof(long long)));
  const int smem = kMaxDepth * kSlotBytes;
  CK(cudaFuncSetAttribute(tma_rate, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  CK(cudaFuncSetAttribute(lsu_rate<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  CK(cudaFuncSetAttribute(lsu_rate<256>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));

  void* encode = nullptr;
  cudaDriverEntryPointQueryResult q;
  CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &encode, 12000, cudaEnableDefault, &q));
  auto make_map = [&](size_t region) {
    CUtensorMap m;
    cuuint64_t dims[2] = {kCols, region / kRowBytes};
    cuuint64_t strides[1] = {kRowBytes};
    cuuint32_t box[2] = {64, kBoxRows}, es[2] = {1, 1};
    CUresult r = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(encode)(
        &m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, buf, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      printf("encode failed %d\n", (int)r);
      exit(1);
    }
    return m;
  };
  const CUtensorMap maps[2] = {make_map(l2_region), make_map(hbm_region)};

  constexpr int kCopies = 9 * 20;  // 20 blocks of 72 KB, 1.4 MB a CTA
  struct Config {
    const char* name;
    int path, multicast, depth, issuers, lsu_threads;
  };
  const Config configs[] = {
      {"bulk", kBulk, 0, 24, 1, 0},          {"bulk mc", kBulk, 1, 24, 1, 0},
      {"tensor d8", kTensor, 0, 8, 1, 0},    {"tensor d24", kTensor, 0, 24, 1, 0},
      {"tensor 2iss", kTensor, 0, 24, 2, 0}, {"tensor mc", kTensor, 1, 24, 1, 0},
      {"tensor mc 2iss", kTensor, 1, 24, 2, 0}, {"lsu 128t", 0, 0, 0, 0, 128},
      {"lsu 256t", 0, 0, 0, 0, 256},
  };
  printf("source  path             ctas  cycles/CTA  B/cycle/SM  kernel(us)  GB/s into SMs\n");
  size_t rot = 0;
  for (int hbm = 0; hbm < 2; ++hbm)
    for (const Config& c : configs)
      for (int ctas : {2, 132}) {
        const size_t region = hbm ? hbm_region : l2_region;
        const size_t blocks_in_region = region / ((size_t)kBoxRows * kRowBytes);
        std::vector<double> cyc;
        float best_ms = 1e9f;
        for (int it = 0; it < 12; ++it) {
          // HBM: each launch starts 256 MB further on (what it reads is not in L2).
          const size_t base_block = hbm ? (rot++ % 24) * (((size_t)256 << 20) / ((size_t)kBoxRows * kRowBytes)) : 0;
          CK(cudaEventRecord(e0));
          if (c.lsu_threads == 128)
            lsu_rate<128><<<ctas, 128, smem>>>(buf, base_block, blocks_in_region, kCopies, d_cycles);
          else if (c.lsu_threads == 256)
            lsu_rate<256><<<ctas, 256, smem>>>(buf, base_block, blocks_in_region, kCopies, d_cycles);
          else {
            cudaLaunchAttribute attr[1];
            attr[0].id = cudaLaunchAttributeClusterDimension;
            attr[0].val.clusterDim.x = c.multicast ? 2 : 1;
            attr[0].val.clusterDim.y = 1;
            attr[0].val.clusterDim.z = 1;
            cudaLaunchConfig_t cfg{};
            cfg.gridDim = dim3(ctas);
            cfg.blockDim = dim3(128);
            cfg.dynamicSmemBytes = smem;
            cfg.attrs = attr;
            cfg.numAttrs = 1;
            CK(cudaLaunchKernelEx(&cfg, tma_rate, maps[hbm], (const unsigned char*)buf, region, base_block,
                                  blocks_in_region, kCopies, c.depth, c.issuers, c.path, c.multicast, d_cycles));
          }
          CK(cudaGetLastError());
          CK(cudaEventRecord(e1));
          CK(cudaEventSynchronize(e1));
          float ms;
          CK(cudaEventElapsedTime(&ms, e0, e1));
          if (it < 2) continue;
          best_ms = std::min(best_ms, ms);
          std::vector<long long> h(ctas);
          CK(cudaMemcpy(h.data(), d_cycles, ctas * sizeof(long long), cudaMemcpyDeviceToHost));
          double sum = 0;
          for (long long v : h) sum += (double)v;
          cyc.push_back(sum / ctas);
        }
        std::sort(cyc.begin(), cyc.end());
        const double cy = cyc[cyc.size() / 2];
        const double bytes = (double)kCopies * kSlotBytes;
        printf("%-6s  %-15s  %4d  %10.0f  %10.1f  %10.2f  %13.0f\n", hbm ? "HBM" : "L2", c.name, ctas, cy, bytes / cy,
               best_ms * 1e3, ctas * bytes / (best_ms * 1e-3) / 1e9);
      }
  return 0;
}
