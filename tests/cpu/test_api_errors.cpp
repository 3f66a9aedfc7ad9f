// Every bad input of openmla_dense_decode is rejected before anything is
// launched, with a status whose message names the offending argument.
//
// A fully valid argument set is built first (and must pass the host-only
// check openmla::check_dense_decode_args), then exactly one field is broken
// per case. All data pointers are inaccessible host pages: nothing may touch
// them, and no GPU is needed. openmla_dense_decode itself is only ever called
// with arguments the check already rejected, so a missed check can never
// launch a kernel on host pointers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "api_test_util.h"
#include "common/split_plan.h"
#include "host/checks.h"
#include "openmla/openmla.h"

namespace {

using namespace openmla_test;

struct Dims {
  int64_t b = 2, s_q = 2, h_q = 16, h_kv = 1, mb = 3, num_blocks = 4;
};

void contiguous(openmla_tensor& t) {
  int64_t s = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    t.stride[d] = s;
    s *= t.shape[d];
  }
}

openmla_tensor tensor(void* data, openmla_dtype dt, std::initializer_list<int64_t> shape) {
  openmla_tensor t{};
  t.data = data;
  t.dtype = dt;
  t.ndim = (int)shape.size();
  int i = 0;
  for (int64_t s : shape) t.shape[i++] = s;
  contiguous(t);
  return t;
}

// Sets every tensor's shape (and contiguous strides) for these dims, keeping
// data pointers and dtypes.
void reshape(openmla_dense_decode_args& a, const Dims& d) {
  a.q = tensor(a.q.data, a.q.dtype, {d.b, d.s_q, d.h_q, 576});
  a.k_cache = tensor(a.k_cache.data, a.k_cache.dtype, {d.num_blocks, 64, d.h_kv, 576});
  a.block_table = tensor(a.block_table.data, a.block_table.dtype, {d.b, d.mb});
  a.cache_seqlens = tensor(a.cache_seqlens.data, a.cache_seqlens.dtype, {d.b});
  a.out = tensor(a.out.data, a.out.dtype, {d.b, d.s_q, d.h_q, 512});
  a.lse = tensor(a.lse.data, a.lse.dtype, {d.b, d.h_q, d.s_q});
}

// Owns the (inaccessible) memory behind a valid argument set.
class ValidArgs {
 public:
  explicit ValidArgs(const Dims& d = Dims(), openmla_dtype dt = OPENMLA_DTYPE_BF16,
                     int num_sms = 132)
      : dims_(d),
        // Generous sizes: padded-stride variants stay inside their region.
        q_(bytes(d.b * d.s_q * d.h_q * 640 * 2 + 65536)),
        k_(bytes(d.num_blocks * 64 * d.h_kv * 640 * 2 + 65536)),
        bt_(bytes(d.b * d.mb * 4)),
        sl_(bytes(d.b * 4)),
        out_(bytes(d.b * d.s_q * d.h_q * 640 * 2 + 65536)),
        lse_(bytes(d.b * d.h_q * d.s_q * 4)) {
    a_ = openmla_dense_decode_args{};
    a_.q.data = q_.get();
    a_.q.dtype = dt;
    a_.k_cache.data = k_.get();
    a_.k_cache.dtype = dt;
    a_.block_table.data = bt_.get();
    a_.block_table.dtype = OPENMLA_DTYPE_INT32;
    a_.cache_seqlens.data = sl_.get();
    a_.cache_seqlens.dtype = OPENMLA_DTYPE_INT32;
    a_.out.data = out_.get();
    a_.out.dtype = dt;
    a_.lse.data = lse_.get();
    a_.lse.dtype = OPENMLA_DTYPE_FP32;
    reshape(a_, d);
    a_.softmax_scale = 0.f;
    a_.causal = 0;
    a_.num_sms = num_sms;
  }

  openmla_dense_decode_args& args() { return a_; }
  const Dims& dims() const { return dims_; }

