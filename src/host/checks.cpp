#include "host/checks.h"

#include <cstdarg>
#include <cstdint>
#include <cstdio>

#include "common/split_plan.h"

namespace openmla {

openmla_status ok_status() {
  openmla_status s;
  s.code = OPENMLA_OK;
  s.message[0] = '\0';
  return s;
}

openmla_status make_error(openmla_status_code code, const char* fmt, ...) {
  openmla_status s;
  s.code = code;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(s.message, sizeof(s.message), fmt, ap);
  va_end(ap);
  return s;
}

namespace {

const char* dtype_name(openmla_dtype d) {
  switch (d) {
    case OPENMLA_DTYPE_BF16: return "bf16";
    case OPENMLA_DTYPE_FP16: return "fp16";
    case OPENMLA_DTYPE_FP32: return "fp32";
    case OPENMLA_DTYPE_INT32: return "int32";
  }
  return "unknown";
}

size_t dtype_size(openmla_dtype d) {
  return (d == OPENMLA_DTYPE_BF16 || d == OPENMLA_DTYPE_FP16) ? 2 : 4;
}

#define OPENMLA_RETURN_IF_ERROR(expr)          \
  do {                                         \
    openmla_status s_ = (expr);                \
    if (s_.code != OPENMLA_OK) return s_;      \
  } while (0)

// Checks pointer, dtype, rank, exact shape (-1: any), unit last stride,
// non-negative strides. `vec_align` > 0 also asks for 16-byte aligned data and
// strides that are multiples of `vec_align` elements (16-byte vector loads).
openmla_status check_tensor(const openmla_tensor& t, const char* name, openmla_dtype dtype, int ndim,
                            const int64_t* shape, const char* dims, int vec_align) {
  if (t.data == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: data is a null pointer", name);
  if (t.dtype != dtype)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: expected dtype %s, got %s", name,
                      dtype_name(dtype), dtype_name(t.dtype));
  if (t.ndim != ndim)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: expected %d dims %s, got %d", name, ndim,
                      dims, t.ndim);
  for (int i = 0; i < ndim; ++i) {
    if (shape[i] >= 0 && t.shape[i] != shape[i])
      return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                        "%s: dim %d of %s must be %lld, got %lld", name, i, dims,
                        (long long)shape[i], (long long)t.shape[i]);
    if (t.shape[i] < 0)
      return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: negative size in dim %d", name, i);
    if (t.stride[i] < 0)
      return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: negative stride in dim %d", name, i);
  }
  if (t.stride[ndim - 1] != 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                      "%s: the last dim must be contiguous (stride 1), got stride %lld", name,
                      (long long)t.stride[ndim - 1]);
  if (vec_align > 0) {
    if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0)
      return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: data must be 16-byte aligned", name);
    for (int i = 0; i < ndim - 1; ++i)
      if (t.stride[i] % vec_align != 0)
        return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                          "%s: stride of dim %d (%lld) must be a multiple of %d elements", name, i,
                          (long long)t.stride[i], vec_align);
  } else if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(dtype) != 0) {
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "%s: data is misaligned for %s", name,
                      dtype_name(dtype));
  }
  return ok_status();
}

}  // namespace

openmla_status check_decode_shape(const openmla_decode_shape* shape) {
  if (shape == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "shape: null pointer");
  if (shape->batch < 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "batch: must be >= 1, got %d", shape->batch);
  if (shape->s_q < 1 || shape->s_q > OPENMLA_MAX_S_Q)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "s_q: must be in [1, %d], got %d",
                      OPENMLA_MAX_S_Q, shape->s_q);
  if (shape->h_q < 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "h_q: must be >= 1, got %d", shape->h_q);
  if (shape->h_kv < 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "h_kv: must be >= 1, got %d", shape->h_kv);
  if (shape->h_q % shape->h_kv != 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                      "h_kv: h_q (%d) must be a multiple of h_kv (%d)", shape->h_q, shape->h_kv);
  if (shape->max_blocks_per_seq < 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "max_blocks_per_seq: must be >= 0, got %d",
                      shape->max_blocks_per_seq);
  if (shape->num_sms < 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "num_sms: must be >= 1 here, got %d",
                      shape->num_sms);
  return ok_status();
}

