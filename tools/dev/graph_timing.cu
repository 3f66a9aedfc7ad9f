// Developer tool (not built by CMake): graph-timed steps (16 decode calls in
// one CUDA graph, median of 30 replays) on uniform lengths, no cache rotation;
// quicker than openmla-bench for A/B comparisons of launch-level changes.
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/graph_timing.cu build/libopenmla.a -o graph_timing
#include "decode_setup.h"

void run(int b, int h_q, int sk) {
  cudaStream_t st;
  CK(cudaStreamCreate(&st));
  DecodeSetup d(b, 1, h_q, sk, TableKind::kSequential, st);
  cudaGraph_t g; cudaGraphExec_t ge;
  cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
  for (int i = 0; i < 16; ++i) d.decode(st);
  cudaStreamEndCapture(st, &g); cudaGraphInstantiate(&ge, g, 0);
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  std::vector<float> t;
  for (int i = 0; i < 30; ++i) { cudaEventRecord(e0, st); cudaGraphLaunch(ge, st); cudaEventRecord(e1, st); cudaEventSynchronize(e1); float ms; cudaEventElapsedTime(&ms, e0, e1); t.push_back(ms * 1000 / 16); }
  std::sort(t.begin(), t.end());
  printf("graph b=%d h_q=%d sk=%d: %.1f us/step (%s)\n", b, h_q, sk, t[15], cudaGetErrorString(cudaGetLastError()));
}
int main() { run(1, 128, 4096); run(1, 128, 32768); run(8, 16, 1024); run(128, 128, 4096); run(128, 16, 4096); }
