#include "check.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "reference/reference.h"

namespace bench {

std::vector<int> choose_check_requests(const CaseSpec& spec, const CaseData& data,
                                       const CheckBudget& budget) {
  const int b = spec.b;
  std::vector<int> all(b);
  std::iota(all.begin(), all.end(), 0);
  if (budget.full) return all;

  auto row_keys = [&](int r) { return (double)spec.s_q * spec.h_q * data.seqlens[r]; };
  auto token_rows = [&](int r) { return (long long)data.seqlens[r] * spec.h_kv; };

  // Candidates: the shortest and the longest request first, then every
  // request in a fixed pseudo-random order.
  const int shortest = (int)(std::min_element(data.seqlens.begin(), data.seqlens.end()) - data.seqlens.begin());
  const int longest = (int)(std::max_element(data.seqlens.begin(), data.seqlens.end()) - data.seqlens.begin());
  std::vector<int> order = all;
  std::mt19937 gen(12345);
  for (int i = b - 1; i > 0; --i) {
    const int j = (int)(((uint64_t)gen() * (uint64_t)(i + 1)) >> 32);
    std::swap(order[i], order[j]);
  }
  std::vector<int> candidates = {shortest, longest};
  candidates.insert(candidates.end(), order.begin(), order.end());

  std::vector<char> taken(b, 0);
  std::vector<int> chosen;
  double used_row_keys = 0;
  long long used_rows = 0;
  for (int r : candidates) {
    if (taken[r]) continue;
    const bool must = chosen.size() < 2;  // shortest and longest always
    if (!must && (used_row_keys + row_keys(r) > budget.row_keys ||
                  used_rows + token_rows(r) > budget.token_rows))
      continue;  // a shorter one later may still fit
    taken[r] = 1;
    chosen.push_back(r);
    used_row_keys += row_keys(r);
    used_rows += token_rows(r);
  }
  return chosen;
}

CheckResult check_against_reference(const CaseSpec& spec, const CaseData& data,
                                    const CheckInput& in, float softmax_scale, int threads) {
  namespace ref = openmla::reference;
  const auto t0 = std::chrono::steady_clock::now();
  const int s_q = spec.s_q, h_q = spec.h_q, h_kv = spec.h_kv, group = h_q / h_kv;
  const int n_sel = (int)in.requests.size();
  float (*to_float)(uint16_t) = spec.fp16 ? ref::fp16_to_float : ref::bf16_to_float;
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());

  // Query heads per sub-request: the largest divisor of the group size that
  // still leaves >= 4 sub-requests per thread (the reference parallelises
  // over requests x kv heads).
  int hc = 1;
  for (int d = group; d >= 1; --d) {
    if (group % d == 0 && (long long)n_sel * h_kv * (group / d) >= 4ll * threads) {
      hc = d;
      break;
    }
  }
  const int chunks = group / hc;

  // Where each checked request's blocks start in in.blocks.
  std::vector<long long> first_block(n_sel);
  long long nb = 0;
  for (int k = 0; k < n_sel; ++k) {
    first_block[k] = nb;
    nb += blocks_for(data.seqlens[in.requests[k]]);
  }
  const size_t token_elems = (size_t)h_kv * kD;
  if (in.blocks.size() != (size_t)nb * kPage * token_elems)
    throw std::runtime_error("check: the copied cache blocks do not match the checked requests");

  // Sub-cache: one [blocks, 64, 1, 576] region per (checked request, kv head).
  std::vector<long long> base((size_t)n_sel * h_kv);
  long long sub_blocks = 0;
  int max_blocks = 1;
  for (int k = 0; k < n_sel; ++k) {
    const int nblk = blocks_for(data.seqlens[in.requests[k]]);
    max_blocks = std::max(max_blocks, nblk);
    for (int g = 0; g < h_kv; ++g) {
      base[(size_t)k * h_kv + g] = sub_blocks;
      sub_blocks += nblk;
    }
  }
  std::vector<float> cache((size_t)std::max<long long>(sub_blocks, 1) * kPage * kD, 0.0f);
  for (int k = 0; k < n_sel; ++k) {
    const int nblk = blocks_for(data.seqlens[in.requests[k]]);
    for (int blk = 0; blk < nblk; ++blk)
      for (int t = 0; t < kPage; ++t)
        for (int g = 0; g < h_kv; ++g) {
          const uint16_t* src = &in.blocks[((size_t)(first_block[k] + blk) * kPage + t) * token_elems + (size_t)g * kD];
          float* dst = &cache[((size_t)(base[(size_t)k * h_kv + g] + blk) * kPage + t) * kD];
          for (int c = 0; c < kD; ++c) dst[c] = to_float(src[c]);
        }
  }

  // Sub-requests (checked request, kv head, head chunk), longest first so the
  // reference's job queue ends with short jobs.
  std::vector<int> by_len(n_sel);
  std::iota(by_len.begin(), by_len.end(), 0);
  std::stable_sort(by_len.begin(), by_len.end(), [&](int x, int y) {
    return data.seqlens[in.requests[x]] > data.seqlens[in.requests[y]];
  });
  struct Sub { int k, g, c; };
  std::vector<Sub> subs;
  for (int k : by_len)
    for (int g = 0; g < h_kv; ++g)
      for (int c = 0; c < chunks; ++c) subs.push_back({k, g, c});
  const int S = (int)subs.size();

