// Shared harness of the GPU tests: random problems in FlashMLA's style (paged
// cache behind a permuted block table, NaN in every slot no request may read,
// garbage table tails), strided device images, poisoned outputs, the float64
// CPU reference and DESIGN.md section 6's comparison.
//
// CUDA and openmla failures throw std::runtime_error (GoogleTest reports the
// message as a failure of the running test).
#ifndef OPENMLA_TESTS_GPU_GPU_TEST_UTIL_H_
#define OPENMLA_TESTS_GPU_GPU_TEST_UTIL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "openmla/openmla.h"
#include "reference/reference.h"

namespace openmla_test {

// Set by main() before the tests run.
extern bool g_has_gpu;
extern std::string g_skip_reason;

[[noreturn]] void throw_cuda(cudaError_t e, const char* expr, const char* file, int line);
[[noreturn]] void throw_status(const openmla_status& s, const char* expr, const char* file,
                               int line);

#define OMLA_CUDA_CHECK(expr)                                                      \
  do {                                                                             \
    cudaError_t omla_err_ = (expr);                                                \
    if (omla_err_ != cudaSuccess) ::openmla_test::throw_cuda(omla_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// A launch-side error that cudaGetLastError would report.
#define OMLA_CUDA_CHECK_LAST() OMLA_CUDA_CHECK(cudaGetLastError())

#define OMLA_CHECK(expr)                                                           \
  do {                                                                             \
    openmla_status omla_st_ = (expr);                                              \
    if (omla_st_.code != OPENMLA_OK) ::openmla_test::throw_status(omla_st_, #expr, __FILE__, __LINE__); \
  } while (0)

std::string status_string(const openmla_status& s);
const char* dtype_name(openmla_dtype t);

// ---------------------------------------------------------------- RAII
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return p_; }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return n_; }
  void upload(const void* src, size_t bytes);  // synchronous cudaMemcpy
  void download(void* dst, size_t bytes) const;
  void fill_byte(int value);                    // synchronous cudaMemset

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const;

 private:
  cudaStream_t s_ = nullptr;
};

// ---------------------------------------------------------------- cases
enum class QOLayout {
  kContig,      // row-major, no padding
  kPadded,      // head stride +64, s_q and batch strides padded
  kTransposed,  // stored [b, h_q, s_q, d+64], viewed as [b, s_q, h_q, d]
};
enum class KLayout {
  kContig,     // [num_blocks, 64, h_kv, 576]: heads interleaved per token
  kPadded,     // head stride 640, token and block strides padded
  kHeadMajor,  // stored [num_blocks, h_kv, 64, 576], viewed as [num_blocks, 64, h_kv, 576]
};
const char* layout_name(QOLayout l);
const char* layout_name(KLayout l);

struct DecodeCase {
  std::string name;  // set by finalize_name() unless given
  openmla_dtype dtype = OPENMLA_DTYPE_BF16;
  int s_q = 1;
  int h_q = 1;
  int h_kv = 1;
  std::vector<int32_t> seqlens;  // b = seqlens.size()
  bool causal = false;
  float softmax_scale = 0.f;  // <= 0: default 1/sqrt(576) (in the kernel and the reference)
  float q_std = 0.1f;         // inputs ~ N(0, std^2), rounded to the dtype
  float k_std = 0.1f;
  QOLayout q_layout = QOLayout::kContig;
  QOLayout out_layout = QOLayout::kContig;
  KLayout k_layout = KLayout::kContig;
  int extra_table_cols = 2;  // block-table columns beyond the longest request
  int extra_blocks = -1;     // physical blocks nobody uses (NaN-filled); -1: automatic
  int max_blocks_override = 0;  // >0: this table width (must fit every request)
  int num_blocks_override = 0;  // >0: this many physical blocks (must fit every request)
  int num_sms = 0;              // given to both the plan and the decode
  uint64_t seed = 1;
  int nominal_s_k = 0;  // for the name only
};

// A name that GoogleTest accepts as a parameter name ([A-Za-z0-9_]).
std::string default_name(const DecodeCase& c);

// ---------------------------------------------------------------- problems
struct HostProblem {
  DecodeCase c;
  int batch = 0;
  int max_blocks = 0;  // table width
  int num_blocks = 0;  // physical blocks
  std::vector<int32_t> block_table;  // [b, max_blocks], tails = 2147480000
  std::vector<int32_t> seqlens;
  // Contiguous, widened values (what the reference reads). NaN where unused.
  std::vector<float> q;  // [b, s_q, h_q, 576]
  std::vector<float> k;  // [num_blocks, 64, h_kv, 576]
  // Device images in the case's layouts (16-bit bit patterns; padding = NaN).
  std::vector<uint16_t> q_img, k_img;
  std::array<int64_t, 4> q_stride{}, k_stride{}, out_stride{};
  size_t out_span = 0;  // elements of the out image, guard included
  size_t lse_span = 0;  // elements of the lse buffer, guard included
  size_t out_elems() const { return (size_t)batch * c.s_q * c.h_q * OPENMLA_HEAD_DIM_V; }
  size_t lse_elems() const { return (size_t)batch * c.h_q * c.s_q; }
};

constexpr int32_t kTableGarbage = 2147480000;  // FlashMLA's value for unused table entries
constexpr uint16_t kNaN16 = 0xFFFF;            // NaN in both bf16 and fp16

HostProblem make_problem(const DecodeCase& c);
// Fresh q / cache values for the same shapes, table and lengths (new seed).
void refill_values(HostProblem& hp, uint64_t seed);

float half_to_float(openmla_dtype t, uint16_t bits);
uint16_t float_to_half(openmla_dtype t, float f);

struct DeviceProblem {
  DeviceBuffer q, k, block_table, seqlens, out, lse;
};
// Allocates and uploads every input; outputs are allocated, not written.
DeviceProblem make_device_problem(const HostProblem& hp);
void upload_inputs(const HostProblem& hp, DeviceProblem& dp);  // q, k, table, lengths
void poison_outputs(const HostProblem& hp, DeviceProblem& dp);  // all bytes 0xFF (NaN)

openmla_decode_shape decode_shape(const HostProblem& hp);
openmla_dense_decode_args decode_args(const HostProblem& hp, const DeviceProblem& dp);

struct Reference {
  std::vector<double> out;  // [b, s_q, h_q, 512]
  std::vector<double> lse;  // [b, h_q, s_q]
};
Reference run_reference(const HostProblem& hp);

struct DeviceResult {
  std::vector<uint16_t> out_img;  // the whole out buffer
  std::vector<float> lse;         // the whole lse buffer (guard included)
};
DeviceResult download_outputs(const HostProblem& hp, const DeviceProblem& dp);

// Widens the out view to [b, s_q, h_q, 512] floats.
std::vector<float> gather_out(const HostProblem& hp, const std::vector<uint16_t>& img);

struct CheckResult {
  bool pass = false;
  openmla::reference::Comparison out, lse;
  long long out_untouched_violations = 0;  // padding / guard elements written
  long long empty_row_violations = 0;      // rows with no key: out != 0 or lse != +inf
  std::string detail;                      // human-readable, first problems found
  std::string summary_line(const std::string& name) const;
};
// Elements outside the out view (padding, guard) and after lse that no longer
// hold the poison they were filled with.
long long count_writes_outside_views(const HostProblem& hp, const DeviceResult& dr,
                                     uint16_t out_poison, uint32_t lse_poison,
                                     long long* first_out_offset = nullptr);
CheckResult check_outputs(const HostProblem& hp, const DeviceResult& dr, const Reference& ref);

// Plans (device lengths) and decodes one problem on `stream` with poisoned
// outputs, checks openmla_read_plan_error, returns the downloaded outputs.
// Without `workspace`, a fresh NaN-poisoned one of the queried size is used.
DeviceResult plan_and_decode(const HostProblem& hp, DeviceProblem& dp, cudaStream_t stream,
                             DeviceBuffer* workspace = nullptr);

// The whole sweep step: generate, run, reference, compare, print one line.
CheckResult run_case(const DecodeCase& c);

std::string lens_string(const std::vector<int32_t>& lens, size_t max_items = 8);

// Deterministic per-case seeds.
uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace openmla_test

#endif  // OPENMLA_TESTS_GPU_GPU_TEST_UTIL_H_
