// Benchmark cases: their names, command-line syntax, and the host half of
// FlashMLA's data recipe (lengths, block table) as ../shared/ANCHORS.md says.
#ifndef OPENMLA_TOOLS_BENCH_CASES_H_
#define OPENMLA_TOOLS_BENCH_CASES_H_

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

constexpr int kD = 576;    // q/k head dim
constexpr int kDv = 512;   // v head dim
constexpr int kPage = 64;  // tokens per cache block

struct CaseSpec {
  int b = 1;
  int s_q = 1;
  int s_k = 0;  // every length if fixed, else the mean of Normal(s_k, s_k/2)
  int h_q = 1;
  int h_kv = 1;
  bool causal = false;
  bool fp16 = false;
  bool fixed = false;  // all lengths s_k (not varlen)

  // b{b}_sq{s_q}_sk{s_k}_hq{h_q}[_hkv{h_kv}][_causal][_fp16][_fixed]
  std::string name() const;
  const char* dtype() const { return fp16 ? "fp16" : "bf16"; }
};

// "b=128,s_q=1,s_k=4096,h_q=16[,h_kv=1][,causal][,fp16][,fixed]" or a case
// name "b128_sq1_sk4096_hq16[_hkv2][_causal][_fp16][_fixed]". s_q defaults
// to 1, h_kv to 1. Returns false with a message on bad input.
bool parse_case(const std::string& text, CaseSpec* spec, std::string* error);

// The issue-3 target list (bf16 and fp16, varlen, h_kv = 1).
std::vector<CaseSpec> default_cases();

// Host half of the data: lengths, a block table that is a random permutation
// of all b * max_blocks_per_seq physical blocks (FlashMLA's layout: max
// length padded up to a multiple of 256), and how many cached tokens each
// physical block holds (the rest of the cache gets NaN).
struct CaseData {
  std::vector<int32_t> seqlens;       // [b]
  int max_blocks_per_seq = 0;
  int num_blocks = 0;                 // b * max_blocks_per_seq
  std::vector<int32_t> block_table;   // [b, max_blocks_per_seq]
  std::vector<int32_t> valid_tokens;  // [num_blocks], 0..64
  long long total_tokens = 0;         // sum of the lengths
  double mean_sk = 0;                 // s̄_k
};
// Lengths: max(random.normalvariate(s_k, s_k/2), s_q) per request with
// CPython's generator reproduced bit for bit, seeded with `seed` (FlashMLA's
// test: random.seed(0)), so they are FlashMLA's exact lengths. The block
// table's permutation uses std::mt19937(seed) (FlashMLA: torch.randperm).
CaseData make_case_data(const CaseSpec& spec, uint32_t seed = 0);

// FlashMLA's formulas (DESIGN.md section 5).
double case_flops(const CaseSpec& spec, double mean_sk);
double case_bytes(const CaseSpec& spec, double mean_sk);

inline int blocks_for(int len) { return len <= 0 ? 0 : (len + kPage - 1) / kPage; }

}  // namespace bench

#endif  // OPENMLA_TOOLS_BENCH_CASES_H_
