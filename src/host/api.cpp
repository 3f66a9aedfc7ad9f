// The public C API: resolve the device, check, plan, dispatch. No allocation,
// no synchronisation (except openmla_read_plan_error), no exceptions out.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "common/split_plan.h"
#include "host/checks.h"
#include "kernels/common/params.h"
#include "openmla/openmla.h"

using namespace openmla;

namespace {

openmla_status cuda_error(cudaError_t err, const char* what) {
  return make_error(OPENMLA_ERROR_CUDA, "%s: CUDA error %s (%s)", what, cudaGetErrorName(err),
                    cudaGetErrorString(err));
}

// 0 means "the current device": reading an attribute does not synchronise.
openmla_status resolve_num_sms(int requested, int* num_sms) {
  if (requested > 0) {
    *num_sms = requested;
    return ok_status();
  }
  if (requested < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "num_sms: must be >= 0, got %d", requested);
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(num_sms, cudaDevAttrMultiProcessorCount, dev);
  if (err != cudaSuccess) return cuda_error(err, "num_sms (reading the current device)");
  return ok_status();
}

openmla_status resolved_shape(const openmla_decode_shape* in, openmla_decode_shape* out) {
  if (in == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "shape: null pointer");
  *out = *in;
  if (in->num_sms < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "num_sms: must be >= 0, got %d", in->num_sms);
  out->num_sms = in->num_sms > 0 ? in->num_sms : 1;  // shape checks need no device
  openmla_status s = check_decode_shape(out);
  if (s.code != OPENMLA_OK) return s;
  s = resolve_num_sms(in->num_sms, &out->num_sms);
  if (s.code != OPENMLA_OK) return s;
  return check_decode_shape(out);
}

// A setting read from the environment: the index of its value in `values`,
// `unset` when the variable is not set, -1 (an error, never ignored) otherwise.
int env_choice(const char* var, std::initializer_list<const char*> values, int unset) {
  const char* e = std::getenv(var);
  if (e == nullptr) return unset;
  int i = 0;
  for (const char* v : values) {
    if (std::strcmp(e, v) == 0) return i;
    ++i;
  }
  return -1;
}

// -DOPENMLA_AB_NO_COMBINE=1, measurement builds only (split requests' outputs
// are then wrong): the step without its combine launch, which times how much
// of the combine the step exposes (bench/NOTES.md, 2026-12-07).
#ifndef OPENMLA_AB_NO_COMBINE
#define OPENMLA_AB_NO_COMBINE 0
#endif
constexpr bool kLaunchCombine = !OPENMLA_AB_NO_COMBINE;

// OPENMLA_DENSE_KERNEL=wgmma|mma_sync selects an older kernel (cross-checks to
// compare against); anything but those and 'seesaw' is an error, not ignored.
int dense_kernel_variant() {
  static_assert(kernels::kDenseWgmma == 0 && kernels::kDenseMmaSync == 1 && kernels::kDenseSeesaw == 2,
                "the values below are in DenseKernel order");
  static const int v = env_choice("OPENMLA_DENSE_KERNEL", {"wgmma", "mma_sync", "seesaw"}, kernels::kDenseSeesaw);
  return v;
}

// Where split requests are merged: with OPENMLA_MERGE=combine by the combine
// kernel; with OPENMLA_MERGE=pair, requests of two segments by whichever seesaw CTA
// finishes its segment second, from its registers, the rest by the combine
// kernel; or with OPENMLA_MERGE=kernel all inside the seesaw decode kernel
// where its grid can be resident at once (kernels/common/merge.cuh), which
// measured as fast or slower on every benchmark shape on an H200
// (bench/NOTES.md, 2026-12-01, second session). Read on every call.
// Unset (the default): the pair merge where a kv head has at most four
// 64-row tiles (s_q * h_q / h_kv <= 256), the combine kernel otherwise.
// Measured on an H200 in one call, two rounds (bench/NOTES.md, 2026-12-02,
// fifth session): pair against combine b128 s_q1 h128 -1.7%, h64 -2.2%,
// h16 +0.4%, s_q2 h128 (four row tiles) s_k8192 +2%; on an H100
// (2026-12-07), s_q2 h128 s_k4096 -4.8% (quick runs; -0.9% in full ones),
// causal -2.8% (-0.6%), s_k8192 -0.9%, so four row tiles pair too. Taller
// shapes were not measured.
enum { kMergeCombine = 0, kMergeInKernel = 1, kMergePair = 2, kMergeByShape = 3 };
int merge_mode() { return env_choice("OPENMLA_MERGE", {"combine", "kernel", "pair"}, kMergeByShape); }
int merge_for_shape(int mode, int row_tiles) {
  if (mode != kMergeByShape) return mode;
  return row_tiles <= 4 ? kMergePair : kMergeCombine;
}

// OPENMLA_MULTICAST=0|1|force: whether the seesaw kernel's row-tile pairs
// share their cache copies through TMA multicast where they can (default: 1);
// `force` (2) makes a call that cannot use it fail (tests prove it ran that
// way). Read on every call.
int multicast_mode() { return env_choice("OPENMLA_MULTICAST", {"0", "1", "force"}, 1); }

// OPENMLA_SPLIT_COLUMNS=0|1|force: whether the seesaw kernel runs each tile
// as two CTAs of 256 output columns where a kv head has two row tiles or
// more, the CTAs that may get work (from batch x block_table width) would
// fill at most half the SMs and the halves can pair by multicast (default 1);
// `force` (2) uses them on every seesaw call (tests run the suite that way)
// and makes a call to another kernel fail. Read on every call.
int split_columns_mode() { return env_choice("OPENMLA_SPLIT_COLUMNS", {"0", "1", "force"}, 1); }

// OPENMLA_PDL=0|1|2: 2 (the default): the seesaw decode kernel starts as a
// programmatic dependent of whatever kernel runs before it in the stream
// (its launch and CTA setup overlap that kernel's tail; it waits for it
// before touching memory) and the combine as one of the decode kernel;
// 1: the combine only; 0: neither (A/B runs); only under 2 does the combine
// trigger its own dependents at entry. Read on every call.
int pdl_mode() { return env_choice("OPENMLA_PDL", {"0", "1", "2"}, 2); }

// OPENMLA_STEAL=0|1: whether a seesaw CTA of the plain grid whose walk ends
// takes blocks from the end of a part still running (default 0: measured
// slower, bench/NOTES.md). For A/B runs only: 2 = the stealing kernel with
// claims but no thief, 3 = neither. Read on every call.
int steal_mode() { return env_choice("OPENMLA_STEAL", {"0", "1", "2", "3"}, 0); }

// An integer setting in [lo, hi] from the environment: `unset` when the
// variable is not set, -1 (an error, never ignored) when malformed.
int env_int(const char* var, long lo, long hi, int unset) {
  const char* e = std::getenv(var);
  if (e == nullptr) return unset;
  char* end = nullptr;
  const long v = std::strtol(e, &end, 10);
  return (end != e && *end == '\0' && v >= lo && v <= hi) ? (int)v : -1;
}

// OPENMLA_STEAL_DELAY_NS=n (tests only): odd parts start n ns late, so that
// the even ones run out first and steal. Read on every call; -1: malformed.
int steal_delay_ns() { return env_int("OPENMLA_STEAL_DELAY_NS", 0, 100000000, 0); }

// OPENMLA_PLAN_SEGMENT_COST=n (tuning runs only): what the plan's balance
// charges a segment, in eighths of a block (0-256), instead of the shape's
// default (segment_cost8_for). Read on every plan.
openmla_status plan_segment_cost8(const openmla_decode_shape& s, int* cost8) {
  *cost8 = env_int("OPENMLA_PLAN_SEGMENT_COST", 0, 256, segment_cost8_for(s.s_q, s.h_q, s.h_kv));
  if (*cost8 < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "OPENMLA_PLAN_SEGMENT_COST: must be an integer in [0, 256] when set");
  return ok_status();
}

}  // namespace

