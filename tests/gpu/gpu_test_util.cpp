#include "gpu_test_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace openmla_test {

bool g_has_gpu = false;
std::string g_skip_reason = "no GPU found";

namespace ref = openmla::reference;

constexpr int kD = OPENMLA_HEAD_DIM_QK;
constexpr int kDv = OPENMLA_HEAD_DIM_V;
constexpr int kPage = OPENMLA_PAGE_BLOCK_SIZE;

// ------------------------------------------------------------------ errors
void throw_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  std::ostringstream os;
  os << file << ":" << line << ": CUDA error " << (int)e << " (" << cudaGetErrorName(e)
     << ": " << cudaGetErrorString(e) << ") from " << expr;
  throw std::runtime_error(os.str());
}

std::string status_string(const openmla_status& s) {
  static const char* names[] = {"OPENMLA_OK",
                                "OPENMLA_ERROR_INVALID_ARGUMENT",
                                "OPENMLA_ERROR_WORKSPACE_TOO_SMALL",
                                "OPENMLA_ERROR_UNSUPPORTED",
                                "OPENMLA_ERROR_CUDA",
                                "OPENMLA_ERROR_BAD_SEQLENS"};
  std::ostringstream os;
  const int c = (int)s.code;
  os << (c >= 0 && c < 6 ? names[c] : "unknown status") << " (" << c << "): \"";
  // message is NUL-terminated by contract; never read past it regardless.
  os << std::string(s.message, strnlen(s.message, sizeof(s.message))) << "\"";
  return os.str();
}

void throw_status(const openmla_status& s, const char* expr, const char* file, int line) {
  std::ostringstream os;
  os << file << ":" << line << ": " << expr << " returned " << status_string(s);
  throw std::runtime_error(os.str());
}

const char* dtype_name(openmla_dtype t) {
  switch (t) {
    case OPENMLA_DTYPE_BF16: return "bf16";
    case OPENMLA_DTYPE_FP16: return "fp16";
    case OPENMLA_DTYPE_FP32: return "fp32";
    case OPENMLA_DTYPE_INT32: return "int32";
  }
  return "?";
}

const char* layout_name(QOLayout l) {
  switch (l) {
    case QOLayout::kContig: return "contig";
    case QOLayout::kPadded: return "padded";
    case QOLayout::kTransposed: return "transposed";
  }
  return "?";
}

const char* layout_name(KLayout l) {
  switch (l) {
    case KLayout::kContig: return "contig";
    case KLayout::kPadded: return "padded";
    case KLayout::kHeadMajor: return "headmajor";
  }
  return "?";
}

