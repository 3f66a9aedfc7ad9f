// The float64 CPU reference (src/reference) against an independent textbook
// softmax(Q K^T * scale) V written here in long double, on small random paged
// problems: h_kv > 1, causal with s_q > 1, zero-length requests, rows with no
// attendable key, and NaN / garbage in every cache slot and table entry a
// request must not read.
//
// The textbook side never looks at the paged cache: it works on each
// request's logical keys, which are then scattered into randomly chosen
// physical blocks for the reference. So paging, head mapping and layouts are
// checked too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "reference/reference.h"

namespace {

using openmla::reference::DenseDecodeProblem;

constexpr int kD = 576;
constexpr int kDv = 512;
constexpr int kPage = 64;
constexpr int32_t kGarbageEntry = 2147480000;  // FlashMLA's table filler
const double kInf = std::numeric_limits<double>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// One batch in logical form.
struct Logical {
  int batch = 1, s_q = 1, h_q = 1, h_kv = 1;
  std::vector<int32_t> lens;
  std::vector<float> q;               // [b][s_q][h_q][576]
  std::vector<std::vector<float>> k;  // per request: [len][h_kv][576]

  const float* qrow(int r, int i, int h) const {
    return &q[(((size_t)r * s_q + i) * h_q + h) * kD];
  }
  const float* krow(int r, int j, int g) const { return &k[r][((size_t)j * h_kv + g) * kD]; }
};

Logical make_logical(int h_q, int h_kv, int s_q, std::vector<int32_t> lens, uint32_t seed,
                     float q_amp = 1.f, float k_amp = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Logical L;
  L.batch = (int)lens.size();
  L.s_q = s_q;
  L.h_q = h_q;
  L.h_kv = h_kv;
  L.lens = std::move(lens);
  L.q.resize((size_t)L.batch * s_q * h_q * kD);
  for (auto& x : L.q) x = q_amp * u(rng);
  L.k.resize(L.batch);
  for (int r = 0; r < L.batch; ++r) {
    L.k[r].resize((size_t)std::max(L.lens[r], 0) * h_kv * kD);
    for (auto& x : L.k[r]) x = k_amp * u(rng);
  }
  return L;
}

// The paged form the reference (and the kernels) consume.
struct Paged {
  int num_blocks = 0, max_blocks = 0;
  std::vector<float> cache;     // [num_blocks][64][h_kv][576], NaN where unused
  std::vector<int32_t> table;   // [b][max_blocks]
};

enum class TableTail { kGarbage, kNaNBlock };

// Scatters every request's keys into distinct random physical blocks. Cache
// rows nobody owns (tail of each last block, `spare_blocks` unused blocks) are
// NaN. Table entries past the used count are FlashMLA's garbage value, or the
// id of an all-NaN block (an index that is valid, so a reference that read it
// would not crash but would produce NaN).
Paged make_paged(const Logical& L, uint32_t seed, int spare_blocks = 2, int spare_cols = 1,
                 TableTail tail = TableTail::kGarbage) {
  std::mt19937 rng(seed);
  Paged P;
  int used = 0;
  for (int r = 0; r < L.batch; ++r) {
    const int nb = (L.lens[r] + kPage - 1) / kPage;
    used += nb;
    P.max_blocks = std::max(P.max_blocks, nb);
  }
  P.max_blocks += spare_cols;
  P.max_blocks = std::max(P.max_blocks, 1);
  P.num_blocks = used + std::max(spare_blocks, tail == TableTail::kNaNBlock ? 1 : 0);
  std::vector<int32_t> perm(P.num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  const int32_t nan_block = perm[used];  // first spare block: never owned
  P.cache.assign((size_t)P.num_blocks * kPage * L.h_kv * kD, kNaN);
  P.table.assign((size_t)L.batch * P.max_blocks,
                 tail == TableTail::kGarbage ? kGarbageEntry : nan_block);
  int next = 0;
  for (int r = 0; r < L.batch; ++r) {
    const int nb = (L.lens[r] + kPage - 1) / kPage;
    for (int blk = 0; blk < nb; ++blk) P.table[(size_t)r * P.max_blocks + blk] = perm[next++];
    for (int j = 0; j < L.lens[r]; ++j) {
      const int32_t phys = P.table[(size_t)r * P.max_blocks + j / kPage];
      for (int g = 0; g < L.h_kv; ++g) {
        float* dst = &P.cache[(((size_t)phys * kPage + j % kPage) * L.h_kv + g) * kD];
        std::copy(L.krow(r, j, g), L.krow(r, j, g) + kD, dst);
      }
    }
  }
  return P;
}

struct Result {
  std::vector<double> out;  // [b][s_q][h_q][512]
  std::vector<double> lse;  // [b][h_q][s_q]
};

Result run_reference(const Logical& L, const Paged& P, double scale, bool causal,
                     int threads = 2) {
  DenseDecodeProblem p;
  p.batch = L.batch;
  p.s_q = L.s_q;
  p.h_q = L.h_q;
  p.h_kv = L.h_kv;
  p.num_blocks = P.num_blocks;
  p.max_blocks_per_seq = P.max_blocks;
  p.softmax_scale = scale;
  p.causal = causal;
  Result R;
  // Poison: every element must be written.
  R.out.assign((size_t)L.batch * L.s_q * L.h_q * kDv, std::nan(""));
  R.lse.assign((size_t)L.batch * L.h_q * L.s_q, std::nan(""));
  openmla::reference::dense_decode(p, L.q.data(), P.cache.data(), P.table.data(), L.lens.data(),
                                   R.out.data(), R.lse.data(), threads);
  return R;
}

// Textbook: out = sum_j e^{s_j} v_j / sum_j e^{s_j}, lse = log sum_j e^{s_j},
// in long double without max subtraction, head-major loop order, channel-outer
// accumulation. Keys attended: j < len, and with causal j <= len - s_q + i.
struct Naive {
  std::vector<long double> out, lse;
  std::vector<int> attended;  // [b][s_q] number of keys each query token sees
};

Naive run_naive(const Logical& L, long double scale, bool causal) {
  Naive N;
  N.out.assign((size_t)L.batch * L.s_q * L.h_q * kDv, 0.0L);
  N.lse.assign((size_t)L.batch * L.h_q * L.s_q, 0.0L);
  N.attended.assign((size_t)L.batch * L.s_q, 0);
  const int group = L.h_q / L.h_kv;
  for (int r = 0; r < L.batch; ++r) {
    for (int h = 0; h < L.h_q; ++h) {
      const int g = h / group;
      for (int i = 0; i < L.s_q; ++i) {
        std::vector<int> keys;
        for (int j = 0; j < L.lens[r]; ++j)
          if (!causal || j <= L.lens[r] - L.s_q + i) keys.push_back(j);
        N.attended[(size_t)r * L.s_q + i] = (int)keys.size();
        long double* o = &N.out[(((size_t)r * L.s_q + i) * L.h_q + h) * kDv];
        long double& l = N.lse[((size_t)r * L.h_q + h) * L.s_q + i];
        if (keys.empty()) {
          l = std::numeric_limits<long double>::infinity();
          continue;  // out stays 0
        }
        std::vector<long double> w(keys.size());
        long double z = 0;
        for (size_t t = 0; t < keys.size(); ++t) {
          long double dot = 0;
          const float* qr = L.qrow(r, i, h);
          const float* kr = L.krow(r, keys[t], g);
          for (int c = kD - 1; c >= 0; --c) dot += (long double)qr[c] * (long double)kr[c];
          w[t] = std::exp(scale * dot);
          z += w[t];
        }
        for (int c = 0; c < kDv; ++c) {
          long double acc = 0;
          for (size_t t = 0; t < keys.size(); ++t) acc += w[t] * L.krow(r, keys[t], g)[c];
          o[c] = acc / z;
        }
        l = std::log(z);
      }
    }
  }
  return N;
}

// Element-by-element agreement of two high-precision computations.
void expect_close(const Result& R, const Naive& N, const Logical& L) {
  const double tol = 1e-9;
  long long bad = 0;
  for (int r = 0; r < L.batch; ++r)
    for (int i = 0; i < L.s_q; ++i)
      for (int h = 0; h < L.h_q; ++h) {
        const size_t lo = ((size_t)r * L.h_q + h) * L.s_q + i;
        const double lr = R.lse[lo];
        const long double ln = N.lse[lo];
        const bool empty = N.attended[(size_t)r * L.s_q + i] == 0;
        const size_t oo = (((size_t)r * L.s_q + i) * L.h_q + h) * kDv;
        if (empty) {
          EXPECT_TRUE(std::isinf(lr) && lr > 0)
              << "row with no key: lse must be +inf; r=" << r << " i=" << i << " h=" << h
              << " got " << lr;
          for (int c = 0; c < kDv; ++c)
            if (R.out[oo + c] != 0.0) {
              if (++bad < 5)
                ADD_FAILURE() << "row with no key: out must be 0; r=" << r << " i=" << i
                              << " h=" << h << " c=" << c << " got " << R.out[oo + c];
            }
          continue;
        }
        ASSERT_TRUE(std::isfinite(lr)) << "r=" << r << " i=" << i << " h=" << h;
        EXPECT_NEAR(lr, (double)ln, tol * std::max(1.0, std::fabs((double)ln)))
            << "lse r=" << r << " i=" << i << " h=" << h;
        for (int c = 0; c < kDv; ++c) {
          const double a = R.out[oo + c];
          const double b = (double)N.out[oo + c];
          if (!(std::fabs(a - b) <= tol * std::max(1.0, std::fabs(b)))) {
            if (++bad < 5)
              ADD_FAILURE() << "out r=" << r << " i=" << i << " h=" << h << " c=" << c
                            << ": reference " << a << " textbook " << b;
          }
        }
      }
  EXPECT_EQ(bad, 0) << "mismatching out elements";
}

struct Case {
  const char* name;
  int h_q, h_kv, s_q;
  bool causal;
  std::vector<int32_t> lens;
  double scale;  // <= 0: default 1/sqrt(576)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ReferenceVsTextbook : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceVsTextbook, Matches) {
  const Case& c = GetParam();
  const uint32_t seed = 1234u + (uint32_t)std::hash<std::string>{}(c.name);
  for (TableTail tail : {TableTail::kGarbage, TableTail::kNaNBlock}) {
    SCOPED_TRACE(tail == TableTail::kGarbage ? "table tail = 2147480000"
                                             : "table tail = an all-NaN block");
    const Logical L = make_logical(c.h_q, c.h_kv, c.s_q, c.lens, seed);
    const Paged P = make_paged(L, seed + 1, 2, 1, tail);
    const Result R = run_reference(L, P, c.scale, c.causal);
    const long double scale = c.scale > 0 ? (long double)c.scale : 1.0L / 24.0L;
    const Naive N = run_naive(L, scale, c.causal);
    expect_close(R, N, L);
    for (double x : R.out) ASSERT_FALSE(std::isnan(x)) << "NaN leaked into out";
    for (double x : R.lse) ASSERT_FALSE(std::isnan(x)) << "NaN leaked into lse";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReferenceVsTextbook,
    ::testing::Values(
        Case{"single_token", 1, 1, 1, false, {20}, 0},
        Case{"mqa_h16", 16, 1, 1, false, {1, 64, 65, 140}, 0},
        Case{"gqa_h9_kv3_sq2", 9, 3, 2, false, {128, 0, 5}, 0},
        Case{"gqa_h8_kv8", 8, 8, 1, true, {100, 63}, 0},
        Case{"causal_sq2", 3, 1, 2, true, {0, 65, 130}, 0},
        Case{"causal_sq4_short", 8, 2, 4, true, {1, 3, 4, 64, 70}, 0},
        Case{"causal_sq4_kv3", 6, 3, 4, true, {2, 0, 63, 129}, 0},
        Case{"noncausal_sq4", 4, 2, 4, false, {2, 0, 65}, 0},
        Case{"all_zero_lengths", 4, 2, 2, true, {0, 0, 0}, 0},
        Case{"explicit_scale", 2, 1, 1, false, {77}, 0.125},
        // Scores in the hundreds: exp() overflows double without the max
        // subtraction; the long double textbook needs none.
        Case{"peaky_softmax", 4, 2, 2, true, {90, 33}, 20.0}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(Reference, DefaultScaleIsOneOverSqrt576) {
  const Logical L = make_logical(4, 2, 2, {70, 5}, 7);
  const Paged P = make_paged(L, 8);
  const Result a = run_reference(L, P, 0.0, false);
  const Result b = run_reference(L, P, -3.0, false);
  const Result c = run_reference(L, P, 1.0 / 24.0, false);
  EXPECT_EQ(a.out, c.out);
  EXPECT_EQ(a.lse, c.lse);
  EXPECT_EQ(b.out, c.out);
  EXPECT_EQ(b.lse, c.lse);
}

TEST(Reference, ThreadCountDoesNotChangeResult) {
  const Logical L = make_logical(6, 3, 2, {130, 0, 64, 1}, 9);
  const Paged P = make_paged(L, 10);
  const Result a = run_reference(L, P, 0, true, 1);
  const Result b = run_reference(L, P, 0, true, 3);
  const Result c = run_reference(L, P, 0, true, 64);  // more threads than jobs
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.lse, b.lse);
  EXPECT_EQ(a.out, c.out);
  EXPECT_EQ(a.lse, c.lse);
}

// Hand-computable cases.
TEST(Reference, SingleKeyReturnsItsValue) {
  Logical L = make_logical(2, 1, 1, {1}, 11);
  const Paged P = make_paged(L, 12);
  const Result R = run_reference(L, P, 0.5, false);
  for (int h = 0; h < 2; ++h) {
    double dot = 0;
    for (int c = 0; c < kD; ++c) dot += (double)L.qrow(0, 0, h)[c] * L.krow(0, 0, 0)[c];
    EXPECT_NEAR(R.lse[h], 0.5 * dot, 1e-12);
    for (int c = 0; c < kDv; ++c) EXPECT_DOUBLE_EQ(R.out[(size_t)h * kDv + c], L.krow(0, 0, 0)[c]);
  }
}

TEST(Reference, IdenticalKeysAddLogCount) {
  Logical L = make_logical(1, 1, 1, {3}, 13);
  for (int j = 1; j < 3; ++j) std::copy(L.krow(0, 0, 0), L.krow(0, 0, 0) + kD, L.k[0].begin() + (size_t)j * kD);
  const Paged P = make_paged(L, 14);
  const Result R = run_reference(L, P, 0.25, false);
  double dot = 0;
  for (int c = 0; c < kD; ++c) dot += (double)L.qrow(0, 0, 0)[c] * L.krow(0, 0, 0)[c];
  EXPECT_NEAR(R.lse[0], 0.25 * dot + std::log(3.0), 1e-12);
  for (int c = 0; c < kDv; ++c) EXPECT_NEAR(R.out[c], L.krow(0, 0, 0)[c], 1e-12);
}

TEST(Reference, TwoKeysKnownWeights) {
  // q = e_0, k_0 = 2 e_0 + v-stuff, k_1 = 0 e_0: scores 2*scale and 0.
  Logical L = make_logical(1, 1, 1, {2}, 15);
  std::fill(L.q.begin(), L.q.end(), 0.f);
  L.q[0] = 1.f;
  L.k[0][0] = 2.f;
  L.k[0][kD] = 0.f;
  const Paged P = make_paged(L, 16);
  const double scale = 0.75;
  const Result R = run_reference(L, P, scale, false);
  const double e0 = std::exp(2 * scale), e1 = 1.0;
  EXPECT_NEAR(R.lse[0], std::log(e0 + e1), 1e-14);
  for (int c = 0; c < kDv; ++c) {
    const double want = (e0 * L.krow(0, 0, 0)[c] + e1 * L.krow(0, 1, 0)[c]) / (e0 + e1);
    EXPECT_NEAR(R.out[c], want, 1e-14);
  }
}

// Causal row i of a request with s_k keys is the non-causal attention of that
// query alone over the first s_k - s_q + i + 1 keys.
TEST(Reference, CausalRowEqualsTruncatedNonCausal) {
  const int s_q = 4, h_q = 6, h_kv = 2;
  const Logical L = make_logical(h_q, h_kv, s_q, {5, 67}, 17);
  const Paged P = make_paged(L, 18);
  const Result R = run_reference(L, P, 0, true);
  for (int r = 0; r < L.batch; ++r)
    for (int i = 0; i < s_q; ++i) {
      const int keep = L.lens[r] - s_q + i + 1;
      ASSERT_GT(keep, 0);
      Logical T = make_logical(h_q, h_kv, 1, {keep}, 0);
      std::copy(L.qrow(r, i, 0), L.qrow(r, i, 0) + (size_t)h_q * kD, T.q.begin());
      std::copy(L.k[r].begin(), L.k[r].begin() + (size_t)keep * h_kv * kD, T.k[0].begin());
      const Paged PT = make_paged(T, 19);
      const Result RT = run_reference(T, PT, 0, false);
      for (int h = 0; h < h_q; ++h) {
        EXPECT_NEAR(R.lse[((size_t)r * h_q + h) * s_q + i], RT.lse[h], 1e-12);
        for (int c = 0; c < kDv; ++c)
          ASSERT_NEAR(R.out[(((size_t)r * s_q + i) * h_q + h) * kDv + c], RT.out[(size_t)h * kDv + c],
                      1e-12);
      }
    }
}

// Row counts of the causal mask when s_k < s_q: the first s_q - s_k rows see
// nothing.
TEST(Reference, CausalRowsWithoutKeys) {
  const int s_q = 4;
  const Logical L = make_logical(2, 1, s_q, {1, 2, 0}, 21);
  const Paged P = make_paged(L, 22);
  const Result R = run_reference(L, P, 0, true);
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < s_q; ++i)
      for (int h = 0; h < 2; ++h) {
        const bool empty = L.lens[r] - s_q + i + 1 <= 0;
        const double l = R.lse[((size_t)r * 2 + h) * s_q + i];
        if (empty) {
          EXPECT_EQ(l, kInf) << "r=" << r << " i=" << i;
          for (int c = 0; c < kDv; ++c)
            ASSERT_EQ(R.out[(((size_t)r * s_q + i) * 2 + h) * kDv + c], 0.0);
        } else {
          EXPECT_TRUE(std::isfinite(l)) << "r=" << r << " i=" << i;
        }
      }
}

// The keys nobody may read are NaN; make them a huge finite value instead and
// the result must be bit-identical: the reference reads only attended rows.
TEST(Reference, UnusedSlotsNeverRead) {
  const Logical L = make_logical(4, 2, 2, {65, 3, 0, 128}, 23);
  Paged P = make_paged(L, 24, 3, 2, TableTail::kNaNBlock);
  const Result a = run_reference(L, P, 0, true);
  for (auto& x : P.cache)
    if (std::isnan(x)) x = 1e30f;
  const Result b = run_reference(L, P, 0, true);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.lse, b.lse);
}

TEST(Reference, AttendedEnd) {
  using openmla::reference::attended_end;
  EXPECT_EQ(attended_end(100, 1, 0, false), 100);
  EXPECT_EQ(attended_end(100, 1, 0, true), 100);
  EXPECT_EQ(attended_end(100, 4, 0, true), 97);
  EXPECT_EQ(attended_end(100, 4, 3, true), 100);
  EXPECT_EQ(attended_end(100, 4, 2, false), 100);
  EXPECT_EQ(attended_end(2, 4, 0, true), 0);
  EXPECT_EQ(attended_end(2, 4, 1, true), 0);
  EXPECT_EQ(attended_end(2, 4, 2, true), 1);
  EXPECT_EQ(attended_end(2, 4, 3, true), 2);
  EXPECT_EQ(attended_end(0, 1, 0, false), 0);
  EXPECT_EQ(attended_end(0, 4, 3, true), 0);
  EXPECT_EQ(attended_end(-5, 1, 0, false), 0);
  EXPECT_EQ(attended_end(-5, 2, 1, true), 0);
}

}  // namespace