  std::vector<float> q((size_t)S * s_q * hc * kD);
  std::vector<int32_t> table((size_t)S * max_blocks, 0);
  std::vector<int32_t> seqlens(S);
  std::vector<float> act_out((size_t)S * s_q * hc * kDv);
  std::vector<float> act_lse((size_t)S * hc * s_q);
  for (int s = 0; s < S; ++s) {
    const Sub& u = subs[s];
    const int r = in.requests[u.k];
    seqlens[s] = data.seqlens[r];
    const long long b0 = base[(size_t)u.k * h_kv + u.g];
    for (int i = 0; i < blocks_for(seqlens[s]); ++i) table[(size_t)s * max_blocks + i] = (int32_t)(b0 + i);
    for (int i = 0; i < s_q; ++i)
      for (int hh = 0; hh < hc; ++hh) {
        const int h = u.g * group + u.c * hc + hh;
        const uint16_t* qs = &in.q[(((size_t)r * s_q + i) * h_q + h) * kD];
        float* qd = &q[(((size_t)s * s_q + i) * hc + hh) * kD];
        for (int c = 0; c < kD; ++c) qd[c] = to_float(qs[c]);
        const uint16_t* os = &in.out[(((size_t)r * s_q + i) * h_q + h) * kDv];
        float* od = &act_out[(((size_t)s * s_q + i) * hc + hh) * kDv];
        for (int c = 0; c < kDv; ++c) od[c] = to_float(os[c]);
        act_lse[((size_t)s * hc + hh) * s_q + i] = in.lse[((size_t)r * h_q + h) * s_q + i];
      }
  }

  ref::DenseDecodeProblem p;
  p.batch = S;
  p.s_q = s_q;
  p.h_q = hc;
  p.h_kv = 1;
  p.num_blocks = (int)std::max<long long>(sub_blocks, 1);
  p.max_blocks_per_seq = max_blocks;
  p.softmax_scale = softmax_scale;
  p.causal = spec.causal;
  std::vector<double> ref_out(act_out.size()), ref_lse(act_lse.size());
  ref::dense_decode(p, q.data(), cache.data(), table.data(), seqlens.data(), ref_out.data(),
                    ref_lse.data(), threads);

  const ref::Comparison co = ref::compare_out(act_out.data(), ref_out.data(), (long long)act_out.size());
  const ref::Comparison cl = ref::compare_lse(act_lse.data(), ref_lse.data(), (long long)act_lse.size());

  CheckResult res;
  res.pass = co.pass && cl.pass;
  res.out_max_abs_err = co.max_abs_err;
  res.lse_max_abs_err = cl.max_abs_err;
  res.max_abs_err = std::max(co.max_abs_err, cl.max_abs_err);
  res.cos_diff = co.cos_diff;
  res.nan_count = co.count_nan + cl.count_nan;
  res.checked_requests = n_sel;
  res.total_requests = spec.b;

  // Name the first bad element in the case's own coordinates.
  auto describe = [&](const char* what, long long idx, bool is_out) {
    const size_t row_elems = is_out ? kDv : 1;
    long long e = idx / (long long)row_elems;
    int s, i, hh;
    if (is_out) {  // [S, s_q, hc, 512]
      hh = (int)(e % hc); e /= hc;
      i = (int)(e % s_q); s = (int)(e / s_q);
    } else {  // [S, hc, s_q]
      i = (int)(e % s_q); e /= s_q;
      hh = (int)(e % hc); s = (int)(e / hc);
    }
    const Sub& u = subs[s];
    const int r = in.requests[u.k];
    const int h = u.g * group + u.c * hc + hh;
    char buf[256];
    const float got = is_out ? act_out[idx] : act_lse[idx];
    const double want = is_out ? ref_out[idx] : ref_lse[idx];
    if (is_out)
      std::snprintf(buf, sizeof buf, "%s[r=%d, i=%d, h=%d, c=%d] = %g, reference %g (len %d)", what, r, i,
                    h, (int)(idx % kDv), got, want, data.seqlens[r]);
    else
      std::snprintf(buf, sizeof buf, "%s[r=%d, h=%d, i=%d] = %g, reference %g (len %d)", what, r, h, i,
                    got, want, data.seqlens[r]);
    return std::string(buf);
  };
  if (!co.pass) {
    res.detail = co.bad_index >= 0 ? describe("out", co.bad_index, true)
                                   : "out cosine distance " + std::to_string(co.cos_diff) + " > 5e-6";
    if (co.count_nan) res.detail += "; " + std::to_string(co.count_nan) + " NaN in out";
  }
  if (!cl.pass) {
    if (!res.detail.empty()) res.detail += "; ";
    res.detail += cl.bad_index >= 0 ? describe("lse", cl.bad_index, false) : std::string("lse mismatch");
    if (cl.count_nan) res.detail += "; " + std::to_string(cl.count_nan) + " NaN in lse";
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace bench
