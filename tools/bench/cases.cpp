#include "cases.h"

#include <openmla/openmla.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>

namespace bench {

std::string CaseSpec::name() const {
  // Appends only (GCC 12 warns falsely on "literal" + std::string).
  std::string n = "b";
  n += std::to_string(b);
  n += "_sq";
  n += std::to_string(s_q);
  n += "_sk";
  n += std::to_string(s_k);
  n += "_hq";
  n += std::to_string(h_q);
  if (h_kv != 1) {
    n += "_hkv";
    n += std::to_string(h_kv);
  }
  if (causal) n += "_causal";
  if (fp16) n += "_fp16";
  if (fixed) n += "_fixed";
  return n;
}

namespace {

// CPython's `random` module, bit for bit: MT19937 seeded through
// init_by_array (what random.seed(n) does for an int n < 2^32), random()
// built from two 32-bit outputs, normalvariate() by Kinderman-Monahan. With
// it the varlen lengths are exactly those FlashMLA's test drew (seed 0), so
// the figures compare with ANCHORS.md case by case (b = 1 included).
class PyRandom {
 public:
  explicit PyRandom(uint32_t seed) {
    const uint32_t key[1] = {seed};
    init_by_array(key, 1);
  }

  double random() {
    const uint32_t a = next() >> 5, b = next() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }

  double normalvariate(double mu, double sigma) {
    const double magic = 4 * std::exp(-0.5) / std::sqrt(2.0);
    for (;;) {
      const double u1 = random();
      const double u2 = 1.0 - random();
      const double z = magic * (u1 - 0.5) / u2;
      const double zz = z * z / 4.0;
      if (zz <= -std::log(u2)) return mu + z * sigma;
    }
  }

 private:
  static constexpr int kN = 624, kM = 397;
  uint32_t mt_[kN];
  int mti_ = kN + 1;

  void init_genrand(uint32_t s) {
    mt_[0] = s;
    for (mti_ = 1; mti_ < kN; ++mti_)
      mt_[mti_] = 1812433253u * (mt_[mti_ - 1] ^ (mt_[mti_ - 1] >> 30)) + (uint32_t)mti_;
  }

  void init_by_array(const uint32_t* key, int len) {
    init_genrand(19650218u);
    int i = 1, j = 0;
    for (int k = kN > len ? kN : len; k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
      ++i;
      ++j;
      if (i >= kN) { mt_[0] = mt_[kN - 1]; i = 1; }
      if (j >= len) j = 0;
    }
    for (int k = kN - 1; k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
      ++i;
      if (i >= kN) { mt_[0] = mt_[kN - 1]; i = 1; }
    }
    mt_[0] = 0x80000000u;
  }

  uint32_t next() {
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    if (mti_ >= kN) {
      int kk = 0;
      uint32_t y;
      for (; kk < kN - kM; ++kk) {
        y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7fffffffu);
        mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ mag01[y & 1u];
      }
      for (; kk < kN - 1; ++kk) {
        y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7fffffffu);
        mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ mag01[y & 1u];
      }
      y = (mt_[kN - 1] & 0x80000000u) | (mt_[0] & 0x7fffffffu);
      mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ mag01[y & 1u];
      mti_ = 0;
    }
    uint32_t y = mt_[mti_++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
  }
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) parts.push_back(cur);
  return parts;
}

bool parse_int(const std::string& s, int* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long x = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || x < INT_MIN || x > INT_MAX) return false;
  *v = (int)x;
  return true;
}

bool validate(const CaseSpec& c, std::string* error) {
  auto fail = [&](const std::string& m) {
    *error = m;
    return false;
  };
  if (c.b < 1) return fail("b must be >= 1");
  if (c.s_q < 1 || c.s_q > OPENMLA_MAX_S_Q)
    return fail("s_q must be in 1.." + std::to_string(OPENMLA_MAX_S_Q));
  if (c.h_q < 1) return fail("h_q must be >= 1");
  if (c.h_kv < 1) return fail("h_kv must be >= 1");
  if (c.h_q % c.h_kv != 0) return fail("h_q must be a multiple of h_kv");
  if (c.fixed ? c.s_k < 0 : c.s_k < 1)
    return fail(c.fixed ? "s_k must be >= 0" : "s_k must be >= 1 (varlen draws Normal(s_k, s_k/2))");
  if (c.s_k > (1 << 24)) return fail("s_k must be <= 16777216");
  return true;
}

}  // namespace

