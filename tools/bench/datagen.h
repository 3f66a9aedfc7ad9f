// Random inputs, generated on the GPU (fast for multi-GB caches) from a
// counter-based hash, so value i of a buffer depends only on (seed, i) and the
// host can regenerate the same numbers when there is no GPU.
#ifndef OPENMLA_TOOLS_BENCH_DATAGEN_H_
#define OPENMLA_TOOLS_BENCH_DATAGEN_H_

#include <cuda_runtime_api.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define BENCH_HD __host__ __device__
#else
#define BENCH_HD
#endif

namespace bench {

// splitmix64's output function.
BENCH_HD inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// A standard normal deviate for position i of stream `seed` (Box-Muller on
// one 64-bit hash: 24 bits for each uniform).
BENCH_HD inline float hashed_normal(uint64_t seed, uint64_t i) {
  const uint64_t h = mix64(mix64(seed + 0x632be59bd9b4e019ull) + (i + 1) * 0x9e3779b97f4a7c15ull);
  const float u1 = (float)((h >> 40) + 1) * (1.0f / 16777216.0f);           // (0, 1]
  const float u2 = (float)((h >> 16) & 0xffffffull) * (1.0f / 16777216.0f);  // [0, 1)
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

// The value FlashMLA's recipe puts in q and the cache: N(0, stddev^2) clamped
// to [-clamp_abs, clamp_abs] (before rounding to the 16-bit type).
BENCH_HD inline float hashed_value(uint64_t seed, uint64_t i, float stddev, float clamp_abs) {
  float v = stddev * hashed_normal(seed, i);
  return fminf(fmaxf(v, -clamp_abs), clamp_abs);
}

// Fills n 16-bit values (bf16 if !fp16) with hashed_value(seed, i, ...)
// rounded to nearest even. With `valid_tokens` (device, [num_blocks]) the
// buffer is a paged cache [num_blocks, 64 tokens, token_elems]: a token t of
// block blk with t >= valid_tokens[blk] holds NaN instead, so a kernel that
// reads a slot it must not read poisons its output.
cudaError_t fill_random_16bit(void* dst, bool fp16, size_t n, uint64_t seed, float stddev,
                              float clamp_abs, const int32_t* valid_tokens, size_t token_elems,
                              cudaStream_t stream);

}  // namespace bench

#endif  // OPENMLA_TOOLS_BENCH_DATAGEN_H_
