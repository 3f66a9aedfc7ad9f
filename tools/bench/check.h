// Checks one case's GPU result against the float64 CPU reference
// (openmla::reference::dense_decode) with FlashMLA's tolerances.
//
// Large cases would keep the reference busy for minutes, so the check covers
// a deterministic subset of requests (the shortest, the longest, then
// requests in a fixed pseudo-random order while a work budget lasts). The
// subset is run as its own problem: each checked (request, kv head, group of
// query heads) becomes one sub-request whose block-table row points at that
// request's blocks, copied from the GPU cache, so the reference's threads
// stay busy even when few requests are checked.
#ifndef OPENMLA_TOOLS_BENCH_CHECK_H_
#define OPENMLA_TOOLS_BENCH_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "cases.h"

namespace bench {

struct CheckBudget {
  double row_keys = 1e8;             // sum over checked requests of s_q*h_q*len
  long long token_rows = 1ll << 20;  // sum of len*h_kv (host memory: 2.3 KB each)
  bool full = false;                 // ignore the budget: check every request
};

// The requests to check, in the order their blocks are copied from the GPU.
std::vector<int> choose_check_requests(const CaseSpec& spec, const CaseData& data,
                                       const CheckBudget& budget);

// What the check needs from the GPU (raw 16-bit values as stored there).
struct CheckInput {
  std::vector<int> requests;     // from choose_check_requests
  std::vector<uint16_t> q;       // [b, s_q, h_q, 576]
  std::vector<uint16_t> out;     // [b, s_q, h_q, 512]
  std::vector<float> lse;        // [b, h_q, s_q]
  // The checked requests' used cache blocks, request after request in the
  // order of `requests`: blocks_for(len) blocks of [64, h_kv, 576] each.
  std::vector<uint16_t> blocks;
};

struct CheckResult {
  bool pass = false;
  double max_abs_err = 0;  // max over out and lse
  double out_max_abs_err = 0, lse_max_abs_err = 0, cos_diff = 0;
  long long nan_count = 0;
  int checked_requests = 0, total_requests = 0;
  double seconds = 0;
  std::string detail;  // why it failed (first bad element), empty on pass
};

CheckResult check_against_reference(const CaseSpec& spec, const CaseData& data,
                                    const CheckInput& in, float softmax_scale, int threads);

}  // namespace bench

#endif  // OPENMLA_TOOLS_BENCH_CHECK_H_
