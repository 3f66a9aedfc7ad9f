// Thin PyTorch binding over the openmla C API: argument checks that only
// PyTorch can make (device, dtype, rank), output allocation through the
// caching allocator, the current CUDA stream, and status -> Python exception.
// No kernel logic lives here.
//
// Ops (torch.library, namespace "openmla"; fake impls in openmla/_ops.py):
//   plan(cache_seqlens, s_q, h_q, h_kv, max_blocks_per_seq)
//       -> (tile_scheduler_metadata int32 [plan_bytes/32, 8], num_splits int32 [b+1])
//   dense_decode(q, k_cache, block_table, cache_seqlens, tile_scheduler_metadata,
//                softmax_scale, causal) -> (out [b,s_q,h_q,512], lse fp32 [b,h_q,s_q])
//
// Workspace: the C API wants one buffer [plan | split-KV partials]. `plan`
// allocates the whole workspace (plus a small tail that marks it as ours) and
// returns a tensor that views only the plan bytes, so the metadata is a plain
// int32 tensor of the plan's size, as FlashMLA's is. `dense_decode` uses the
// storage behind that view directly when it is one of ours (no copy, no
// allocation); for any other tensor holding the plan bytes (an engine's
// persistent CUDA-graph buffer, a clone) it allocates a workspace through the
// caching allocator and copies the plan in, stream-ordered.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>
#include <torch/library.h>

#include <cuda_runtime_api.h>

#include <climits>
#include <string>
#include <tuple>

#include "common/split_plan.h"  // only to expose FlashMLA-style num_splits
#include "openmla/openmla.h"

namespace openmla_torch {
namespace {

// Bytes appended to every workspace `plan` allocates. A storage of exactly
// workspace_size + kOwnTail bytes, viewed from offset 0, is taken as ours.
constexpr size_t kOwnTail = 256;

[[noreturn]] void raise_status(const openmla_status& st) {
  std::string msg = std::string("openmla: ") + st.message;
  switch (st.code) {
    case OPENMLA_ERROR_INVALID_ARGUMENT:
    case OPENMLA_ERROR_WORKSPACE_TOO_SMALL:
    case OPENMLA_ERROR_BAD_SEQLENS:
      C10_THROW_ERROR(ValueError, msg);
    case OPENMLA_ERROR_UNSUPPORTED:
      C10_THROW_ERROR(NotImplementedError, msg);
    default:
      C10_THROW_ERROR(Error, msg + " (status " + std::to_string(static_cast<int>(st.code)) + ")");
  }
}

inline void check(const openmla_status& st) {
  if (st.code != OPENMLA_OK) raise_status(st);
}

void check_on(const at::Tensor& t, const char* name, const at::Device& dev, const char* ref) {
  TORCH_CHECK_VALUE(t.is_cuda(), "openmla: ", name, " must be a CUDA tensor, but it is on ",
                    t.device());
  TORCH_CHECK_VALUE(t.device() == dev, "openmla: ", name, " is on ", t.device(), " but ", ref,
                    " is on ", dev, "; all tensors must be on the same GPU");
}

void check_dtype(const at::Tensor& t, const char* name, at::ScalarType want) {
  TORCH_CHECK_VALUE(t.scalar_type() == want, "openmla: ", name, " must be ", want, ", got ",
                    t.scalar_type());
}

void check_dim(const at::Tensor& t, const char* name, int64_t dim, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == dim, "openmla: ", name, " must be ", dim, "-D ", layout,
                    ", got shape ", t.sizes());
}

void check_last_dim_contiguous(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.size(-1) <= 1 || t.stride(-1) == 1, "openmla: ", name,
                    " must have a contiguous last dimension (stride 1), got strides ",
                    t.strides());
}

int to_int(int64_t v, const char* what) {
  TORCH_CHECK_VALUE(v >= 0 && v <= INT_MAX, "openmla: ", what, " = ", v, " is out of range");
  return static_cast<int>(v);
}