bool parse_case(const std::string& text, CaseSpec* spec, std::string* error) {
  CaseSpec c;
  bool have_b = false, have_sk = false, have_hq = false;
  const bool key_value = text.find('=') != std::string::npos;
  for (const std::string& tok : split(text, key_value ? ',' : '_')) {
    if (tok.empty()) continue;
    if (tok == "causal") { c.causal = true; continue; }
    if (tok == "fp16") { c.fp16 = true; continue; }
    if (tok == "bf16") { c.fp16 = false; continue; }
    if (tok == "fixed") { c.fixed = true; continue; }
    if (tok == "varlen") { c.fixed = false; continue; }
    std::string key, value;
    if (key_value) {
      const size_t eq = tok.find('=');
      if (eq == std::string::npos) { *error = "unknown flag '" + tok + "' in '" + text + "'"; return false; }
      key = tok.substr(0, eq);
      value = tok.substr(eq + 1);
    } else {
      const size_t digit = tok.find_first_of("0123456789");
      if (digit == std::string::npos || digit == 0) { *error = "unknown part '" + tok + "' in '" + text + "'"; return false; }
      key = tok.substr(0, digit);
      value = tok.substr(digit);
    }
    int v = 0;
    if (!parse_int(value, &v)) { *error = "bad number '" + value + "' for " + key + " in '" + text + "'"; return false; }
    if (key == "b") { c.b = v; have_b = true; }
    else if (key == "s_q" || key == "sq") c.s_q = v;
    else if (key == "s_k" || key == "sk") { c.s_k = v; have_sk = true; }
    else if (key == "h_q" || key == "hq") { c.h_q = v; have_hq = true; }
    else if (key == "h_kv" || key == "hkv") c.h_kv = v;
    else { *error = "unknown key '" + key + "' in '" + text + "'"; return false; }
  }
  if (!have_b || !have_sk || !have_hq) {
    *error = "'" + text + "' must give b, s_k and h_q";
    return false;
  }
  if (!validate(c, error)) {
    *error = "'" + text + "': " + *error;
    return false;
  }
  *spec = c;
  return true;
}

std::vector<CaseSpec> default_cases() {
  auto mk = [](int b, int s_q, int s_k, int h_q, bool causal = false, bool fp16 = false) {
    CaseSpec c;
    c.b = b; c.s_q = s_q; c.s_k = s_k; c.h_q = h_q; c.causal = causal; c.fp16 = fp16;
    return c;
  };
  return {
      mk(128, 1, 4096, 128),
      mk(128, 1, 16384, 128),
      mk(128, 2, 4096, 128),
      mk(128, 2, 8192, 128),
      mk(128, 2, 4096, 128, /*causal=*/true),
      mk(128, 1, 4096, 16),
      mk(128, 1, 16384, 16),
      mk(128, 1, 4096, 64),
      mk(1, 1, 4096, 128),
      mk(1, 1, 32768, 128),
      mk(8, 1, 1024, 16),
      mk(128, 1, 4096, 128, false, /*fp16=*/true),
      mk(128, 1, 4096, 16, false, /*fp16=*/true),
  };
}

CaseData make_case_data(const CaseSpec& spec, uint32_t seed) {
  CaseData d;
  d.seqlens.resize(spec.b);
  if (spec.fixed) {
    std::fill(d.seqlens.begin(), d.seqlens.end(), spec.s_k);
  } else {
    // FlashMLA: random.seed(0); max(random.normalvariate(s_k, s_k / 2), s_q)
    // per request, stored as int32 (truncated toward zero).
    PyRandom py(seed);
    for (int r = 0; r < spec.b; ++r) {
      const double x = py.normalvariate((double)spec.s_k, spec.s_k / 2.0);
      d.seqlens[r] = x < spec.s_q ? spec.s_q : (int32_t)x;
    }
  }
  std::mt19937 gen(seed);  // for the block table (torch.randperm in FlashMLA)
  int max_len = 0;
  for (int32_t len : d.seqlens) {
    max_len = std::max(max_len, (int)len);
    d.total_tokens += len;
  }
  d.mean_sk = (double)d.total_tokens / spec.b;

  // max_seqlen_pad = max(cdiv(max_len, 256), 1) * 256
  const int pad = std::max((max_len + 4 * kPage - 1) / (4 * kPage), 1) * 4 * kPage;
  d.max_blocks_per_seq = pad / kPage;
  if ((int64_t)spec.b * d.max_blocks_per_seq > INT32_MAX)
    throw std::runtime_error(spec.name() + ": b * max_blocks_per_seq overflows int32");
  d.num_blocks = spec.b * d.max_blocks_per_seq;

  // block_table = randperm(num_blocks).view(b, -1): Fisher-Yates on mt19937.
  d.block_table.resize((size_t)d.num_blocks);
  for (int i = 0; i < d.num_blocks; ++i) d.block_table[i] = i;
  for (int i = d.num_blocks - 1; i > 0; --i) {
    const int j = (int)(((uint64_t)gen() * (uint64_t)(i + 1)) >> 32);
    std::swap(d.block_table[i], d.block_table[j]);
  }

  d.valid_tokens.assign((size_t)d.num_blocks, 0);
  for (int r = 0; r < spec.b; ++r) {
    for (int blk = 0; blk < d.max_blocks_per_seq; ++blk) {
      const int held = std::clamp(d.seqlens[r] - blk * kPage, 0, kPage);
      d.valid_tokens[d.block_table[(size_t)r * d.max_blocks_per_seq + blk]] = held;
    }
  }
  return d;
}

double case_flops(const CaseSpec& s, double mean_sk) {
  return (double)s.b * s.h_q * s.s_q * (2.0 * kD * mean_sk + 2.0 * mean_sk * kDv);
}

double case_bytes(const CaseSpec& s, double mean_sk) {
  return (double)s.b * ((double)s.s_q * s.h_q * kD * 2 + mean_sk * s.h_kv * kD * 2 +
                        (double)s.s_q * s.h_q * kDv * 2);
}

}  // namespace bench