  openmla_decode_shape shape() const {
    openmla_decode_shape s{};
    s.batch = (int)dims_.b;
    s.s_q = (int)dims_.s_q;
    s.h_q = (int)dims_.h_q;
    s.h_kv = (int)dims_.h_kv;
    s.max_blocks_per_seq = (int)dims_.mb;
    s.num_sms = a_.num_sms;
    return s;
  }

  // Exactly what the API asks for these shapes.
  size_t required_workspace() const {
    const openmla_decode_shape s = shape();
    size_t n = 0;
    const openmla_status st = openmla_plan_workspace_size(&s, &n);
    EXPECT_TRUE(IsOk(st));
    return n;
  }

 private:
  static size_t bytes(int64_t n) { return (size_t)(n < 4096 ? 4096 : n); }
  Dims dims_;
  NoAccessRegion q_, k_, bt_, sl_, out_, lse_;
  openmla_dense_decode_args a_;
};

// Far more workspace than any case needs (never touched): cases that break a
// shape are judged on the shape, not on the workspace size.
constexpr size_t kBigWorkspace = size_t(1) << 30;
NoAccessRegion& big_workspace() {
  static NoAccessRegion ws(kBigWorkspace);
  return ws;
}

// ------------------------------------------------------------- valid -----

TEST(DenseDecodeArgs, ValidArgsPassTheHostCheck) {
  ValidArgs v;
  const size_t need = v.required_workspace();
  ASSERT_GT(need, 0u);
  const auto layout = openmla::workspace_layout(2, 2, 16, 1, 132);
  EXPECT_GE(need, layout.total_bytes);
  EXPECT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), need)));
  EXPECT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), kBigWorkspace)));
}

struct ValidCase {
  const char* name;
  Dims dims;
  openmla_dtype dtype;
  void (*tweak)(openmla_dense_decode_args&);
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.name; }

class DenseDecodeValid : public ::testing::TestWithParam<ValidCase> {};

TEST_P(DenseDecodeValid, PassesTheHostCheck) {
  const ValidCase& c = GetParam();
  ValidArgs v(c.dims, c.dtype);
  if (c.tweak) c.tweak(v.args());
  const size_t need = v.required_workspace();
  EXPECT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), need)));
}

Dims dims(int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv, int64_t mb = 3, int64_t nblk = 4) {
  Dims d;
  d.b = b;
  d.s_q = s_q;
  d.h_q = h_q;
  d.h_kv = h_kv;
  d.mb = mb;
  d.num_blocks = nblk;
  return d;
}

INSTANTIATE_TEST_SUITE_P(
    Variants, DenseDecodeValid,
    ::testing::Values(
        ValidCase{"bf16", Dims(), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"fp16", Dims(), OPENMLA_DTYPE_FP16, nullptr},
        ValidCase{"h_q1", dims(1, 1, 1, 1), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"h_q128_s_q1", dims(4, 1, 128, 1), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"h_q9_h_kv3", dims(3, 2, 9, 3), OPENMLA_DTYPE_FP16, nullptr},
        ValidCase{"h_q16_h_kv2", dims(2, 4, 16, 2), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"h_q64_h_kv8", dims(2, 1, 64, 8), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"h_q126_h_kv2", dims(2, 1, 126, 2), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"s_q_max", dims(2, OPENMLA_MAX_S_Q, 16, 1), OPENMLA_DTYPE_BF16, nullptr},
        ValidCase{"causal", Dims(), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) { a.causal = 1; }},
        ValidCase{"explicit_scale", Dims(), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) { a.softmax_scale = 0.1f; }},
        ValidCase{"negative_scale_is_default", Dims(), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) { a.softmax_scale = -1.f; }},
        // DESIGN.md 2: last dim contiguous, other strides arbitrary (here
        // padded to multiples of 8 elements, as 16-byte loads need).
        ValidCase{"padded_q_strides", Dims(), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) {
                    a.q.stride[2] = 640;
                    a.q.stride[1] = 16 * 640 + 8;
                    a.q.stride[0] = 2 * (16 * 640 + 8) + 64;
                  }},
        ValidCase{"padded_k_cache_strides", dims(2, 2, 16, 2), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) {
                    a.k_cache.stride[2] = 584;
                    a.k_cache.stride[1] = 2 * 584 + 8;
                    a.k_cache.stride[0] = 64 * (2 * 584 + 8) + 256;
                  }},
        ValidCase{"padded_out_strides", Dims(), OPENMLA_DTYPE_FP16,
                  [](openmla_dense_decode_args& a) {
                    a.out.stride[2] = 520;
                    a.out.stride[1] = 16 * 520;
                    a.out.stride[0] = 2 * 16 * 520 + 8;
                  }},
        // int32 / fp32 tensors: only the last dim must be contiguous.
        ValidCase{"padded_block_table_rows", Dims(), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) { a.block_table.stride[0] = 5; }},
        ValidCase{"strided_lse", Dims(), OPENMLA_DTYPE_BF16,
                  [](openmla_dense_decode_args& a) {
                    a.lse.stride[1] = 3;
                    a.lse.stride[0] = 16 * 3 + 1;
                  }}),
    [](const ::testing::TestParamInfo<ValidCase>& i) { return std::string(i.param.name); });

