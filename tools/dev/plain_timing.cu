// Developer tool (not built by CMake): plain back-to-back launches of the
// eight shapes in bench/NOTES.md's log (plan made once, excluded); the
// harness behind that log's numbers. PERF_ONLY=0145 runs some cases,
// PERF_N the launches timed, PERF_SHARED=1 keeps the cache in L2.
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/plain_timing.cu build/libopenmla.a -o plain_timing
#include <cstring>

#include "decode_setup.h"

void perf(int b, int s_q, int h_q, int sk) {
  DecodeSetup d(b, s_q, h_q, sk, getenv("PERF_SHARED") ? TableKind::kShared : TableKind::kShuffled, 0);
  for (int i = 0; i < 3; ++i) d.decode(0);
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  const int n = getenv("PERF_N") ? atoi(getenv("PERF_N")) : 20; cudaEventRecord(e0);
  for (int i = 0; i < n; ++i) d.decode(0);
  cudaEventRecord(e1); CK(cudaEventSynchronize(e1)); float ms; cudaEventElapsedTime(&ms, e0, e1);
  double us = ms * 1000 / n;
  double flops = (double)b * h_q * s_q * (2.0 * 576 * sk + 2.0 * sk * 512);
  double bytes = (double)b * (s_q * h_q * 576 * 2 + sk * 576 * 2 + s_q * h_q * 512 * 2);
  printf("b=%d s_q=%d h_q=%d sk=%d: %.1f us  %.0f TFLOP/s  %.0f GB/s\n", b, s_q, h_q, sk, us, flops / us / 1e6, bytes / us / 1e3);
}
int main() {
  const char* only = getenv("PERF_ONLY");  // e.g. "567": run those cases only
  int cases[8][4] = {{128, 1, 128, 4096}, {128, 2, 128, 4096}, {128, 1, 16, 4096}, {128, 1, 64, 4096},
                     {1, 1, 128, 4096},   {1, 1, 128, 32768},  {8, 1, 16, 1024},   {128, 1, 16, 16384}};
  for (int i = 0; i < 8; ++i)
    if (!only || strchr(only, '0' + i)) perf(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
}
