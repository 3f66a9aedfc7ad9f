// Developer tool (not built by CMake): graph-timed steps (16 decode calls in
// one CUDA graph, median of 30 replays) on uniform lengths, no cache rotation;
// quicker than openmla-bench for A/B comparisons of launch-level changes.
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/graph_timing.cu build/libopenmla.a -o graph_timing
#include <cstdio>
#include <vector>
#include <algorithm>
#include <cstdlib>
#include "openmla/openmla.h"
#include <cuda_runtime.h>
__global__ void fill(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15;
    float f = ((h & 0xffff) / 65536.f - 0.5f) * 0.3f; uint32_t u = __float_as_uint(f); p[i] = u >> 16; }
}
void run(int b, int h_q, int sk) {
  int s_q = 1, h_kv = 1, maxb = sk / 64, nblocks = b * maxb;
  std::vector<int> table(b * maxb), lens(b, sk);
  for (int i = 0; i < b * maxb; ++i) table[i] = i;
  size_t qn = (size_t)b * h_q * 576, kn = (size_t)nblocks * 64 * 576, on = (size_t)b * h_q * 512;
  uint16_t *dq, *dk, *dout; int *dt, *dl; float* dlse; void* ws;
  cudaMalloc(&dq, qn * 2); cudaMalloc(&dk, kn * 2); cudaMalloc(&dout, on * 2); cudaMalloc(&dlse, (size_t)b*h_q*4);
  cudaMalloc(&dt, table.size() * 4); cudaMalloc(&dl, b * 4);
  fill<<<1024, 256>>>(dq, qn, 1); fill<<<1024, 256>>>(dk, kn, 2);
  cudaMemcpy(dt, table.data(), table.size() * 4, cudaMemcpyHostToDevice); cudaMemcpy(dl, lens.data(), b * 4, cudaMemcpyHostToDevice);
  openmla_decode_shape sh{b, s_q, h_q, h_kv, maxb, 0};
  size_t wsb; openmla_plan_workspace_size(&sh, &wsb); cudaMalloc(&ws, wsb);
  cudaStream_t st; cudaStreamCreate(&st);
  openmla_plan(&sh, dl, ws, wsb, st);
  openmla_dense_decode_args a{};
  a.q = {dq, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 576}, {(int64_t)s_q * h_q * 576, (int64_t)h_q * 576, 576, 1}};
  a.k_cache = {dk, OPENMLA_DTYPE_BF16, 4, {nblocks, 64, h_kv, 576}, {64LL * 576, 576, 576, 1}};
  a.block_table = {dt, OPENMLA_DTYPE_INT32, 2, {b, maxb}, {maxb, 1}};
  a.cache_seqlens = {dl, OPENMLA_DTYPE_INT32, 1, {b}, {1}};
  a.out = {dout, OPENMLA_DTYPE_BF16, 4, {b, s_q, h_q, 512}, {(int64_t)s_q * h_q * 512, (int64_t)h_q * 512, 512, 1}};
  a.lse = {dlse, OPENMLA_DTYPE_FP32, 3, {b, h_q, s_q}, {(int64_t)h_q * s_q, s_q, 1}};
  cudaGraph_t g; cudaGraphExec_t ge;
  cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
  for (int i = 0; i < 16; ++i) openmla_dense_decode(&a, ws, wsb, st);
  cudaStreamEndCapture(st, &g); cudaGraphInstantiate(&ge, g, 0);
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  std::vector<float> t;
  for (int i = 0; i < 30; ++i) { cudaEventRecord(e0, st); cudaGraphLaunch(ge, st); cudaEventRecord(e1, st); cudaEventSynchronize(e1); float ms; cudaEventElapsedTime(&ms, e0, e1); t.push_back(ms * 1000 / 16); }
  std::sort(t.begin(), t.end());
  printf("graph b=%d h_q=%d sk=%d: %.1f us/step (%s)\n", b, h_q, sk, t[15], cudaGetErrorString(cudaGetLastError()));
}
int main() { run(1, 128, 4096); run(1, 128, 32768); run(8, 16, 1024); run(128, 128, 4096); run(128, 16, 4096); }