// --------------------------------------------------------------- bad -----

struct BadCase {
  const char* name;
  void (*mutate)(openmla_dense_decode_args&);
  std::vector<const char*> names;  // the message must name one of these
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class DenseDecodeBadArg : public ::testing::TestWithParam<BadCase> {};

TEST_P(DenseDecodeBadArg, RejectedBeforeLaunch) {
  const BadCase& c = GetParam();
  ValidArgs v;
  ASSERT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), kBigWorkspace)))
      << "the unbroken arguments must pass";
  c.mutate(v.args());
  const openmla_status s = openmla::check_dense_decode_args(&v.args(), kBigWorkspace);
  EXPECT_TRUE(IsError(s, Expect::kBadArgument, c.names)) << "check_dense_decode_args";
  if (s.code == OPENMLA_OK) return;  // never launch on host pointers
  const openmla_status d =
      openmla_dense_decode(&v.args(), big_workspace().get(), kBigWorkspace, nullptr);
  EXPECT_TRUE(IsError(d, Expect::kBadArgument, c.names)) << "openmla_dense_decode";
  EXPECT_EQ(d.code, s.code);
}

using A = openmla_dense_decode_args;

void set_dims(A& a, int64_t b, int64_t s_q, int64_t h_q, int64_t h_kv = 1) {
  Dims d;
  d.b = b;
  d.s_q = s_q;
  d.h_q = h_q;
  d.h_kv = h_kv;
  reshape(a, d);
}

char* bytes_of(void* p) { return static_cast<char*>(p); }