extern "C" {

const char* openmla_version(void) { return "0.1.0"; }

size_t openmla_plan_bytes(const openmla_decode_shape* shape) {
  openmla_decode_shape s;
  if (resolved_shape(shape, &s).code != OPENMLA_OK) return 0;  // 0: invalid shape
  return workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms).plan_bytes;
}

openmla_status openmla_plan_workspace_size(const openmla_decode_shape* shape, size_t* bytes) {
  if (bytes == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "bytes: null pointer");
  openmla_decode_shape s;
  openmla_status st = resolved_shape(shape, &s);
  if (st.code != OPENMLA_OK) return st;
  *bytes = workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms).total_bytes;
  return ok_status();
}

openmla_status openmla_plan(const openmla_decode_shape* shape, const int32_t* cache_seqlens_device,
                            void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  openmla_decode_shape s;
  openmla_status st = resolved_shape(shape, &s);
  if (st.code != OPENMLA_OK) return st;
  if (cache_seqlens_device == nullptr)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "cache_seqlens: null pointer");
  if (reinterpret_cast<uintptr_t>(cache_seqlens_device) % 4 != 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "cache_seqlens: misaligned for int32");
  if (workspace == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: null pointer");
  const WorkspaceLayout w = workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms);
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: must be 256-byte aligned");
  if (workspace_bytes < w.total_bytes)
    return make_error(OPENMLA_ERROR_WORKSPACE_TOO_SMALL,
                      "workspace: %zu bytes given, these shapes need %zu", workspace_bytes, w.total_bytes);
  int cost8 = 0;
  st = plan_segment_cost8(s, &cost8);
  if (st.code != OPENMLA_OK) return st;
  cudaError_t err = kernels::launch_plan(cache_seqlens_device, s.batch, s.max_blocks_per_seq,
                                         w.num_parts, s.s_q, s.h_q, s.h_kv, cost8, workspace, stream);
  if (err != cudaSuccess) return cuda_error(err, "openmla_plan launch");
  return ok_status();
}

