// Shared by the tools/dev harnesses: a bf16 paged decode problem on the GPU
// (uniform lengths, h_kv = 1, hash-filled q and cache in [-0.15, 0.15)),
// planned once, with the arguments openmla_dense_decode takes.
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <cuda_runtime.h>

#include "openmla/openmla.h"

#include "cuda_check.h"
#define ST(x) do { openmla_status s = (x); if (s.code) { printf("status %d %s\n", s.code, s.message); exit(1);} } while (0)

__global__ void fill(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15;
    float f = ((h & 0xffff) / 65536.f - 0.5f) * 0.3f; uint32_t u = __float_as_uint(f); p[i] = u >> 16; }
}

// Block table: kSequential (block i of request r = r * maxb + i), kShuffled
// (a fixed random permutation), kShared (every request reads blocks 0..63: L2-resident).
enum class TableKind { kSequential, kShuffled, kShared };

struct DecodeSetup {
  openmla_dense_decode_args a{};
  void* ws = nullptr;
  size_t wsb = 0;
  std::vector<void*> owned;

  // varlen: lengths max(Normal(sk, sk / 2), 1) as the bench draws them (its
  // own generator, not Python's: the same spread, not the same numbers).
  DecodeSetup(int b, int s_q, int h_q, int sk, TableKind kind, cudaStream_t stream, bool varlen = false) {
    std::vector<int> lens(b, sk);
    if (varlen) {
      std::mt19937 rng(0);
      std::normal_distribution<double> nd(sk, sk / 2.0);
      for (int& l : lens) l = std::max(1, (int)nd(rng));
    }
    const int h_kv = 1, maxb = (*std::max_element(lens.begin(), lens.end()) + 63) / 64, nblocks = b * maxb;
    std::vector<int> table(b * maxb);
    for (int i = 0; i < b * maxb; ++i) table[i] = kind == TableKind::kShared ? i % 64 : i;
    if (kind == TableKind::kShuffled) {
      std::mt19937 rng(1);
      std::shuffle(table.begin(), table.end(), rng);
    }
    const size_t qn = (size_t)b * s_q * h_q * 576, kn = (size_t)nblocks * 64 * 576, on = (size_t)b * s_q * h_q * 512;
    uint16_t* dq = alloc<uint16_t>(qn);
    uint16_t* dk = alloc<uint16_t>(kn);
    uint16_t* dout = alloc<uint16_t>(on);
    float* dlse = alloc<float>((size_t)b * h_q * s_q);
    int* dt = alloc<int>(table.size());
    int* dl = alloc<int>(b);
    fill<<<1024, 256, 0, stream>>>(dq, qn, 1);
    fill<<<1024, 256, 0, stream>>>(dk, kn, 2);
    CK(cudaMemcpy(dt, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dl, lens.data(), b * 4, cudaMemcpyHostToDevice));
    openmla_decode_shape sh{b, s_q, h_q, h_kv, maxb, 0};
    ST(openmla_plan_workspace_size(&sh, &wsb));
    ws = alloc<unsigned char>(wsb);
    ST(openmla_plan(&sh, dl, ws, wsb, stream));
    a.q = {dq, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 576}, {(int64_t)s_q * h_q * 576, (int64_t)h_q * 576, 576, 1}};
    a.k_cache = {dk, OPENMLA_DTYPE_BF16, 4, {nblocks, 64, h_kv, 576}, {64LL * 576, 576, 576, 1}};
    a.block_table = {dt, OPENMLA_DTYPE_INT32, 2, {b, maxb}, {maxb, 1}};
    a.cache_seqlens = {dl, OPENMLA_DTYPE_INT32, 1, {b}, {1}};
    a.out = {dout, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 512}, {(int64_t)s_q * h_q * 512, (int64_t)h_q * 512, 512, 1}};
    a.lse = {dlse, OPENMLA_DTYPE_FP32, 3, {b, h_q, s_q}, {(int64_t)h_q * s_q, s_q, 1}};
  }
  ~DecodeSetup() {
    for (void* p : owned) cudaFree(p);
  }
  void decode(cudaStream_t stream) { ST(openmla_dense_decode(&a, ws, wsb, stream)); }

 private:
  template <typename E>
  E* alloc(size_t n) {
    void* p = nullptr;
    CK(cudaMalloc(&p, n * sizeof(E)));
    owned.push_back(p);
    return static_cast<E*>(p);
  }
};