// ------------------------------------------------------------------ RAII
DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes > 0) OMLA_CUDA_CHECK(cudaMalloc(&p_, bytes));
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) cudaFree(p_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) {
  o.p_ = nullptr;
  o.n_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFree(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

// The tests' streams are non-blocking, so nothing is ordered with the legacy
// stream that cudaMemcpy / cudaMemset use: synchronise the device around them.
void DeviceBuffer::upload(const void* src, size_t bytes) {
  if (bytes > n_) throw std::runtime_error("DeviceBuffer::upload: too many bytes");
  if (bytes == 0) return;
  OMLA_CUDA_CHECK(cudaDeviceSynchronize());
  OMLA_CUDA_CHECK(cudaMemcpy(p_, src, bytes, cudaMemcpyHostToDevice));
  OMLA_CUDA_CHECK(cudaDeviceSynchronize());
}

void DeviceBuffer::download(void* dst, size_t bytes) const {
  if (bytes > n_) throw std::runtime_error("DeviceBuffer::download: too many bytes");
  if (bytes == 0) return;
  OMLA_CUDA_CHECK(cudaDeviceSynchronize());
  OMLA_CUDA_CHECK(cudaMemcpy(dst, p_, bytes, cudaMemcpyDeviceToHost));
}

void DeviceBuffer::fill_byte(int value) {
  if (n_ == 0) return;
  OMLA_CUDA_CHECK(cudaDeviceSynchronize());
  OMLA_CUDA_CHECK(cudaMemset(p_, value, n_));
  OMLA_CUDA_CHECK(cudaDeviceSynchronize());
}

Stream::Stream() { OMLA_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
Stream::~Stream() {
  if (s_) cudaStreamDestroy(s_);
}
void Stream::sync() const { OMLA_CUDA_CHECK(cudaStreamSynchronize(s_)); }

// ------------------------------------------------------------------ random
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return splitmix64(s_); }
  double uniform() { return ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0,1)
  int below(int n) { return (int)(next() % (uint64_t)n); }
  double normal() {
    if (have_) {
      have_ = false;
      return spare_;
    }
    const double u = uniform(), v = uniform();
    const double r = std::sqrt(-2.0 * std::log(u));
    spare_ = r * std::sin(6.283185307179586 * v);
    have_ = true;
    return r * std::cos(6.283185307179586 * v);
  }

 private:
  uint64_t s_;
  bool have_ = false;
  double spare_ = 0;
};

int blocks_for(int32_t len) { return len <= 0 ? 0 : (len + kPage - 1) / kPage; }

// Strides of a [b, s_q, h_q, d] view (q: d=576, out: d=512).
std::array<int64_t, 4> qo_strides(QOLayout l, int s_q, int h_q, int d) {
  switch (l) {
    case QOLayout::kContig:
      return {(int64_t)s_q * h_q * d, (int64_t)h_q * d, d, 1};
    case QOLayout::kPadded: {
      const int64_t hs = d + 64, ss = (int64_t)h_q * hs + 64, bs = (int64_t)s_q * ss + 128;
      return {bs, ss, hs, 1};
    }
    case QOLayout::kTransposed: {
      const int64_t ss = d + 64, hs = (int64_t)s_q * ss, bs = (int64_t)h_q * hs + 256;
      return {bs, ss, hs, 1};
    }
  }
  return {};
}

// Strides of the [num_blocks, 64, h_kv, 576] cache view.
std::array<int64_t, 4> k_strides(KLayout l, int h_kv) {
  switch (l) {
    case KLayout::kContig:
      return {(int64_t)kPage * h_kv * kD, (int64_t)h_kv * kD, kD, 1};
    case KLayout::kPadded: {
      const int64_t hs = kD + 64, ts = (int64_t)h_kv * hs + 64, bs = kPage * ts + 512;
      return {bs, ts, hs, 1};
    }
    case KLayout::kHeadMajor: {
      const int64_t ts = kD, hs = (int64_t)kPage * kD, bs = (int64_t)h_kv * hs;
      return {bs, ts, hs, 1};
    }
  }
  return {};
}

size_t span_of(const std::array<int64_t, 4>& shape, const std::array<int64_t, 4>& stride) {
  int64_t last = 0;
  for (int i = 0; i < 4; ++i) {
    if (shape[i] == 0) return 0;
    last += (shape[i] - 1) * stride[i];
  }
  return (size_t)last + 1;
}

constexpr size_t kOutGuard = 256;  // poisoned elements after the out view
constexpr size_t kLseGuard = 64;   // poisoned floats after lse

void build_images(HostProblem& hp) {
  const DecodeCase& c = hp.c;
  const int b = hp.batch;
  // q
  {
    const std::array<int64_t, 4> shape{b, c.s_q, c.h_q, kD};
    const auto& st = hp.q_stride;
    hp.q_img.assign(span_of(shape, st) + 64, kNaN16);
    for (int r = 0; r < b; ++r)
      for (int i = 0; i < c.s_q; ++i)
        for (int h = 0; h < c.h_q; ++h) {
          const float* src = &hp.q[(((size_t)r * c.s_q + i) * c.h_q + h) * kD];
          uint16_t* dst = &hp.q_img[r * st[0] + i * st[1] + h * st[2]];
          for (int e = 0; e < kD; ++e) dst[e] = float_to_half(c.dtype, src[e]);
        }
  }
  // k
  {
    const std::array<int64_t, 4> shape{hp.num_blocks, kPage, c.h_kv, kD};
    const auto& st = hp.k_stride;
    hp.k_img.assign(span_of(shape, st) + 64, kNaN16);
    for (int pb = 0; pb < hp.num_blocks; ++pb)
      for (int t = 0; t < kPage; ++t)
        for (int g = 0; g < c.h_kv; ++g) {
          const float* src = &hp.k[(((size_t)pb * kPage + t) * c.h_kv + g) * kD];
          uint16_t* dst = &hp.k_img[pb * st[0] + t * st[1] + g * st[2]];
          for (int e = 0; e < kD; ++e)
            dst[e] = std::isnan(src[e]) ? kNaN16 : float_to_half(c.dtype, src[e]);
        }
  }
}

void fill_values(HostProblem& hp, uint64_t seed) {
  const DecodeCase& c = hp.c;
  Rng rng(seed);
  const auto rnd = [&](double x) {
    return half_to_float(c.dtype, float_to_half(c.dtype, (float)x));
  };
  hp.q.resize((size_t)hp.batch * c.s_q * c.h_q * kD);
  for (float& v : hp.q) v = rnd(rng.normal() * c.q_std);
  hp.k.assign((size_t)hp.num_blocks * kPage * c.h_kv * kD, std::numeric_limits<float>::quiet_NaN());
  for (int r = 0; r < hp.batch; ++r) {
    const int len = hp.seqlens[r];
    for (int blk = 0; blk < blocks_for(len); ++blk) {
      const int phys = hp.block_table[(size_t)r * hp.max_blocks + blk];
      const int valid = std::min(kPage, len - blk * kPage);  // the rest stays NaN
      for (int t = 0; t < valid; ++t) {
        float* row = &hp.k[((size_t)phys * kPage + t) * c.h_kv * kD];
        for (int e = 0; e < c.h_kv * kD; ++e) row[e] = rnd(rng.normal() * c.k_std);
      }
    }
  }
  build_images(hp);
}

}  // namespace

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
  return splitmix64(x);
}