openmla_status check_dense_decode_args(const openmla_dense_decode_args* args, size_t workspace_bytes) {
  if (args == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "args: null pointer");
  const openmla_tensor& q = args->q;
  if (q.data == nullptr) return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "q: data is a null pointer");
  if (q.dtype != OPENMLA_DTYPE_BF16 && q.dtype != OPENMLA_DTYPE_FP16)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "q: expected dtype bf16 or fp16, got %s",
                      dtype_name(q.dtype));
  if (q.ndim != 4)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "q: expected 4 dims [b, s_q, h_q, 576], got %d",
                      q.ndim);
  const int64_t b = q.shape[0], s_q = q.shape[1], h_q = q.shape[2];
  const openmla_tensor& kc = args->k_cache;
  const int64_t h_kv = kc.ndim == 4 ? kc.shape[2] : -1;

  {
    const int64_t s[4] = {-1, -1, -1, kHeadDimQK};
    OPENMLA_RETURN_IF_ERROR(check_tensor(q, "q", q.dtype, 4, s, "[b, s_q, h_q, 576]", 8));
  }
  if (b < 1 || b > INT32_MAX)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "q: batch (dim 0) must be >= 1, got %lld", (long long)b);
  if (s_q < 1 || s_q > OPENMLA_MAX_S_Q)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "q: s_q (dim 1) must be in [1, %d], got %lld",
                      OPENMLA_MAX_S_Q, (long long)s_q);
  if (h_q < 1 || h_q > 4096)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "q: h_q (dim 2) must be in [1, 4096], got %lld",
                      (long long)h_q);
  if (kc.data != nullptr && kc.ndim == 4 && kc.shape[1] != kPageBlock)
    return make_error(OPENMLA_ERROR_UNSUPPORTED,
                      "k_cache: page block size (dim 1) must be %d, got %lld", kPageBlock,
                      (long long)kc.shape[1]);
  {
    const int64_t s[4] = {-1, kPageBlock, -1, kHeadDimQK};
    OPENMLA_RETURN_IF_ERROR(
        check_tensor(kc, "k_cache", q.dtype, 4, s, "[num_blocks, 64, h_kv, 576]", 8));
  }
  if (kc.shape[0] < 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "k_cache: num_blocks (dim 0) must be >= 1");
  if (h_kv < 1 || h_q % h_kv != 0)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT,
                      "h_kv: h_q (%lld) must be a multiple of h_kv (k_cache dim 2, %lld)",
                      (long long)h_q, (long long)h_kv);
  {
    const int64_t s[2] = {b, -1};
    OPENMLA_RETURN_IF_ERROR(check_tensor(args->block_table, "block_table", OPENMLA_DTYPE_INT32, 2,
                                         s, "[b, max_blocks_per_seq]", 0));
  }
  if (args->block_table.shape[1] > INT32_MAX / kPageBlock)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "block_table: too many blocks per sequence");
  {
    const int64_t s[1] = {b};
    OPENMLA_RETURN_IF_ERROR(
        check_tensor(args->cache_seqlens, "cache_seqlens", OPENMLA_DTYPE_INT32, 1, s, "[b]", 0));
  }
  {
    const int64_t s[4] = {b, s_q, h_q, kHeadDimV};
    OPENMLA_RETURN_IF_ERROR(check_tensor(args->out, "out", q.dtype, 4, s, "[b, s_q, h_q, 512]", 8));
  }
  {
    const int64_t s[3] = {b, h_q, s_q};
    OPENMLA_RETURN_IF_ERROR(check_tensor(args->lse, "lse", OPENMLA_DTYPE_FP32, 3, s, "[b, h_q, s_q]", 0));
  }
  if (!(args->softmax_scale <= 0.f || args->softmax_scale > 0.f) ||
      args->softmax_scale == __builtin_inff())
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "softmax_scale: must be finite (<= 0 for the default)");
  if (args->causal != 0 && args->causal != 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "causal: must be 0 or 1, got %d", args->causal);
  if (args->num_sms < 1)
    return make_error(OPENMLA_ERROR_INVALID_ARGUMENT, "num_sms: must be >= 1 here, got %d", args->num_sms);

  const WorkspaceLayout w = workspace_layout((int)b, (int)s_q, (int)h_q, (int)h_kv, args->num_sms);
  if (workspace_bytes < w.total_bytes)
    return make_error(OPENMLA_ERROR_WORKSPACE_TOO_SMALL,
                      "workspace: %zu bytes given, these shapes need %zu (openmla_plan_workspace_size)",
                      workspace_bytes, w.total_bytes);
  return ok_status();
}

}  // namespace openmla
