// Developer tool (not built by CMake): the seesaw kernel's timeline of CTA
// (0, 0), clock64 at each phase of each pair of blocks (bench/NOTES.md).
// Build against a library configured with -DCMAKE_CUDA_FLAGS=-DOPENMLA_SEESAW_TRACE:
//   cmake -S . -B /tmp/build-trace -G Ninja -DOPENMLA_BUILD_TESTS=OFF -DOPENMLA_BUILD_TOOLS=OFF \
//         -DCMAKE_CUDA_FLAGS=-DOPENMLA_SEESAW_TRACE && ninja -C /tmp/build-trace
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/seesaw_trace.cu /tmp/build-trace/libopenmla.a -o seesaw_trace
// Run: seesaw_trace [h_q=128] [batch=128] [s_k=4096]; TRACE_FROM=i averages pairs i..i+19,
// TRACE_ALL=1 prints the first pairs from kernel entry, TRACE_SHARED=1 puts the whole cache in L2.
#include <cstdio>
#include <vector>
#include <random>
#include <algorithm>
#include <cstdlib>
#include "openmla/openmla.h"
#include <cuda_runtime.h>
extern "C" void openmla_debug_seesaw_trace(long long* host);
__global__ void fill(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15;
    float f = ((h & 0xffff) / 65536.f - 0.5f) * 0.3f; uint32_t u = __float_as_uint(f); p[i] = u >> 16; }
}
int main(int argc, char** argv) {
  int b = argc > 2 ? atoi(argv[2]) : 128, s_q = 1, h_q = argc > 1 ? atoi(argv[1]) : 128, sk = argc > 3 ? atoi(argv[3]) : 4096, h_kv = 1, maxb = sk / 64, nblocks = b * maxb;
  std::vector<int> table(b * maxb), lens(b, sk);
  for (int i = 0; i < b * maxb; ++i) table[i] = i;
  std::mt19937 rng(1); std::shuffle(table.begin(), table.end(), rng);
  if (getenv("TRACE_SHARED")) for (int i = 0; i < b * maxb; ++i) table[i] = i % 64;
  size_t qn = (size_t)b * s_q * h_q * 576, kn = (size_t)nblocks * 64 * 576, on = (size_t)b * s_q * h_q * 512;
  uint16_t *dq, *dk, *dout; int *dt, *dl; float* dlse; void* ws;
  cudaMalloc(&dq, qn * 2); cudaMalloc(&dk, kn * 2); cudaMalloc(&dout, on * 2); cudaMalloc(&dlse, (size_t)b*h_q*s_q*4);
  cudaMalloc(&dt, table.size() * 4); cudaMalloc(&dl, b * 4);
  fill<<<1024, 256>>>(dq, qn, 1); fill<<<1024, 256>>>(dk, kn, 2);
  cudaMemcpy(dt, table.data(), table.size() * 4, cudaMemcpyHostToDevice); cudaMemcpy(dl, lens.data(), b * 4, cudaMemcpyHostToDevice);
  openmla_decode_shape sh{b, s_q, h_q, h_kv, maxb, 0};
  size_t wsb; openmla_plan_workspace_size(&sh, &wsb); cudaMalloc(&ws, wsb);
  openmla_plan(&sh, dl, ws, wsb, 0);
  openmla_dense_decode_args a{};
  a.q = {dq, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 576}, {(int64_t)s_q * h_q * 576, (int64_t)h_q * 576, 576, 1}};
  a.k_cache = {dk, OPENMLA_DTYPE_BF16, 4, {nblocks, 64, h_kv, 576}, {64LL * 576, 576, 576, 1}};
  a.block_table = {dt, OPENMLA_DTYPE_INT32, 2, {b, maxb}, {maxb, 1}};
  a.cache_seqlens = {dl, OPENMLA_DTYPE_INT32, 1, {b}, {1}};
  a.out = {dout, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 512}, {(int64_t)s_q * h_q * 512, (int64_t)h_q * 512, 512, 1}};
  a.lse = {dlse, OPENMLA_DTYPE_FP32, 3, {b, h_q, s_q}, {(int64_t)h_q * s_q, s_q, 1}};
  for (int i = 0; i < 3; ++i) openmla_dense_decode(&a, ws, wsb, 0);
  cudaDeviceSynchronize();
  static long long t[2][64][16];
  cudaMemset(ws, 0, 0);
  openmla_debug_seesaw_trace(&t[0][0][0]);
  if (getenv("TRACE_ALL")) {
    long long z = t[0][0][15];
    printf("entry WG0 %lld WG1 %lld (rel 0); events per pair (rel. entry), 11 = Q loaded, 12 = segment stored\n", 0LL, t[1][0][15] - z);
    for (int i = 0; i < 8; ++i) {
      printf("%d WG0:", i);
      for (int e = 0; e <= 12; ++e) printf(" %lld", t[0][i][e] ? t[0][i][e] - z : -1);
      printf("\n  WG1:");
      for (int e = 0; e <= 12; ++e) printf(" %lld", t[1][i][e] ? t[1][i][e] - z : -1);
      printf("\n");
    }
    return 0;
  }
  long long t0 = t[0][20][0];
  printf("pair | WG0: start GA0 GA1 GA2 Sdone M0arr PVissued P1sync P0arr PV0done PV1done | WG1: start GB0 GB1 Sdone M0sync P1arr PVissued P0sync w1 w0\n");
  for (int i = 20; i < 30; ++i) {
    printf("%2d |", i);
    for (int e = 0; e <= 10; ++e) printf(" %6lld", t[0][i][e] - t0);
    printf(" |");
    for (int e = 0; e <= 9; ++e) printf(" %6lld", t[1][i][e] - t0);
    printf("\n");
  }
  // averages over pairs 10..49: period, WG0 wait for A, WG1 wait for B, phases
  double per = 0, wa = 0, wb = 0, sm0 = 0, sm1 = 0, p0 = 0;
  const int i0 = getenv("TRACE_FROM") ? atoi(getenv("TRACE_FROM")) : 10;
  for (int i = i0; i < i0 + 20; ++i) {
    per += t[0][i + 1][0] - t[0][i][0];
    wa += t[0][i][3] - t[0][i][0];
    wb += t[1][i][2] - t[1][i][0];
    sm0 += t[0][i][6] - t[0][i][4];
    sm1 += t[1][i][5] - t[1][i][4];
    p0 += t[0][i][8] - t[0][i][7];
  }
  printf("avg over 20 pairs: period %.0f | WG0 start->A ready %.0f | WG1 start->B ready %.0f | WG0 Sdone->PV issued %.0f | WG1 M0->P1 %.0f | WG0 P1->P0 %.0f\n",
         per / 20, wa / 20, wb / 20, sm0 / 20, sm1 / 20, p0 / 20);
  return 0;
}