float half_to_float(openmla_dtype t, uint16_t bits) {
  return t == OPENMLA_DTYPE_FP16 ? ref::fp16_to_float(bits) : ref::bf16_to_float(bits);
}

uint16_t float_to_half(openmla_dtype t, float f) {
  return t == OPENMLA_DTYPE_FP16 ? ref::float_to_fp16(f) : ref::float_to_bf16(f);
}

std::string default_name(const DecodeCase& c) {
  std::ostringstream os;
  int max_len = 0;
  for (int32_t l : c.seqlens) max_len = std::max(max_len, (int)l);
  os << dtype_name(c.dtype) << "_hq" << c.h_q << "_hkv" << c.h_kv << "_sq" << c.s_q << "_sk"
     << (c.nominal_s_k > 0 ? c.nominal_s_k : max_len) << (c.causal ? "_causal" : "_full") << "_b"
     << c.seqlens.size();
  if (c.q_layout != QOLayout::kContig) os << "_q" << layout_name(c.q_layout);
  if (c.out_layout != QOLayout::kContig) os << "_o" << layout_name(c.out_layout);
  if (c.k_layout != KLayout::kContig) os << "_k" << layout_name(c.k_layout);
  if (c.num_sms > 0) os << "_sms" << c.num_sms;
  if (c.softmax_scale > 0) os << "_scale" << (int)std::lround(c.softmax_scale * 1000) << "m";
  return os.str();
}

std::string lens_string(const std::vector<int32_t>& lens, size_t max_items) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < lens.size() && i < max_items; ++i) os << (i ? "," : "") << lens[i];
  if (lens.size() > max_items) os << ",...(" << lens.size() << ")";
  os << "]";
  return os.str();
}