openmla_dtype to_dtype(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kBFloat16: return OPENMLA_DTYPE_BF16;
    case at::kHalf: return OPENMLA_DTYPE_FP16;
    case at::kFloat: return OPENMLA_DTYPE_FP32;
    case at::kInt: return OPENMLA_DTYPE_INT32;
    default:
      C10_THROW_ERROR(ValueError, std::string("openmla: ") + name + " has dtype " +
                                      std::string(c10::toString(t.scalar_type())) +
                                      ", which openmla does not take");
  }
}

openmla_tensor view_of(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.dim() >= 1 && t.dim() <= 4, "openmla: ", name,
                    " must have 1 to 4 dimensions, got ", t.dim());
  openmla_tensor v{};
  v.data = t.data_ptr();
  v.dtype = to_dtype(t, name);
  v.ndim = static_cast<int>(t.dim());
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = t.size(i);
    v.stride[i] = t.stride(i);
  }
  return v;
}

void check_seqlens(const at::Tensor& cache_seqlens) {
  check_dim(cache_seqlens, "cache_seqlens", 1, "[batch]");
  check_dtype(cache_seqlens, "cache_seqlens", at::kInt);
  check_last_dim_contiguous(cache_seqlens, "cache_seqlens");
}

// The SM count is resolved here (not left as 0 for the library to read) so
// that the plan, its size and the decode all see the same number.
int num_sms_of(c10::DeviceIndex device) {
  return at::cuda::getDeviceProperties(device)->multiProcessorCount;
}

openmla_decode_shape make_shape(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
                                int64_t max_blocks, c10::DeviceIndex device) {
  openmla_decode_shape s{};
  s.batch = to_int(b, "batch");
  s.s_q = to_int(s_q, "s_q");
  s.h_q = to_int(h_q, "h_q");
  s.h_kv = to_int(h_kv, "h_kv");
  s.max_blocks_per_seq = to_int(max_blocks, "max_blocks_per_seq");
  s.num_sms = num_sms_of(device);
  return s;
}

struct Sizes {
  size_t plan_bytes;
  size_t workspace_bytes;
};

Sizes sizes_of(const openmla_decode_shape& shape) {
  Sizes s{};
  check(openmla_plan_workspace_size(&shape, &s.workspace_bytes));
  s.plan_bytes = openmla_plan_bytes(&shape);
  TORCH_CHECK(s.plan_bytes % 32 == 0 && s.workspace_bytes % 4 == 0 &&
                  s.plan_bytes <= s.workspace_bytes,
              "openmla: unexpected plan/workspace sizes ", s.plan_bytes, "/", s.workspace_bytes);
  return s;
}

