#include "reference/reference.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

namespace openmla::reference {

namespace {
constexpr int kD = 576;
constexpr int kDv = 512;
constexpr int kPage = 64;
}  // namespace

int attended_end(int seqlen, int s_q, int i, bool causal) {
  int end = seqlen < 0 ? 0 : seqlen;
  if (causal) end = std::min(end, seqlen - s_q + i + 1);
  return std::max(end, 0);
}

void dense_decode(const DenseDecodeProblem& p, const float* q, const float* k_cache,
                  const int32_t* block_table, const int32_t* seqlens, double* out,
                  double* lse, int threads) {
  const double scale = p.softmax_scale > 0 ? p.softmax_scale : 1.0 / std::sqrt((double)kD);
  const int group = p.h_q / p.h_kv;
  // A job is up to kMaxRowsPerJob query rows of one (request, kv head):
  // they share each key row while it is in L1, and a single long request
  // (b1) still spreads over the threads (jobs >= 2 x threads where the rows
  // allow). Every row sums in the same order as a row-at-a-time loop, so the
  // results do not depend on the split.
  constexpr int kMaxRowsPerJob = 16;
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  const int rows = p.s_q * group;
  const int64_t all_rows = (int64_t)p.batch * p.h_kv * rows;
  const int per_job = (int)std::max<int64_t>(1, std::min<int64_t>(kMaxRowsPerJob, all_rows / (2 * (int64_t)threads)));
  const int chunks = (rows + per_job - 1) / per_job;
  const int64_t jobs = (int64_t)p.batch * p.h_kv * chunks;
  threads = (int)std::max<int64_t>(1, std::min<int64_t>(threads, jobs));
  std::atomic<int64_t> next{0};
  // Keys behind an out-of-range table entry read as NaN (never the memory).
  const std::vector<float> nan_row(kD, std::numeric_limits<float>::quiet_NaN());

  auto work = [&]() {
    std::vector<double> score[kMaxRowsPerJob];
    for (int64_t job = next++; job < jobs; job = next++) {
      const int r = (int)(job / ((int64_t)p.h_kv * chunks)), g = (int)(job / chunks % p.h_kv);
      const int row0 = (int)(job % chunks) * per_job, n = std::min(per_job, rows - row0);
      // Never read outside the table row or the cache, even on bad input.
      const int len = std::min(std::max(seqlens[r], 0), p.max_blocks_per_seq * kPage);
      auto key = [&](int j) -> const float* {
        const int phys = block_table[(size_t)r * p.max_blocks_per_seq + j / kPage];
        if (phys < 0 || phys >= p.num_blocks) return nan_row.data();
        return k_cache + (((size_t)phys * kPage + j % kPage) * p.h_kv + g) * kD;
      };
      const float* qrow[kMaxRowsPerJob];
      double* orow[kMaxRowsPerJob];
      double* l[kMaxRowsPerJob];
      int end[kMaxRowsPerJob];
      int max_end = 0;
      for (int x = 0; x < n; ++x) {
        const int i = (row0 + x) / group, h = g * group + (row0 + x) % group;
        qrow[x] = q + (((size_t)r * p.s_q + i) * p.h_q + h) * kD;
        orow[x] = out + (((size_t)r * p.s_q + i) * p.h_q + h) * kDv;
        l[x] = &lse[((size_t)r * p.h_q + h) * p.s_q + i];
        end[x] = std::min(attended_end(seqlens[r], p.s_q, i, p.causal), len);
        max_end = std::max(max_end, end[x]);
        std::fill(orow[x], orow[x] + kDv, 0.0);
        score[x].assign(end[x], 0.0);
      }
      for (int j = 0; j < max_end; ++j) {
        const float* kr = key(j);
        for (int x = 0; x < n; ++x) {
          if (j >= end[x]) continue;
          double s = 0;
          for (int c = 0; c < kD; ++c) s += (double)qrow[x][c] * (double)kr[c];
          score[x][j] = s * scale;
        }
      }
      double mx[kMaxRowsPerJob], sum[kMaxRowsPerJob];
      for (int x = 0; x < n; ++x) {
        if (end[x] == 0) {  // no attendable key: out 0, lse +inf
          *l[x] = std::numeric_limits<double>::infinity();
          continue;
        }
        mx[x] = -std::numeric_limits<double>::infinity();
        for (int j = 0; j < end[x]; ++j) mx[x] = std::max(mx[x], score[x][j]);
        sum[x] = 0;
        for (int j = 0; j < end[x]; ++j) {
          score[x][j] = std::exp(score[x][j] - mx[x]);
          sum[x] += score[x][j];
        }
      }
      for (int j = 0; j < max_end; ++j) {
        const float* vr = key(j);
        for (int x = 0; x < n; ++x) {
          if (j >= end[x]) continue;
          const double w = score[x][j] / sum[x];
          for (int c = 0; c < kDv; ++c) orow[x][c] += w * (double)vr[c];
        }
      }
      for (int x = 0; x < n; ++x)
        if (end[x] > 0) *l[x] = mx[x] + std::log(sum[x]);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

float bf16_to_float(uint16_t v) {
  uint32_t u = (uint32_t)v << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) { mant <<= 1; --exp; }
      mant &= 0x3ff;
      u = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_fp16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return sign | 0x7e00;           // NaN
  if (absu >= 0x477ff000u) return sign | 0x7c00;           // overflow -> inf
  if (absu < 0x33000001u) return sign;                     // underflow -> 0
  int exp = (int)(absu >> 23) - 127 + 15;
  uint32_t mant = (absu & 0x7fffff) | 0x800000;
  if (exp <= 0) {  // subnormal half
    const int shift = 14 - exp;
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return sign | (uint16_t)half;
  }
  uint32_t half = ((uint32_t)exp << 10) | ((mant >> 13) & 0x3ff);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
  return sign | (uint16_t)half;
}

namespace {
Comparison compare(const float* a, const double* r, long long n, double atol, double rtol,
                   bool with_cos) {
  Comparison c;
  double dot = 0, na = 0, nr = 0;
  bool ok = true;
  for (long long i = 0; i < n; ++i) {
    const double x = a[i], y = r[i];
    if (std::isnan(x) || std::isnan(y)) {
      ++c.count_nan;
      if (ok) c.bad_index = i;
      ok = false;
      continue;
    }
    if (std::isinf(y) || std::isinf(x)) {
      if (x != y) {
        if (ok) c.bad_index = i;
        ok = false;
        c.max_abs_err = std::numeric_limits<double>::infinity();
      }
      continue;
    }
    const double e = std::fabs(x - y);
    c.max_abs_err = std::max(c.max_abs_err, e);
    if (e > atol + rtol * std::fabs(y)) {
      if (ok) c.bad_index = i;
      ok = false;
    }
    dot += x * y;
    na += x * x;
    nr += y * y;
  }
  if (with_cos) {
    // FlashMLA's cos_diff: 1 - 2<x,y>/(|x|^2+|y|^2); unlike 1 - cos it also
    // catches a uniform scale error.
    c.cos_diff = na + nr > 0 ? 1.0 - 2.0 * dot / std::max(na + nr, 1e-12) : 0.0;
    if (c.cos_diff > 5e-6) ok = false;
  }
  c.pass = ok;
  return c;
}
}  // namespace

Comparison compare_out(const float* actual, const double* ref, long long n) {
  return compare(actual, ref, n, 8e-4, 2.01 / 128, true);
}

Comparison compare_lse(const float* actual, const double* ref, long long n) {
  return compare(actual, ref, n, 1e-6, 8.01 / 65536, false);
}

}  // namespace openmla::reference