// ------------------------------------------------------------------ problems
HostProblem make_problem(const DecodeCase& c) {
  if (c.seqlens.empty()) throw std::runtime_error("make_problem: empty batch");
  if (c.h_kv <= 0 || c.h_q % c.h_kv != 0) throw std::runtime_error("make_problem: h_q % h_kv != 0");
  HostProblem hp;
  hp.c = c;
  if (hp.c.name.empty()) hp.c.name = default_name(c);
  hp.batch = (int)c.seqlens.size();
  hp.seqlens = c.seqlens;
  Rng rng(mix_seed(c.seed, 0x7ab1e));

  int max_nb = 0, used = 0;
  for (int32_t len : c.seqlens) {
    max_nb = std::max(max_nb, blocks_for(len));
    used += blocks_for(len);
  }
  hp.max_blocks = c.max_blocks_override > 0 ? c.max_blocks_override
                                            : std::max(1, max_nb + c.extra_table_cols);
  if (hp.max_blocks < max_nb) throw std::runtime_error("make_problem: table too narrow");
  const int extra = c.extra_blocks >= 0 ? c.extra_blocks : std::max(2, used / 8 + 1);
  hp.num_blocks = c.num_blocks_override > 0 ? c.num_blocks_override : std::max(1, used + extra);
  if (hp.num_blocks < used) throw std::runtime_error("make_problem: too few physical blocks");

  // A random permutation of the physical blocks; requests take them in order.
  std::vector<int32_t> perm(hp.num_blocks);
  for (int i = 0; i < hp.num_blocks; ++i) perm[i] = i;
  for (int i = hp.num_blocks - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
  hp.block_table.assign((size_t)hp.batch * hp.max_blocks, kTableGarbage);
  int next = 0;
  for (int r = 0; r < hp.batch; ++r)
    for (int blk = 0; blk < blocks_for(c.seqlens[r]); ++blk)
      hp.block_table[(size_t)r * hp.max_blocks + blk] = perm[next++];

  hp.q_stride = qo_strides(c.q_layout, c.s_q, c.h_q, kD);
  hp.out_stride = qo_strides(c.out_layout, c.s_q, c.h_q, kDv);
  hp.k_stride = k_strides(c.k_layout, c.h_kv);
  hp.out_span = span_of({hp.batch, c.s_q, c.h_q, kDv}, hp.out_stride) + kOutGuard;
  hp.lse_span = hp.lse_elems() + kLseGuard;

  fill_values(hp, mix_seed(c.seed, 0x5eed));
  return hp;
}

void refill_values(HostProblem& hp, uint64_t seed) { fill_values(hp, seed); }

DeviceProblem make_device_problem(const HostProblem& hp) {
  DeviceProblem dp;
  dp.q = DeviceBuffer(hp.q_img.size() * 2);
  dp.k = DeviceBuffer(hp.k_img.size() * 2);
  dp.block_table = DeviceBuffer(hp.block_table.size() * 4);
  dp.seqlens = DeviceBuffer(hp.seqlens.size() * 4);
  dp.out = DeviceBuffer(hp.out_span * 2);
  dp.lse = DeviceBuffer(hp.lse_span * 4);
  upload_inputs(hp, dp);
  return dp;
}

void upload_inputs(const HostProblem& hp, DeviceProblem& dp) {
  dp.q.upload(hp.q_img.data(), hp.q_img.size() * 2);
  dp.k.upload(hp.k_img.data(), hp.k_img.size() * 2);
  dp.block_table.upload(hp.block_table.data(), hp.block_table.size() * 4);
  dp.seqlens.upload(hp.seqlens.data(), hp.seqlens.size() * 4);
}

void poison_outputs(const HostProblem&, DeviceProblem& dp) {
  dp.out.fill_byte(0xFF);  // 0xFFFF: NaN in bf16 and fp16
  dp.lse.fill_byte(0xFF);  // 0xFFFFFFFF: NaN
}

openmla_decode_shape decode_shape(const HostProblem& hp) {
  openmla_decode_shape s{};
  s.batch = hp.batch;
  s.s_q = hp.c.s_q;
  s.h_q = hp.c.h_q;
  s.h_kv = hp.c.h_kv;
  s.max_blocks_per_seq = hp.max_blocks;
  s.num_sms = hp.c.num_sms;
  return s;
}

namespace {
openmla_tensor tensor(void* data, openmla_dtype t, std::initializer_list<int64_t> shape,
                      std::initializer_list<int64_t> stride) {
  openmla_tensor x{};
  x.data = data;
  x.dtype = t;
  x.ndim = (int)shape.size();
  int i = 0;
  for (int64_t v : shape) x.shape[i++] = v;
  i = 0;
  for (int64_t v : stride) x.stride[i++] = v;
  return x;
}
}  // namespace

openmla_dense_decode_args decode_args(const HostProblem& hp, const DeviceProblem& dp) {
  const DecodeCase& c = hp.c;
  const auto& qs = hp.q_stride;
  const auto& ks = hp.k_stride;
  const auto& os = hp.out_stride;
  openmla_dense_decode_args a{};
  a.q = tensor(dp.q.get(), c.dtype, {hp.batch, c.s_q, c.h_q, kD}, {qs[0], qs[1], qs[2], qs[3]});
  a.k_cache = tensor(dp.k.get(), c.dtype, {hp.num_blocks, kPage, c.h_kv, kD},
                     {ks[0], ks[1], ks[2], ks[3]});
  a.block_table = tensor(dp.block_table.get(), OPENMLA_DTYPE_INT32, {hp.batch, hp.max_blocks},
                         {hp.max_blocks, 1});
  a.cache_seqlens = tensor(dp.seqlens.get(), OPENMLA_DTYPE_INT32, {hp.batch}, {1});
  a.out = tensor(dp.out.get(), c.dtype, {hp.batch, c.s_q, c.h_q, kDv}, {os[0], os[1], os[2], os[3]});
  a.lse = tensor(dp.lse.get(), OPENMLA_DTYPE_FP32, {hp.batch, c.h_q, c.s_q},
                 {(int64_t)c.h_q * c.s_q, c.s_q, 1});
  a.softmax_scale = c.softmax_scale;
  a.causal = c.causal ? 1 : 0;
  a.num_sms = c.num_sms;
  return a;
}

Reference run_reference(const HostProblem& hp) {
  ref::DenseDecodeProblem p;
  p.batch = hp.batch;
  p.s_q = hp.c.s_q;
  p.h_q = hp.c.h_q;
  p.h_kv = hp.c.h_kv;
  p.num_blocks = hp.num_blocks;
  p.max_blocks_per_seq = hp.max_blocks;
  p.softmax_scale = hp.c.softmax_scale;  // <= 0: 1/sqrt(576), like the kernel
  p.causal = hp.c.causal;
  Reference r;
  r.out.assign(hp.out_elems(), 0.0);
  r.lse.assign(hp.lse_elems(), 0.0);
  ref::dense_decode(p, hp.q.data(), hp.k.data(), hp.block_table.data(), hp.seqlens.data(),
                    r.out.data(), r.lse.data(), /*threads=*/0);
  return r;
}

DeviceResult download_outputs(const HostProblem& hp, const DeviceProblem& dp) {
  DeviceResult d;
  d.out_img.resize(hp.out_span);
  d.lse.resize(hp.lse_span);
  dp.out.download(d.out_img.data(), d.out_img.size() * 2);
  dp.lse.download(d.lse.data(), d.lse.size() * 4);
  return d;
}

std::vector<float> gather_out(const HostProblem& hp, const std::vector<uint16_t>& img) {
  const DecodeCase& c = hp.c;
  const auto& st = hp.out_stride;
  std::vector<float> o(hp.out_elems());
  for (int r = 0; r < hp.batch; ++r)
    for (int i = 0; i < c.s_q; ++i)
      for (int h = 0; h < c.h_q; ++h) {
        const uint16_t* src = &img[r * st[0] + i * st[1] + h * st[2]];
        float* dst = &o[(((size_t)r * c.s_q + i) * c.h_q + h) * kDv];
        for (int e = 0; e < kDv; ++e) dst[e] = half_to_float(c.dtype, src[e]);
      }
  return o;
}

// ------------------------------------------------------------------ checks
std::string CheckResult::summary_line(const std::string& name) const {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%-58s out_err=%.2e cos=%.1e lse_err=%.2e nan=%lld/%lld %s", name.c_str(),
                out.max_abs_err, out.cos_diff, lse.max_abs_err, out.count_nan, lse.count_nan,
                pass ? "PASS" : "FAIL");
  return buf;
}

