// Developer tool (not built by CMake): plain back-to-back launches of the
// eight shapes in bench/NOTES.md's log (plan made once, excluded); the
// harness behind that log's numbers. PERF_ONLY=0145 runs some cases,
// PERF_N the launches timed, PERF_SHARED=1 keeps the cache in L2.
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/plain_timing.cu build/libopenmla.a -o plain_timing
#include <cstdio>
#include <vector>
#include <random>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include "openmla/openmla.h"
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)
#define ST(x) do { openmla_status s = (x); if (s.code) { printf("status %d %s\n", s.code, s.message); exit(1);} } while (0)
__global__ void fill(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15;
    float f = ((h & 0xffff) / 65536.f - 0.5f) * 0.3f; uint32_t u = __float_as_uint(f); p[i] = u >> 16; }
}
void perf(int b, int s_q, int h_q, int sk) {
  int h_kv = 1; int maxb = (sk + 63) / 64; int nblocks = b * maxb;
  std::vector<int> table(b * maxb), lens(b, sk);
  for (int i = 0; i < b * maxb; ++i) table[i] = i;
  std::mt19937 rng(1); std::shuffle(table.begin(), table.end(), rng);
  if (getenv("PERF_SHARED")) for (int i = 0; i < b * maxb; ++i) table[i] = i % 64;
  size_t qn = (size_t)b * s_q * h_q * 576, kn = (size_t)nblocks * 64 * 576, on = (size_t)b * s_q * h_q * 512;
  uint16_t *dq, *dk, *dout; int *dt, *dl; float* dlse; void* ws;
  CK(cudaMalloc(&dq, qn * 2)); CK(cudaMalloc(&dk, kn * 2)); CK(cudaMalloc(&dout, on * 2)); CK(cudaMalloc(&dlse, (size_t)b*h_q*s_q*4));
  CK(cudaMalloc(&dt, table.size() * 4)); CK(cudaMalloc(&dl, b * 4));
  fill<<<1024, 256>>>(dq, qn, 1); fill<<<1024, 256>>>(dk, kn, 2);
  CK(cudaMemcpy(dt, table.data(), table.size() * 4, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dl, lens.data(), b * 4, cudaMemcpyHostToDevice));
  openmla_decode_shape sh{b, s_q, h_q, h_kv, maxb, 0};
  size_t wsb; ST(openmla_plan_workspace_size(&sh, &wsb)); CK(cudaMalloc(&ws, wsb));
  ST(openmla_plan(&sh, dl, ws, wsb, 0));
  openmla_dense_decode_args a{};
  a.q = {dq, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 576}, {(int64_t)s_q * h_q * 576, (int64_t)h_q * 576, 576, 1}};
  a.k_cache = {dk, OPENMLA_DTYPE_BF16, 4, {nblocks, 64, h_kv, 576}, {64LL * 576, 576, 576, 1}};
  a.block_table = {dt, OPENMLA_DTYPE_INT32, 2, {b, maxb}, {maxb, 1}};
  a.cache_seqlens = {dl, OPENMLA_DTYPE_INT32, 1, {b}, {1}};
  a.out = {dout, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 512}, {(int64_t)s_q * h_q * 512, (int64_t)h_q * 512, 512, 1}};
  a.lse = {dlse, OPENMLA_DTYPE_FP32, 3, {b, h_q, s_q}, {(int64_t)h_q * s_q, s_q, 1}};
  for (int i = 0; i < 3; ++i) ST(openmla_dense_decode(&a, ws, wsb, 0));
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  const int n = getenv("PERF_N") ? atoi(getenv("PERF_N")) : 20; cudaEventRecord(e0);
  for (int i = 0; i < n; ++i) ST(openmla_dense_decode(&a, ws, wsb, 0));
  cudaEventRecord(e1); CK(cudaEventSynchronize(e1)); float ms; cudaEventElapsedTime(&ms, e0, e1);
  double us = ms * 1000 / n;
  double flops = (double)b * h_q * s_q * (2.0 * 576 * sk + 2.0 * sk * 512);
  double bytes = (double)b * (s_q * h_q * 576 * 2 + sk * 576 * 2 + s_q * h_q * 512 * 2);
  printf("b=%d s_q=%d h_q=%d sk=%d: %.1f us  %.0f TFLOP/s  %.0f GB/s\n", b, s_q, h_q, sk, us, flops / us / 1e6, bytes / us / 1e3);
  cudaFree(dq); cudaFree(dk); cudaFree(dout); cudaFree(dlse); cudaFree(dt); cudaFree(dl); cudaFree(ws);
}
int main() {
  const char* only = getenv("PERF_ONLY");  // e.g. "567": run those cases only
  int cases[8][4] = {{128, 1, 128, 4096}, {128, 2, 128, 4096}, {128, 1, 16, 4096}, {128, 1, 64, 4096},
                     {1, 1, 128, 4096},   {1, 1, 128, 32768},  {8, 1, 16, 1024},   {128, 1, 16, 16384}};
  for (int i = 0; i < 8; ++i)
    if (!only || strchr(only, '0' + i)) perf(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
}