INSTANTIATE_TEST_SUITE_P(
    Cases, DenseDecodeBadArg,
    ::testing::Values(
        // dtypes
        BadCase{"q_fp32", [](A& a) { a.q.dtype = OPENMLA_DTYPE_FP32; }, {"q"}},
        BadCase{"q_int32", [](A& a) { a.q.dtype = OPENMLA_DTYPE_INT32; }, {"q"}},
        BadCase{"q_unknown_dtype", [](A& a) { a.q.dtype = (openmla_dtype)77; }, {"q"}},
        BadCase{"k_cache_dtype_differs", [](A& a) { a.k_cache.dtype = OPENMLA_DTYPE_FP16; },
                {"k_cache"}},
        BadCase{"k_cache_fp32", [](A& a) { a.k_cache.dtype = OPENMLA_DTYPE_FP32; }, {"k_cache"}},
        BadCase{"out_dtype_differs", [](A& a) { a.out.dtype = OPENMLA_DTYPE_FP16; }, {"out"}},
        BadCase{"out_fp32", [](A& a) { a.out.dtype = OPENMLA_DTYPE_FP32; }, {"out"}},
        BadCase{"block_table_fp32", [](A& a) { a.block_table.dtype = OPENMLA_DTYPE_FP32; },
                {"block_table"}},
        BadCase{"block_table_bf16", [](A& a) { a.block_table.dtype = OPENMLA_DTYPE_BF16; },
                {"block_table"}},
        BadCase{"cache_seqlens_fp32", [](A& a) { a.cache_seqlens.dtype = OPENMLA_DTYPE_FP32; },
                {"cache_seqlens"}},
        BadCase{"lse_bf16", [](A& a) { a.lse.dtype = OPENMLA_DTYPE_BF16; }, {"lse"}},
        BadCase{"lse_int32", [](A& a) { a.lse.dtype = OPENMLA_DTYPE_INT32; }, {"lse"}},
        // head dims and page size
        BadCase{"q_head_dim_512", [](A& a) { a.q.shape[3] = 512; contiguous(a.q); }, {"q"}},
        BadCase{"q_head_dim_640", [](A& a) { a.q.shape[3] = 640; contiguous(a.q); }, {"q"}},
        BadCase{"k_cache_head_dim_512",
                [](A& a) { a.k_cache.shape[3] = 512; contiguous(a.k_cache); }, {"k_cache"}},
        BadCase{"out_dv_576", [](A& a) { a.out.shape[3] = 576; contiguous(a.out); }, {"out"}},
        BadCase{"out_dv_256", [](A& a) { a.out.shape[3] = 256; contiguous(a.out); }, {"out"}},
        BadCase{"page_size_32", [](A& a) { a.k_cache.shape[1] = 32; contiguous(a.k_cache); },
                {"k_cache"}},
        BadCase{"page_size_128", [](A& a) { a.k_cache.shape[1] = 128; contiguous(a.k_cache); },
                {"k_cache"}},
        // head ratio
        BadCase{"h_kv_3_does_not_divide_h_q_16",
                [](A& a) { a.k_cache.shape[2] = 3; contiguous(a.k_cache); }, {"h_kv"}},
        BadCase{"h_kv_32_exceeds_h_q_16",
                [](A& a) { a.k_cache.shape[2] = 32; contiguous(a.k_cache); }, {"h_kv"}},
        BadCase{"h_kv_0", [](A& a) { a.k_cache.shape[2] = 0; contiguous(a.k_cache); },
                {"h_kv", "k_cache"}},
        // null pointers
        BadCase{"q_null", [](A& a) { a.q.data = nullptr; }, {"q"}},
        BadCase{"k_cache_null", [](A& a) { a.k_cache.data = nullptr; }, {"k_cache"}},
        BadCase{"block_table_null", [](A& a) { a.block_table.data = nullptr; }, {"block_table"}},
        BadCase{"cache_seqlens_null", [](A& a) { a.cache_seqlens.data = nullptr; },
                {"cache_seqlens"}},
        BadCase{"out_null", [](A& a) { a.out.data = nullptr; }, {"out"}},
        BadCase{"lse_null", [](A& a) { a.lse.data = nullptr; }, {"lse"}},
        // last dim not contiguous
        BadCase{"q_last_stride_2", [](A& a) { a.q.stride[3] = 2; }, {"q"}},
        BadCase{"q_last_stride_0", [](A& a) { a.q.stride[3] = 0; }, {"q"}},
        BadCase{"k_cache_last_stride_2", [](A& a) { a.k_cache.stride[3] = 2; }, {"k_cache"}},
        BadCase{"out_last_stride_2", [](A& a) { a.out.stride[3] = 2; }, {"out"}},
        BadCase{"block_table_last_stride_2", [](A& a) { a.block_table.stride[1] = 2; },
                {"block_table"}},
        BadCase{"cache_seqlens_stride_2", [](A& a) { a.cache_seqlens.stride[0] = 2; },
                {"cache_seqlens"}},
        // ndim
        BadCase{"q_ndim_3", [](A& a) { a.q.ndim = 3; }, {"q"}},
        BadCase{"q_ndim_5", [](A& a) { a.q.ndim = 5; }, {"q"}},
        BadCase{"q_ndim_negative", [](A& a) { a.q.ndim = -1; }, {"q"}},
        BadCase{"k_cache_ndim_3", [](A& a) { a.k_cache.ndim = 3; }, {"k_cache"}},
        BadCase{"block_table_ndim_1", [](A& a) { a.block_table.ndim = 1; }, {"block_table"}},
        BadCase{"block_table_ndim_3", [](A& a) { a.block_table.ndim = 3; }, {"block_table"}},
        BadCase{"cache_seqlens_ndim_2", [](A& a) { a.cache_seqlens.ndim = 2; },
                {"cache_seqlens"}},
        BadCase{"out_ndim_3", [](A& a) { a.out.ndim = 3; }, {"out"}},
        BadCase{"lse_ndim_2", [](A& a) { a.lse.ndim = 2; }, {"lse"}},
        // shapes that disagree between tensors
        BadCase{"out_batch_differs", [](A& a) { a.out.shape[0] = 3; contiguous(a.out); }, {"out"}},
        BadCase{"out_s_q_differs", [](A& a) { a.out.shape[1] = 1; contiguous(a.out); }, {"out"}},
        BadCase{"out_h_q_differs", [](A& a) { a.out.shape[2] = 8; contiguous(a.out); }, {"out"}},
        BadCase{"lse_transposed", [](A& a) {  // [b, s_q, h_q] instead of [b, h_q, s_q]
                  a.lse.shape[1] = 2;
                  a.lse.shape[2] = 16;
                  contiguous(a.lse);
                }, {"lse"}},
        BadCase{"lse_batch_differs", [](A& a) { a.lse.shape[0] = 1; contiguous(a.lse); }, {"lse"}},
        BadCase{"block_table_rows_differ",
                [](A& a) { a.block_table.shape[0] = 3; contiguous(a.block_table); },
                {"block_table"}},
        BadCase{"cache_seqlens_longer",
                [](A& a) { a.cache_seqlens.shape[0] = 3; }, {"cache_seqlens"}},
        BadCase{"cache_seqlens_shorter",
                [](A& a) { a.cache_seqlens.shape[0] = 1; }, {"cache_seqlens"}},
        // sizes out of range (all tensors kept consistent with each other)
        BadCase{"batch_0", [](A& a) { set_dims(a, 0, 2, 16); }, {"batch", "q"}},
        BadCase{"batch_negative", [](A& a) { set_dims(a, -2, 2, 16); }, {"batch", "q"}},
        BadCase{"batch_overflows_int", [](A& a) { set_dims(a, (int64_t(1) << 32) + 2, 2, 16); },
                {"batch", "q"}},
        BadCase{"s_q_0", [](A& a) { set_dims(a, 2, 0, 16); }, {"s_q", "q"}},
        BadCase{"s_q_above_max", [](A& a) { set_dims(a, 2, OPENMLA_MAX_S_Q + 1, 16); },
                {"s_q", "q"}},
        BadCase{"h_q_0", [](A& a) { set_dims(a, 2, 2, 0); }, {"h_q", "q"}},
        BadCase{"h_q_overflows_int", [](A& a) { set_dims(a, 2, 2, (int64_t(1) << 32) + 16); },
                {"h_q", "q"}},
        BadCase{"max_blocks_per_seq_negative",
                [](A& a) { a.block_table.shape[1] = -1; },
                {"max_blocks_per_seq", "block_table"}},
        BadCase{"num_blocks_negative", [](A& a) { a.k_cache.shape[0] = -1; }, {"k_cache"}},
        // scalars
        BadCase{"softmax_scale_nan",
                [](A& a) { a.softmax_scale = std::numeric_limits<float>::quiet_NaN(); },
                {"softmax_scale"}},
        BadCase{"softmax_scale_inf",
                [](A& a) { a.softmax_scale = std::numeric_limits<float>::infinity(); },
                {"softmax_scale"}},
        BadCase{"causal_2", [](A& a) { a.causal = 2; }, {"causal"}},
        BadCase{"causal_negative", [](A& a) { a.causal = -1; }, {"causal"}},
        BadCase{"num_sms_negative", [](A& a) { a.num_sms = -1; }, {"num_sms"}},
        // 16-byte vector loads: data 16-byte aligned, strides multiples of 8
        BadCase{"q_misaligned_2_bytes", [](A& a) { a.q.data = bytes_of(a.q.data) + 2; }, {"q"}},
        BadCase{"q_misaligned_8_bytes", [](A& a) { a.q.data = bytes_of(a.q.data) + 8; }, {"q"}},
        BadCase{"k_cache_misaligned_2_bytes",
                [](A& a) { a.k_cache.data = bytes_of(a.k_cache.data) + 2; }, {"k_cache"}},
        BadCase{"k_cache_misaligned_8_bytes",
                [](A& a) { a.k_cache.data = bytes_of(a.k_cache.data) + 8; }, {"k_cache"}},
        BadCase{"out_misaligned_2_bytes", [](A& a) { a.out.data = bytes_of(a.out.data) + 2; },
                {"out"}},
        BadCase{"out_misaligned_8_bytes", [](A& a) { a.out.data = bytes_of(a.out.data) + 8; },
                {"out"}},
        BadCase{"q_head_stride_580", [](A& a) {
                  a.q.stride[2] = 580;
                  a.q.stride[1] = 16 * 580;
                  a.q.stride[0] = 2 * 16 * 580;
                }, {"q"}},
        BadCase{"q_token_stride_odd", [](A& a) { a.q.stride[1] = 16 * 576 + 4; }, {"q"}},
        BadCase{"q_batch_stride_odd", [](A& a) { a.q.stride[0] = 2 * 16 * 576 + 1; }, {"q"}},
        BadCase{"k_cache_row_stride_odd", [](A& a) {
                  a.k_cache.stride[1] = 580;
                  a.k_cache.stride[0] = 64 * 580;
                }, {"k_cache"}},
        BadCase{"k_cache_block_stride_odd", [](A& a) { a.k_cache.stride[0] = 64 * 576 + 4; },
                {"k_cache"}},
        BadCase{"k_cache_head_stride_odd", [](A& a) {  // h_kv = 2
                  a.k_cache.shape[2] = 2;
                  a.k_cache.stride[2] = 580;
                  a.k_cache.stride[1] = 2 * 580;
                  a.k_cache.stride[0] = 64 * 2 * 580;
                }, {"k_cache"}},
        BadCase{"out_head_stride_516", [](A& a) {
                  a.out.stride[2] = 516;
                  a.out.stride[1] = 16 * 516;
                  a.out.stride[0] = 2 * 16 * 516;
                }, {"out"}},
        BadCase{"out_batch_stride_odd", [](A& a) { a.out.stride[0] = 2 * 16 * 512 + 2; }, {"out"}}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

// ---------------------------------------------------- args / workspace -----

TEST(DenseDecodeArgs, NullArgs) {
  EXPECT_TRUE(IsError(openmla::check_dense_decode_args(nullptr, kBigWorkspace),
                      Expect::kBadArgument, {"args"}));
  EXPECT_TRUE(IsError(openmla_dense_decode(nullptr, big_workspace().get(), kBigWorkspace, nullptr),
                      Expect::kBadArgument, {"args"}));
}

TEST(DenseDecodeArgs, WorkspaceTooSmall) {
  ValidArgs v;
  const size_t need = v.required_workspace();
  ASSERT_GT(need, 1u);
  for (size_t have : {need - 1, need / 2, size_t(0)}) {
    SCOPED_TRACE(::testing::Message() << "workspace " << have << " of " << need);
    const openmla_status s = openmla::check_dense_decode_args(&v.args(), have);
    EXPECT_TRUE(IsError(s, Expect::kWorkspace, {"workspace"})) << "check_dense_decode_args";
    if (s.code == OPENMLA_OK) continue;
    EXPECT_TRUE(IsError(openmla_dense_decode(&v.args(), big_workspace().get(), have, nullptr),
                        Expect::kWorkspace, {"workspace"}))
        << "openmla_dense_decode";
  }
}

// A bigger problem needs more workspace than a smaller one's plan provides.
TEST(DenseDecodeArgs, WorkspaceSizedForOtherShapesTooSmall) {
  ValidArgs small(dims(2, 1, 16, 1));
  ValidArgs large(dims(64, 4, 128, 1));
  const size_t have = small.required_workspace();
  ASSERT_LT(have, large.required_workspace());
  const openmla_status s = openmla::check_dense_decode_args(&large.args(), have);
  EXPECT_TRUE(IsError(s, Expect::kWorkspace, {"workspace"}));
}

TEST(DenseDecodeArgs, NullWorkspace) {
  ValidArgs v;
  const size_t need = v.required_workspace();
  ASSERT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), need)));
  EXPECT_TRUE(IsError(openmla_dense_decode(&v.args(), nullptr, need, nullptr), Expect::kAnyError,
                      {"workspace"}));
}