long long count_writes_outside_views(const HostProblem& hp, const DeviceResult& dr,
                                     uint16_t out_poison, uint32_t lse_poison,
                                     long long* first_out_offset) {
  const DecodeCase& c = hp.c;
  std::vector<char> in_view(hp.out_span, 0);
  const auto& st = hp.out_stride;
  for (int r = 0; r < hp.batch; ++r)
    for (int i = 0; i < c.s_q; ++i)
      for (int h = 0; h < c.h_q; ++h) std::fill_n(&in_view[r * st[0] + i * st[1] + h * st[2]], kDv, 1);
  long long n = 0;
  if (first_out_offset) *first_out_offset = -1;
  for (size_t e = 0; e < hp.out_span; ++e)
    if (!in_view[e] && dr.out_img[e] != out_poison) {
      if (first_out_offset && *first_out_offset < 0) *first_out_offset = (long long)e;
      ++n;
    }
  for (size_t e = hp.lse_elems(); e < hp.lse_span; ++e) {
    uint32_t bits;
    std::memcpy(&bits, &dr.lse[e], 4);
    if (bits != lse_poison) ++n;
  }
  return n;
}

CheckResult check_outputs(const HostProblem& hp, const DeviceResult& dr, const Reference& refr) {
  const DecodeCase& c = hp.c;
  CheckResult res;
  std::ostringstream det;
  const std::vector<float> out = gather_out(hp, dr.out_img);

  // Nothing outside the out view (padding, guard) may be written.
  long long first = -1;
  res.out_untouched_violations = count_writes_outside_views(hp, dr, kNaN16, 0xFFFFFFFFu, &first);
  if (res.out_untouched_violations)
    det << " wrote " << res.out_untouched_violations
        << " element(s) outside the out/lse views (first out image offset " << first << ");";

  // Rows with no attendable key: out exactly 0, lse exactly +inf.
  for (int r = 0; r < hp.batch; ++r)
    for (int i = 0; i < c.s_q; ++i) {
      if (ref::attended_end(hp.seqlens[r], c.s_q, i, c.causal) != 0) continue;
      for (int h = 0; h < c.h_q; ++h) {
        const float* row = &out[(((size_t)r * c.s_q + i) * c.h_q + h) * kDv];
        const float l = dr.lse[((size_t)r * c.h_q + h) * c.s_q + i];
        bool ok = l == std::numeric_limits<float>::infinity();
        for (int e = 0; e < kDv && ok; ++e) ok = row[e] == 0.0f;
        if (!ok) {
          if (res.empty_row_violations == 0)
            det << " empty row (r=" << r << ",i=" << i << ",h=" << h << ") gave out[0]=" << row[0]
                << " lse=" << l << " (want 0, +inf);";
          ++res.empty_row_violations;
        }
      }
    }

  res.out = ref::compare_out(out.data(), refr.out.data(), (long long)out.size());
  res.lse = ref::compare_lse(dr.lse.data(), refr.lse.data(), (long long)hp.lse_elems());
  if (!res.out.pass) {
    det << " out: cos_diff=" << res.out.cos_diff << " nan=" << res.out.count_nan;
    if (res.out.bad_index >= 0) {
      long long x = res.out.bad_index;
      const int e = (int)(x % kDv);
      x /= kDv;
      const int h = (int)(x % c.h_q);
      x /= c.h_q;
      const int i = (int)(x % c.s_q);
      const int r = (int)(x / c.s_q);
      det << " first bad at (r=" << r << ",i=" << i << ",h=" << h << ",e=" << e
          << ") got " << out[res.out.bad_index] << " want " << refr.out[res.out.bad_index]
          << " (len " << hp.seqlens[r] << ")";
    }
    det << ";";
  }
  if (!res.lse.pass) {
    det << " lse: nan=" << res.lse.count_nan;
    if (res.lse.bad_index >= 0) {
      long long x = res.lse.bad_index;
      const int i = (int)(x % c.s_q);
      x /= c.s_q;
      const int h = (int)(x % c.h_q);
      const int r = (int)(x / c.h_q);
      det << " first bad at (r=" << r << ",h=" << h << ",i=" << i << ") got "
          << dr.lse[res.lse.bad_index] << " want " << refr.lse[res.lse.bad_index] << " (len "
          << hp.seqlens[r] << ")";
    }
    det << ";";
  }
  res.pass = res.out.pass && res.lse.pass && res.out_untouched_violations == 0 &&
             res.empty_row_violations == 0;
  res.detail = det.str();
  return res;
}

