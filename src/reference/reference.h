// CPU reference of dense MLA decoding, float64 accumulation. Every test and
// the benchmark's check compare the kernels against this.
#ifndef OPENMLA_REFERENCE_REFERENCE_H_
#define OPENMLA_REFERENCE_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace openmla::reference {

struct DenseDecodeProblem {
  int batch = 1;
  int s_q = 1;
  int h_q = 1;
  int h_kv = 1;
  int num_blocks = 1;          // physical blocks in k_cache
  int max_blocks_per_seq = 1;  // width of block_table
  double softmax_scale = 0;    // <= 0: 1/sqrt(576)
  bool causal = false;
};

// All arrays contiguous, values already widened to float:
//   q [b, s_q, h_q, 576], k_cache [num_blocks, 64, h_kv, 576],
//   block_table [b, max_blocks_per_seq], seqlens [b]
// Writes out [b, s_q, h_q, 512] and lse [b, h_q, s_q] (natural log; +inf and
// zero output for a row with no attendable key). Only reads cache rows a
// request may attend, so NaN elsewhere never leaks in. Uses `threads` CPU
// threads (0: hardware concurrency).
void dense_decode(const DenseDecodeProblem& p, const float* q, const float* k_cache,
                  const int32_t* block_table, const int32_t* seqlens, double* out,
                  double* lse, int threads = 0);

// The last key index (exclusive) that query token i of a request with
// `seqlen` cached tokens attends.
int attended_end(int seqlen, int s_q, int i, bool causal);

// bf16 / fp16 <-> float on the host (round to nearest even).
float bf16_to_float(uint16_t v);
uint16_t float_to_bf16(float f);
float fp16_to_float(uint16_t v);
uint16_t float_to_fp16(float f);

// DESIGN.md section 6 tolerances (FlashMLA's).
struct Comparison {
  bool pass = false;
  double max_abs_err = 0;
  double cos_diff = 0;
  long long bad_index = -1;  // first element outside tolerance, or NaN
  long long count_nan = 0;
};
Comparison compare_out(const float* actual, const double* ref, long long n);
Comparison compare_lse(const float* actual, const double* ref, long long n);

}  // namespace openmla::reference

#endif  // OPENMLA_REFERENCE_REFERENCE_H_
