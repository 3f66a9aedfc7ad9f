// Developer tool (not built by CMake): the seesaw kernel's timeline of CTA
// (0, 0), clock64 at each phase of each pair of blocks (bench/NOTES.md).
// Build against a library configured with -DCMAKE_CUDA_FLAGS=-DOPENMLA_SEESAW_TRACE:
//   cmake -S . -B /tmp/build-trace -G Ninja -DOPENMLA_BUILD_TESTS=OFF -DOPENMLA_BUILD_TOOLS=OFF \
//         -DCMAKE_CUDA_FLAGS=-DOPENMLA_SEESAW_TRACE && ninja -C /tmp/build-trace
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/seesaw_trace.cu /tmp/build-trace/libopenmla.a -o seesaw_trace
// Run: seesaw_trace [h_q=128] [batch=128] [s_k=4096]; TRACE_FROM=i averages pairs i..i+19,
// TRACE_ALL=1 prints the first pairs from kernel entry, TRACE_SHARED=1 puts the whole cache in L2.
#include "decode_setup.h"

extern "C" void openmla_debug_seesaw_trace(long long* host);

int main(int argc, char** argv) {
  int b = argc > 2 ? atoi(argv[2]) : 128, s_q = 1, h_q = argc > 1 ? atoi(argv[1]) : 128, sk = argc > 3 ? atoi(argv[3]) : 4096;
  DecodeSetup d(b, s_q, h_q, sk, getenv("TRACE_SHARED") ? TableKind::kShared : TableKind::kShuffled, 0);
  for (int i = 0; i < 3; ++i) d.decode(0);
  cudaDeviceSynchronize();
  static long long t[2][64][16];
  openmla_debug_seesaw_trace(&t[0][0][0]);
  if (getenv("TRACE_ALL")) {
    long long z = t[0][0][15];
    printf("entry WG0 %lld WG1 %lld (rel 0); events per pair (rel. entry), 11 = Q loaded, 12 = segment stored,\n"
           "13 = next blocks looked up, 14 = own Q pieces landed\n", 0LL, t[1][0][15] - z);
    printf("prologue (slot 63): part read, a's copies issued (thread 0, plain grid), b looked up (thread 0), "
           "barriers set up; table entry a in, first length in (thread 0, clocks that wait on the value)\n"
           " WG0: %lld %lld %lld %lld | %lld %lld  WG1: %lld - - %lld\n",
           t[0][63][0] - z, t[0][63][1] ? t[0][63][1] - z : -1, t[0][63][2] - z, t[0][63][3] - z,
           t[0][63][4] - z, t[0][63][5] - z, t[1][63][0] - z, t[1][63][3] - z);
    for (int i = 0; i < 8; ++i) {
      printf("%d WG0:", i);
      for (int e = 0; e <= 15; ++e) printf(" %lld", t[0][i][e] ? t[0][i][e] - z : -1);
      printf("\n  WG1:");
      for (int e = 0; e <= 15; ++e) printf(" %lld", t[1][i][e] ? t[1][i][e] - z : -1);
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