// ------------------------------------------------------------------ running
DeviceResult plan_and_decode(const HostProblem& hp, DeviceProblem& dp, cudaStream_t stream,
                             DeviceBuffer* workspace) {
  const openmla_decode_shape shape = decode_shape(hp);
  size_t ws_bytes = 0;
  OMLA_CHECK(openmla_plan_workspace_size(&shape, &ws_bytes));
  DeviceBuffer own;
  if (workspace == nullptr) {
    own = DeviceBuffer(ws_bytes);
    own.fill_byte(0xFF);  // the kernels may not rely on a zeroed workspace
    workspace = &own;
  } else if (workspace->bytes() < ws_bytes) {
    throw std::runtime_error("plan_and_decode: workspace smaller than openmla_plan_workspace_size");
  }
  DeviceBuffer& ws = *workspace;
  poison_outputs(hp, dp);

  OMLA_CHECK(openmla_plan(&shape, dp.seqlens.as<const int32_t>(), ws.get(), ws_bytes, stream));
  OMLA_CUDA_CHECK_LAST();
  // The decode must leave the plan region as it found it (the in-kernel
  // merge's counters back at zero), or the next layer's call would hang or
  // merge too early.
  const size_t plan_bytes = openmla_plan_bytes(&shape);
  std::vector<unsigned char> plan_before(plan_bytes), plan_after(plan_bytes);
  OMLA_CUDA_CHECK(cudaStreamSynchronize(stream));
  OMLA_CUDA_CHECK(cudaMemcpy(plan_before.data(), ws.get(), plan_bytes, cudaMemcpyDeviceToHost));
  const openmla_dense_decode_args args = decode_args(hp, dp);
  OMLA_CHECK(openmla_dense_decode(&args, ws.get(), ws_bytes, stream));
  OMLA_CUDA_CHECK_LAST();
  OMLA_CUDA_CHECK(cudaStreamSynchronize(stream));
  OMLA_CHECK(openmla_read_plan_error(ws.get(), stream));
  OMLA_CUDA_CHECK_LAST();
  OMLA_CUDA_CHECK(cudaMemcpy(plan_after.data(), ws.get(), plan_bytes, cudaMemcpyDeviceToHost));
  if (plan_before != plan_after) {
    size_t i = 0;
    while (plan_before[i] == plan_after[i]) ++i;
    throw std::runtime_error("plan_and_decode: the decode changed the plan region (first at byte " +
                             std::to_string(i) + " of " + std::to_string(plan_bytes) + ")");
  }
  return download_outputs(hp, dp);
}

CheckResult run_case(const DecodeCase& c) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const HostProblem hp = make_problem(c);
  Stream stream;
  DeviceProblem dp = make_device_problem(hp);
  const DeviceResult dr = plan_and_decode(hp, dp, stream.get());
  const auto t1 = clock::now();
  const Reference refr = run_reference(hp);
  const auto t2 = clock::now();
  CheckResult res = check_outputs(hp, dr, refr);
  const auto secs = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  std::printf("[ case     ] %s lens=%s (%.1fs, reference %.1fs)\n",
              res.summary_line(hp.c.name).c_str(), lens_string(hp.seqlens).c_str(),
              secs(t0, clock::now()), secs(t1, t2));
  if (!res.pass) std::printf("[ detail   ] %s\n", res.detail.c_str());
  std::fflush(stdout);
  return res;
}

}  // namespace openmla_test