// The same error whatever other fields hold, as long as they are valid: fp16
// and h_kv > 1 reach the same checks.
// Settings read from the environment on every call: a value that is not one
// of theirs is an error naming the variable, returned before anything is
// launched (the arguments are valid; their memory is not the GPU's).
TEST(DenseDecodeArgs, BadEnvironmentSettingsAreErrors) {
  ValidArgs v;
  ASSERT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), kBigWorkspace)));
  for (const char* var : {"OPENMLA_MERGE", "OPENMLA_MULTICAST", "OPENMLA_SPLIT_COLUMNS", "OPENMLA_PDL", "OPENMLA_STEAL",
                          "OPENMLA_STEAL_DELAY_NS"}) {
    SCOPED_TRACE(var);
    ASSERT_EQ(setenv(var, "bogus", 1), 0);
    const openmla_status s = openmla_dense_decode(&v.args(), big_workspace().get(), kBigWorkspace, nullptr);
    unsetenv(var);
    EXPECT_TRUE(IsError(s, Expect::kBadArgument, {var}));
  }
}

TEST(DenseDecodeArgs, ChecksHoldForFp16AndGqa) {
  ValidArgs v(dims(3, 2, 9, 3), OPENMLA_DTYPE_FP16);
  ASSERT_TRUE(IsOk(openmla::check_dense_decode_args(&v.args(), kBigWorkspace)));
  A a = v.args();
  a.k_cache.dtype = OPENMLA_DTYPE_BF16;
  EXPECT_TRUE(IsError(openmla::check_dense_decode_args(&a, kBigWorkspace), Expect::kBadArgument,
                      {"k_cache"}));
  a = v.args();
  a.k_cache.shape[2] = 2;  // 9 % 2 != 0
  contiguous(a.k_cache);
  EXPECT_TRUE(IsError(openmla::check_dense_decode_args(&a, kBigWorkspace), Expect::kBadArgument,
                      {"h_kv"}));
  a = v.args();
  a.out.dtype = OPENMLA_DTYPE_BF16;
  EXPECT_TRUE(IsError(openmla::check_dense_decode_args(&a, kBigWorkspace), Expect::kBadArgument,
                      {"out"}));
}

TEST(Version, NonEmpty) {
  const char* v = openmla_version();
  ASSERT_NE(v, nullptr);
  EXPECT_GT(std::string(v).size(), 0u);
}

}  // namespace