openmla_status openmla_plan_host(const openmla_decode_shape* shape, const int32_t* cache_seqlens_host,
                                 void* plan_host, size_t plan_bytes) {
  openmla_decode_shape s;
  openmla_status st = resolved_shape(shape, &s);
  if (st.code != OPENMLA_OK) return st;
  if (cache_seqlens_host == nullptr)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "cache_seqlens: null pointer");
  if (plan_host == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "plan_host: null pointer");
  const WorkspaceLayout w = workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms);
  if (plan_bytes < w.plan_bytes)
    return make_error(OPENMLA_ERROR_WORKSPACE_TOO_SMALL, "plan_host: %zu bytes given, need %zu",
                      plan_bytes, w.plan_bytes);
  for (int r = 0; r < s.batch; ++r) {
    const int32_t len = cache_seqlens_host[r];
    if (len < 0)
      return make_error(OPENMLA_ERROR_BAD_SEQLENS, "cache_seqlens: cache_seqlens[%d] = %d is negative", r, len);
    if ((int64_t)len > (int64_t)s.max_blocks_per_seq * kPageBlock)
      return make_error(OPENMLA_ERROR_BAD_SEQLENS,
                        "cache_seqlens: cache_seqlens[%d] = %d exceeds its block_table row "
                        "(max_blocks_per_seq %d x %d tokens)",
                        r, len, s.max_blocks_per_seq, kPageBlock);
  }
  int cost8 = 0;
  st = plan_segment_cost8(s, &cost8);
  if (st.code != OPENMLA_OK) return st;
  std::memset(plan_host, 0, w.plan_bytes);
  compute_split_plan(cache_seqlens_host, s.batch, s.max_blocks_per_seq, w.num_parts, plan_host,
                     min_blocks_per_part_for(s.s_q, s.h_q, s.h_kv), cost8);
  stamp_plan_shape(plan_host, s.s_q, s.h_q, s.h_kv);
  return ok_status();
}