// FlashMLA's num_splits ([b+1], prefix sums of the splits per request), read
// from the plan. Informational: the decode never uses it. Filled only where
// this build's plan layout is the one split_plan.h describes; zeros otherwise.
at::Tensor num_splits_of(const at::Tensor& ws_words, const openmla_decode_shape& shape,
                         const Sizes& sz) {
  const int64_t b = shape.batch;
  at::Tensor ns = at::zeros({b + 1}, ws_words.options());
  openmla::WorkspaceLayout lay =
      openmla::workspace_layout(shape.batch, shape.s_q, shape.h_q, shape.h_kv, shape.num_sms);
  if (lay.plan_bytes == sz.plan_bytes && lay.total_bytes == sz.workspace_bytes &&
      lay.request_offset % 4 == 0) {
    at::Tensor segs = ws_words.narrow(0, static_cast<int64_t>(lay.request_offset / 4), 2 * b)
                          .view({b, 2})
                          .select(1, 1);
    ns.narrow(0, 1, b).copy_(at::cumsum(segs, 0, at::kInt));
  }
  return ns;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> plan(const at::Tensor& cache_seqlens, int64_t s_q, int64_t h_q,
                                        int64_t h_kv, int64_t max_blocks_per_seq) {
  TORCH_CHECK_VALUE(cache_seqlens.is_cuda(),
                    "openmla: cache_seqlens must be a CUDA tensor (the plan runs on the GPU from "
                    "device-resident lengths), but it is on ",
                    cache_seqlens.device());
  check_seqlens(cache_seqlens);
  c10::cuda::CUDAGuard guard(cache_seqlens.device());
  const openmla_decode_shape shape =
      make_shape(cache_seqlens.size(0), s_q, h_q, h_kv, max_blocks_per_seq,
                 cache_seqlens.device().index());
  const Sizes sz = sizes_of(shape);
  const size_t total = sz.workspace_bytes + kOwnTail;

  at::Tensor ws = at::empty({static_cast<int64_t>(total / 4)},
                            cache_seqlens.options().dtype(at::kInt));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  check(openmla_plan(&shape, cache_seqlens.data_ptr<int32_t>(), ws.data_ptr(), total, stream));

  at::Tensor num_splits = num_splits_of(ws, shape, sz);
  // The metadata shows the plan bytes only; the storage behind it is the
  // whole workspace, which dense_decode recognises by its size. set_() rather
  // than a view, so that the op's output is not an alias of anything.
  at::Tensor meta = at::empty({0}, ws.options());
  meta.set_(ws.storage(), 0, {static_cast<int64_t>(sz.plan_bytes / 32), 8}, {8, 1});
  return {meta, num_splits};
}

std::tuple<at::Tensor, at::Tensor> dense_decode(const at::Tensor& q, const at::Tensor& k_cache,
                                                const at::Tensor& block_table,
                                                const at::Tensor& cache_seqlens,
                                                const at::Tensor& tile_scheduler_metadata,
                                                double softmax_scale, bool causal) {
  TORCH_CHECK_VALUE(q.is_cuda(), "openmla: q must be a CUDA tensor, but it is on ", q.device());
  const at::Device dev = q.device();
  check_on(k_cache, "k_cache", dev, "q");
  check_on(block_table, "block_table", dev, "q");
  check_on(cache_seqlens, "cache_seqlens", dev, "q");
  check_on(tile_scheduler_metadata, "tile_scheduler_metadata", dev, "q");

  check_dim(q, "q", 4, "[batch, s_q, h_q, 576]");
  check_dim(k_cache, "k_cache", 4, "[num_blocks, 64, h_kv, 576]");
  check_dim(block_table, "block_table", 2, "[batch, max_blocks_per_seq]");
  TORCH_CHECK_VALUE(q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf,
                    "openmla: q must be bfloat16 or float16, got ", q.scalar_type());
  TORCH_CHECK_VALUE(k_cache.scalar_type() == q.scalar_type(), "openmla: k_cache must have q's dtype ",
                    q.scalar_type(), ", got ", k_cache.scalar_type(),
                    " (FP8 KV caches are not supported yet)");
  check_dtype(block_table, "block_table", at::kInt);
  check_seqlens(cache_seqlens);
  check_dtype(tile_scheduler_metadata, "tile_scheduler_metadata", at::kInt);
  TORCH_CHECK_VALUE(tile_scheduler_metadata.is_contiguous(),
                    "openmla: tile_scheduler_metadata must be contiguous");
  check_last_dim_contiguous(q, "q");
  check_last_dim_contiguous(k_cache, "k_cache");
  check_last_dim_contiguous(block_table, "block_table");
  TORCH_CHECK_VALUE(cache_seqlens.size(0) == q.size(0), "openmla: cache_seqlens has ",
                    cache_seqlens.size(0), " entries but q has batch ", q.size(0));
  TORCH_CHECK_VALUE(block_table.size(0) == q.size(0), "openmla: block_table has ",
                    block_table.size(0), " rows but q has batch ", q.size(0));

  c10::cuda::CUDAGuard guard(dev);
  const int64_t b = q.size(0), s_q = q.size(1), h_q = q.size(2);
  const openmla_decode_shape shape =
      make_shape(b, s_q, h_q, k_cache.size(2), block_table.size(1), dev.index());
  const Sizes sz = sizes_of(shape);
  const size_t meta_bytes = static_cast<size_t>(tile_scheduler_metadata.numel()) * 4;
  TORCH_CHECK_VALUE(meta_bytes == sz.plan_bytes, "openmla: tile_scheduler_metadata holds ",
                    meta_bytes, " bytes but a plan for batch=", b, ", s_q=", s_q, ", h_q=", h_q,
                    ", h_kv=", k_cache.size(2), " has ", sz.plan_bytes,
                    ": it was computed for other shapes; call get_mla_metadata again");

  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  void* ws = nullptr;
  size_t ws_bytes = 0;
  at::Tensor ws_holder;
  const bool own = tile_scheduler_metadata.storage_offset() == 0 &&
                   tile_scheduler_metadata.storage().nbytes() == sz.workspace_bytes + kOwnTail;
  if (own) {
    ws = tile_scheduler_metadata.data_ptr();
    ws_bytes = sz.workspace_bytes + kOwnTail;
  } else {
    ws_holder = at::empty({static_cast<int64_t>(sz.workspace_bytes)}, q.options().dtype(at::kByte));
    ws = ws_holder.data_ptr();
    ws_bytes = sz.workspace_bytes;
    C10_CUDA_CHECK(cudaMemcpyAsync(ws, tile_scheduler_metadata.data_ptr(), sz.plan_bytes,
                                   cudaMemcpyDeviceToDevice, stream));
  }

  at::Tensor out = at::empty({b, s_q, h_q, OPENMLA_HEAD_DIM_V}, q.options());
  at::Tensor lse = at::empty({b, h_q, s_q}, q.options().dtype(at::kFloat));

  openmla_dense_decode_args args{};
  args.q = view_of(q, "q");
  args.k_cache = view_of(k_cache, "k_cache");
  args.block_table = view_of(block_table, "block_table");
  args.cache_seqlens = view_of(cache_seqlens, "cache_seqlens");
  args.out = view_of(out, "out");
  args.lse = view_of(lse, "lse");
  args.softmax_scale = static_cast<float>(softmax_scale);
  args.causal = causal ? 1 : 0;
  args.num_sms = shape.num_sms;
  check(openmla_dense_decode(&args, ws, ws_bytes, stream));
  return {out, lse};
}

namespace {

// (plan_bytes, bytes of the tensor storage `plan` allocates), for the fake
// implementation of `plan`.
std::tuple<int64_t, int64_t> workspace_sizes(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv,
                                             int64_t max_blocks_per_seq, int64_t device_index) {
  const auto dev = static_cast<c10::DeviceIndex>(device_index);
  c10::cuda::CUDAGuard guard(dev);
  const Sizes sz = sizes_of(make_shape(b, s_q, h_q, h_kv, max_blocks_per_seq, dev));
  return {static_cast<int64_t>(sz.plan_bytes),
          static_cast<int64_t>(sz.workspace_bytes + kOwnTail)};
}

// Waits for the plan behind `tile_scheduler_metadata` and raises if it saw a
// length outside [0, 64 * max_blocks_per_seq]. Synchronises: debugging only.
void read_plan_error(const at::Tensor& tile_scheduler_metadata) {
  TORCH_CHECK_VALUE(tile_scheduler_metadata.is_cuda(),
                    "openmla: tile_scheduler_metadata must be a CUDA tensor");
  c10::cuda::CUDAGuard guard(tile_scheduler_metadata.device());
  check(openmla_read_plan_error(tile_scheduler_metadata.data_ptr(),
                                at::cuda::getCurrentCUDAStream()));
}

}  // namespace
}  // namespace openmla_torch

TORCH_LIBRARY(openmla, m) {
  m.def(
      "plan(Tensor cache_seqlens, int s_q, int h_q, int h_kv, int max_blocks_per_seq)"
      " -> (Tensor, Tensor)");
  m.def(
      "dense_decode(Tensor q, Tensor k_cache, Tensor block_table, Tensor cache_seqlens,"
      " Tensor tile_scheduler_metadata, float softmax_scale, bool causal) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(openmla, CUDA, m) {
  m.impl("plan", &openmla_torch::plan);
  m.impl("dense_decode", &openmla_torch::dense_decode);
}

// CPU tensors reach the same functions, which reject them naming the argument
// (instead of the dispatcher's "could not run ... with the CPU backend").
TORCH_LIBRARY_IMPL(openmla, CPU, m) {
  m.impl("plan", &openmla_torch::plan);
  m.impl("dense_decode", &openmla_torch::dense_decode);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "openmla PyTorch binding (ops live in torch.ops.openmla)";
  m.def("workspace_sizes", &openmla_torch::workspace_sizes);
  m.def("read_plan_error", &openmla_torch::read_plan_error);
  m.def("version", []() { return std::string(openmla_version()); });
}
