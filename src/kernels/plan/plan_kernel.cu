// The device planner: one thread runs the same compute_split_plan the host
// tests check, from device-resident lengths (no host round trip). Lengths and
// plan live in shared memory while it runs: the walk is serial, and global
// memory latency on every step would cost hundreds of microseconds.
#include "common/split_plan.h"
#include "kernels/common/params.h"

namespace openmla::kernels {

constexpr int kPlanThreads = 256;
constexpr size_t kPlanSmemLimit = 200 * 1024;

__global__ void __launch_bounds__(kPlanThreads) plan_kernel(const int32_t* seqlens, int batch,
                                                            int max_blocks_per_seq, int num_parts,
                                                            size_t plan_bytes, bool use_smem,
                                                            int s_q, int h_q, int h_kv, int segment_cost8,
                                                            void* plan) {
  extern __shared__ __align__(16) unsigned char smem[];
  // The merge counters and the padding after the request table are zeroed
  // too, so the device plan is byte-identical to the host one
  // (openmla_plan_host).
  if (!use_smem) {
    for (size_t i = threadIdx.x; i < plan_bytes / 16; i += blockDim.x)
      static_cast<int4*>(plan)[i] = make_int4(0, 0, 0, 0);
    __syncthreads();
    if (threadIdx.x == 0) {
      compute_split_plan(seqlens, batch, max_blocks_per_seq, num_parts, plan,
                         min_blocks_per_part_for(s_q, h_q, h_kv), segment_cost8);
      stamp_plan_shape(plan, s_q, h_q, h_kv);
    }
    return;
  }
  int32_t* s_len = reinterpret_cast<int32_t*>(smem);
  void* s_plan = smem + align_up((size_t)batch * 4, 16);
  for (int i = threadIdx.x; i < batch; i += blockDim.x) s_len[i] = seqlens[i];
  for (size_t i = threadIdx.x; i < plan_bytes / 16; i += blockDim.x)
    static_cast<int4*>(s_plan)[i] = make_int4(0, 0, 0, 0);
  __syncthreads();
  if (threadIdx.x == 0) {
    compute_split_plan(s_len, batch, max_blocks_per_seq, num_parts, s_plan,
                       min_blocks_per_part_for(s_q, h_q, h_kv), segment_cost8);
    stamp_plan_shape(s_plan, s_q, h_q, h_kv);
  }
  __syncthreads();
  const int4* src = static_cast<const int4*>(s_plan);
  int4* dst = static_cast<int4*>(plan);
  for (size_t i = threadIdx.x; i < plan_bytes / 16; i += blockDim.x) dst[i] = src[i];
}

cudaError_t launch_plan(const int32_t* seqlens, int batch, int max_blocks_per_seq, int num_parts,
                        int s_q, int h_q, int h_kv, int segment_cost8, void* plan, cudaStream_t stream) {
  // The plan region (merge counters included) is a multiple of 256 bytes.
  const size_t plan_bytes = plan_region_bytes(batch, num_parts, s_q, h_q, h_kv);
  const size_t smem = align_up((size_t)batch * 4, 16) + plan_bytes;
  const bool use_smem = smem <= kPlanSmemLimit;
  if (use_smem && smem > 48 * 1024) {
    cudaError_t err = cudaFuncSetAttribute(plan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)smem);
    if (err != cudaSuccess) return err;
  }
  plan_kernel<<<1, kPlanThreads, use_smem ? smem : 0, stream>>>(
      seqlens, batch, max_blocks_per_seq, num_parts, plan_bytes, use_smem, s_q, h_q, h_kv, segment_cost8, plan);
  return cudaGetLastError();
}

}  // namespace openmla::kernels