openmla_status openmla_upload_plan(const void* plan_host, size_t plan_bytes, void* workspace,
                                   size_t workspace_bytes, cudaStream_t stream) {
  if (plan_host == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "plan_host: null pointer");
  if (workspace == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: null pointer");
  if (workspace_bytes < plan_bytes)
    return make_error(OPENMLA_ERROR_WORKSPACE_TOO_SMALL, "workspace: smaller than the plan");
  cudaError_t err = cudaMemcpyAsync(workspace, plan_host, plan_bytes, cudaMemcpyHostToDevice, stream);
  if (err != cudaSuccess) return cuda_error(err, "openmla_upload_plan copy");
  return ok_status();
}

openmla_status openmla_dense_decode(const openmla_dense_decode_args* args, void* workspace,
                                    size_t workspace_bytes, cudaStream_t stream) {
  if (args == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "args: null pointer");
  openmla_dense_decode_args a = *args;
  // Tensor checks first (they need no device), then the device-dependent size.
  if (a.num_sms < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "num_sms: must be >= 0, got %d", a.num_sms);
  a.num_sms = 1;
  openmla_status st = check_dense_decode_args(&a, SIZE_MAX);
  if (st.code != OPENMLA_OK) return st;
  st = resolve_num_sms(args->num_sms, &a.num_sms);
  if (st.code != OPENMLA_OK) return st;
  st = check_dense_decode_args(&a, workspace_bytes);
  if (st.code != OPENMLA_OK) return st;
  if (workspace == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: null pointer");
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: must be 256-byte aligned");

  if (dense_kernel_variant() < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                      "OPENMLA_DENSE_KERNEL: must be 'seesaw', 'wgmma' or 'mma_sync' when set");
  const int merge = merge_mode();
  if (merge < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                      "OPENMLA_MERGE: must be 'combine', 'pair' or 'kernel' when set");
  const int multicast = multicast_mode();
  if (multicast < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "OPENMLA_MULTICAST: must be '0', '1' or 'force' when set");
  const int split_columns = split_columns_mode();
  if (split_columns < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "OPENMLA_SPLIT_COLUMNS: must be '0', '1' or 'force' when set");
  const int pdl = pdl_mode();
  if (pdl < 0) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "OPENMLA_PDL: must be '0', '1' or '2' when set");
  const int steal = steal_mode();
  if (steal < 0) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "OPENMLA_STEAL: must be '0', '1', '2' or '3' when set");
  const int steal_delay = steal_delay_ns();
  if (steal_delay < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                      "OPENMLA_STEAL_DELAY_NS: must be an integer in [0, 100000000] when set");
  kernels::DenseDecodeParams p{};
  p.batch = (int)a.q.shape[0];
  p.s_q = (int)a.q.shape[1];
  p.h_q = (int)a.q.shape[2];
  p.h_kv = (int)a.k_cache.shape[2];
  p.group = p.h_q / p.h_kv;
  p.rows = p.s_q * p.group;
  p.num_row_tiles = num_row_tiles(p.s_q, p.h_q, p.h_kv);
  const WorkspaceLayout w = workspace_layout(p.batch, p.s_q, p.h_q, p.h_kv, a.num_sms);
  p.num_parts = w.num_parts;
  p.q = a.q.data;
  p.q_stride_b = a.q.stride[0];
  p.q_stride_s = a.q.stride[1];
  p.q_stride_h = a.q.stride[2];
  p.k_cache = a.k_cache.data;
  p.k_num_blocks = a.k_cache.shape[0];
  p.k_stride_block = a.k_cache.stride[0];
  p.k_stride_token = a.k_cache.stride[1];
  p.k_stride_head = a.k_cache.stride[2];
  p.block_table = static_cast<const int32_t*>(a.block_table.data);
  p.block_table_stride = a.block_table.stride[0];
  p.seqlens = static_cast<const int32_t*>(a.cache_seqlens.data);
  p.out = a.out.data;
  p.o_stride_b = a.out.stride[0];
  p.o_stride_s = a.out.stride[1];
  p.o_stride_h = a.out.stride[2];
  p.lse = static_cast<float*>(a.lse.data);
  p.lse_stride_b = a.lse.stride[0];
  p.lse_stride_h = a.lse.stride[1];
  p.plan = workspace;
  p.o_accum = reinterpret_cast<float*>(static_cast<char*>(workspace) + w.o_accum_offset);
  p.lse_accum = reinterpret_cast<float*>(static_cast<char*>(workspace) + w.lse_accum_offset);
  const double scale = a.softmax_scale > 0.f ? (double)a.softmax_scale : 1.0 / std::sqrt((double)kHeadDimQK);
  p.scale_log2 = (float)(scale * 1.4426950408889634);
  p.causal = a.causal;
  p.merge_counters = reinterpret_cast<int32_t*>(static_cast<char*>(workspace) + w.counter_offset);
  p.variant = dense_kernel_variant();
  const int merge_used = merge_for_shape(merge, p.num_row_tiles);
  p.fused_merge = merge_used == kMergeInKernel;  // the launch clears it where it cannot
  p.pair_merge = merge_used == kMergePair;        // likewise
  p.multicast = multicast;                  // likewise
  p.split_columns = split_columns;          // likewise
  p.num_sms = a.num_sms;
  p.max_blocks_per_seq = (int)a.block_table.shape[1];
  p.pdl = pdl;
  {
    char* base = static_cast<char*>(workspace) + w.steal_offset;
    const size_t words = (size_t)p.num_row_tiles * p.h_kv * p.num_parts;
    p.steal_words = reinterpret_cast<uint32_t*>(base);
    p.steal_done = reinterpret_cast<int32_t*>(base + 4 * words);
    p.steal_stats = reinterpret_cast<int32_t*>(static_cast<char*>(workspace) + w.stats_offset);
  }
  p.steal = steal;  // the launch clears it where it does not apply
  p.steal_slot0 = p.batch + p.num_parts;
  p.steal_delay_ns = steal_delay;

  cudaError_t err;
  if (a.q.dtype == OPENMLA_DTYPE_BF16) {
    err = kernels::launch_dense_decode<kernels::Dtype::kBf16>(p, stream);
    if (err == cudaSuccess && !p.fused_merge && kLaunchCombine)
      err = kernels::launch_combine<kernels::Dtype::kBf16>(p, stream);
  } else {
    err = kernels::launch_dense_decode<kernels::Dtype::kFp16>(p, stream);
    if (err == cudaSuccess && !p.fused_merge && kLaunchCombine)
      err = kernels::launch_combine<kernels::Dtype::kFp16>(p, stream);
  }
  if (err == cudaErrorNotSupported && split_columns == 2 && p.variant != kernels::kDenseSeesaw)
    return make_error(OPENMLA_ERROR_UNSUPPORTED,
                      "OPENMLA_SPLIT_COLUMNS=force: this call does not run the seesaw kernel (OPENMLA_DENSE_KERNEL)");
  if (err == cudaErrorNotSupported && multicast == 2)
    return make_error(OPENMLA_ERROR_UNSUPPORTED,
                      "OPENMLA_MULTICAST=force: this call's grid cannot run as clusters of 2 "
                      "(odd number of row tiles without column halves, another kernel, or clusters that do not all fit)");
  if (err != cudaSuccess) return cuda_error(err, "openmla_dense_decode launch");
  return ok_status();
}

openmla_status openmla_read_plan_error(const void* workspace, cudaStream_t stream) {
  if (workspace == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: null pointer");
  PlanHeader hdr;
  cudaError_t err = cudaMemcpyAsync(&hdr, workspace, sizeof(hdr), cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) return cuda_error(err, "openmla_read_plan_error copy");
  if (hdr.error_code == kPlanOk && (hdr.rows_per_kv_head < 1 || hdr.h_kv < 1))
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "workspace: holds no plan (run openmla_plan first)");
  if (hdr.error_code == kPlanNegativeLength)
    return make_error(OPENMLA_ERROR_BAD_SEQLENS, "cache_seqlens: cache_seqlens[%d] = %d is negative",
                      hdr.error_request, hdr.error_value);
  if (hdr.error_code == kPlanLengthBeyondTable)
    return make_error(OPENMLA_ERROR_BAD_SEQLENS,
                      "cache_seqlens: cache_seqlens[%d] = %d exceeds its block_table row",
                      hdr.error_request, hdr.error_value);
  return ok_status();
}

}  // extern "C"
