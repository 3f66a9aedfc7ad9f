// Parameters shared by the dense decode, combine and plan kernels. Plain data,
// strides in elements; filled by src/host after every argument is checked.
#ifndef OPENMLA_KERNELS_COMMON_PARAMS_H_
#define OPENMLA_KERNELS_COMMON_PARAMS_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace openmla::kernels {

struct DenseDecodeParams {
  const void* q;
  int64_t q_stride_b, q_stride_s, q_stride_h;
  const void* k_cache;
  int64_t k_num_blocks;
  int64_t k_stride_block, k_stride_token, k_stride_head;
  const int32_t* block_table;
  int64_t block_table_stride;
  const int32_t* seqlens;
  void* out;
  int64_t o_stride_b, o_stride_s, o_stride_h;
  float* lse;
  int64_t lse_stride_b, lse_stride_h;  // the s_q dim is contiguous

  const void* plan;  // PlanHeader | PartMeta[num_parts] | RequestMeta[batch]
  float* o_accum;    // [max_segments, h_kv * num_row_tiles, 64 x 512] (kernels/common/partials.cuh)
  float* lse_accum;  // [max_segments, s_q * h_q]
  int32_t* merge_counters;  // [batch, h_kv * num_row_tiles], in the plan region

  int batch, s_q, h_q, h_kv;
  int group;          // h_q / h_kv
  int rows;           // s_q * group: query rows that share one kv head
  int num_row_tiles;  // ceil(rows / 64)
  int num_parts;
  float scale_log2;   // softmax_scale * log2(e)
  int causal;
  int variant;        // DenseKernel
  // The seesaw kernel merges split requests itself (kernels/common/merge.cuh;
  // launched cooperatively) and writes the rows the combine kernel would.
  int fused_merge;
  // The seesaw kernel merges each request of exactly two segments (the one
  // that finishes second, from its registers); the combine kernel skips them.
  int pair_merge;
  // The two row tiles of a kv head run as a cluster of 2 that fetches each
  // cache block once (TMA multicast); the launch clears it where it cannot,
  // or (2: forced) fails with cudaErrorNotSupported.
  int multicast;
  // Column halves (seesaw): 0 never, 1 where a kv head has >= 2 row tiles,
  // the CTAs that may get work would fill at most half of num_sms and the
  // halves can pair by multicast, 2 (forced, for tests) whenever the seesaw
  // kernel runs;
  // the launch clears it where it does not use them (kernels/sm90/dense_decode/
  // seesaw_kernel.cuh). num_sms: the SMs the plan was made for.
  int split_columns;
  int num_sms;
  int max_blocks_per_seq;  // block_table's width
  // The combine kernel is launched as a programmatic dependent of the decode
  // kernel (its launch and plan reads overlap the decode's tail; it waits on
  // the decode grid before reading partials). OPENMLA_PDL=0 turns it off;
  // 2 (the default): the seesaw decode kernel is also launched as a
  // programmatic dependent of the kernel before it (it waits for that kernel
  // at entry).
  int pdl;
  // A CTA whose part is done takes blocks from the end of a part still
  // running (seesaw kernel, plain grid; the launch clears it elsewhere).
  // steal_slot0: the segment slot of part 0's stolen range. steal_delay_ns
  // (tests only): odd parts start that much later, so that steals happen.
  int steal;
  int steal_slot0;
  int steal_delay_ns;
  // Its state (kernels/sm90/dense_decode/steal.cuh), in the plan region:
  // [num_parts][tiles] words, then as many "stolen range stored" flags; after
  // the workspace's lse_accum, two statistics (steals, protocol faults) that
  // only tests read (split_plan.h). Last in the struct, so that the other
  // fields keep their offsets.
  uint32_t* steal_words;
  int32_t* steal_done;
  int32_t* steal_stats;
};

// Which dense decode kernel runs: the seesaw wgmma + TMA one, the first wgmma
// one (one warpgroup does S and softmax), or the portable mma.sync one; the
// last two are kept as cross-checks (OPENMLA_DENSE_KERNEL).
enum DenseKernel { kDenseWgmma = 0, kDenseMmaSync = 1, kDenseSeesaw = 2 };

enum class Dtype { kBf16, kFp16 };

// Clears p.fused_merge when the kernel run cannot merge in-kernel (another
// variant, or a grid that cannot be resident at once); the caller then
// launches the combine kernel.
template <Dtype T>
cudaError_t launch_dense_decode(DenseDecodeParams& p, cudaStream_t stream);
template <Dtype T>
cudaError_t launch_combine(const DenseDecodeParams& p, cudaStream_t stream);
cudaError_t launch_plan(const int32_t* seqlens, int batch, int max_blocks_per_seq,
                        int num_parts, int s_q, int h_q, int h_kv, int segment_cost8,
                        void* plan, cudaStream_t stream);

}  // namespace openmla::kernels

#endif  // OPENMLA_KERNELS_COMMON_PARAMS_H_
