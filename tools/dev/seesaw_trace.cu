// Developer tool (not built by CMake): the seesaw kernel's timeline of CTA
// (0, 0), clock64 at each phase of each pair of blocks (bench/NOTES.md).
// Build against a library configured with -DCMAKE_CUDA_FLAGS=-DOPENMLA_SEESAW_TRACE:
//   cmake -S . -B /tmp/build-trace -G Ninja -DOPENMLA_BUILD_TESTS=OFF -DOPENMLA_BUILD_TOOLS=OFF \
//         -DCMAKE_CUDA_FLAGS=-DOPENMLA_SEESAW_TRACE && ninja -C /tmp/build-trace
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I include -I src \
//        tools/dev/seesaw_trace.cu /tmp/build-trace/libopenmla.a -o seesaw_trace
// Run: seesaw_trace [h_q=128] [batch=128] [s_k=4096] [s_q=1]; TRACE_FROM=i averages pairs i..i+19,
// TRACE_ALL=1 prints the first pairs from kernel entry, TRACE_SHARED=1 puts the whole cache in L2,
// TRACE_WARM=n traces the last of n back-to-back launches (TRACE_CTAS=1 also prints the combine's
// CTAs of the last launch and of the one before, against the last decode).
#include <algorithm>
#include <vector>

#include "decode_setup.h"

extern "C" void openmla_debug_seesaw_trace(long long* host);
extern "C" void openmla_debug_seesaw_cta(long long* host);
extern "C" void openmla_debug_combine_cta(long long* host);

// One line of percentiles (nothing for an empty set), the name indented and
// padded to `width`.
static void print_pct(std::vector<double> v, const char* name, int indent, int width) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  printf("%*s%-*s min %7.2f  p10 %7.2f  p50 %7.2f  p90 %7.2f  max %7.2f\n", indent, "", width, name, v[0],
         v[n / 10], v[n / 2], v[n * 9 / 10], v[n - 1]);
}

// The combine's CTAs (kernels/combine: kTraceCombineCtas, 6 slots: entry,
// plan entry in, wait returned, end, merged anything, decode launch) of this
// launch and the one before, against this launch's decode (t0: its first
// CTA past the wait). Needs TRACE_WARM >= 2 for the launch before.
static void print_combine(long long t0, long long decode_end) {
  constexpr int kCtas = 8192;
  static long long c[2][kCtas][6];
  openmla_debug_combine_cta(&c[0][0][0]);
  long long launch[2] = {-1, -1};
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < kCtas; ++i)
      if (c[b][i][0] != 0) launch[b] = std::max(launch[b], c[b][i][5]);
  const int cur = launch[0] > launch[1] ? 0 : 1;
  if (launch[cur] < 0) {
    printf("combine: nothing recorded (no combine launched, or a build without -DOPENMLA_SEESAW_TRACE)\n");
    return;
  }
  auto pct = [](const std::vector<double>& v, const char* name) { print_pct(v, name, 2, 26); };
  for (int b : {1 - cur, cur}) {
    if (launch[b] < 0 || (b != cur && launch[b] != launch[cur] - 1)) continue;
    std::vector<double> entry, in, waited, end, end_work;
    for (int i = 0; i < kCtas; ++i) {
      if (c[b][i][0] == 0 || c[b][i][5] != launch[b]) continue;
      entry.push_back((c[b][i][0] - t0) * 1e-3);
      in.push_back((c[b][i][1] - t0) * 1e-3);
      waited.push_back((c[b][i][2] - t0) * 1e-3);
      end.push_back((c[b][i][3] - t0) * 1e-3);
      if (c[b][i][4]) end_work.push_back((c[b][i][3] - t0) * 1e-3);
    }
    printf("combine of %s launch: %zu CTAs, %zu merged something; us from this decode's first CTA past its wait\n",
           b == cur ? "this" : "the previous", entry.size(), end_work.size());
    pct(entry, "entry");
    pct(in, "plan entry in");
    pct(waited, "wait returned");
    pct(end, "end (stores issued)");
    pct(end_work, "end, CTAs that merged");
  }
  printf("  this decode's last loop end %.2f us\n", decode_end * 1e-3);
}

// TRACE_CTAS=1: every CTA's entry, first landed group and loop end (globaltimer,
// ns from the earliest entry), against its blocks and segments, and how long
// its last segment's epilogue took, by what it wrote; the SM clock over
// each CTA's run (its clock64 cycles over its globaltimer ns).
static int print_ctas() {
  constexpr int kCtas = 1024;  // the kernel's kTraceCtas (8 slots a CTA)
  static long long c[kCtas][8];
  openmla_debug_seesaw_cta(&c[0][0]);
  long long t0 = -1;
  std::vector<int> work;
  for (int i = 0; i < kCtas; ++i) {
    if (c[i][0] == 0) continue;
    if (t0 < 0 || c[i][0] < t0) t0 = c[i][0];
    if (c[i][3] > 0) work.push_back(i);
  }
  if (work.empty()) {
    printf("no CTA with work recorded (a build without -DOPENMLA_SEESAW_TRACE?)\n");
    return 1;
  }
  std::vector<double> entry, first, end, blocks, mhz;
  for (int i : work) {
    if (c[i][2] > c[i][0]) mhz.push_back(1e3 * c[i][7] / (double)(c[i][2] - c[i][0]));
    entry.push_back((c[i][0] - t0) * 1e-3);
    first.push_back((c[i][1] - t0) * 1e-3);
    end.push_back((c[i][2] - t0) * 1e-3);
    blocks.push_back((double)c[i][3]);
  }
  auto pct = [](const std::vector<double>& v, const char* name) { print_pct(v, name, 0, 22); };
  printf("%zu CTAs with work; us from the first entry\n", work.size());
  pct(entry, "entry");
  pct(first, "first group landed");
  pct(end, "loop end");
  pct(blocks, "blocks a part");
  if (!mhz.empty()) pct(mhz, "SM MHz entry->end");
  // How the loop end follows the work: us per block by least squares.
  double mb = 0, me = 0;
  for (size_t k = 0; k < work.size(); ++k) mb += blocks[k], me += end[k];
  mb /= work.size();
  me /= work.size();
  double sxy = 0, sxx = 0;
  for (size_t k = 0; k < work.size(); ++k) sxy += (blocks[k] - mb) * (end[k] - me), sxx += (blocks[k] - mb) * (blocks[k] - mb);
  const double slope = sxx > 0 ? sxy / sxx : 0;
  printf("loop end ~ %.2f + %.3f us x blocks (mean %.1f blocks, %.2f us)\n", me - slope * mb, slope, mb, me);
  // The last segment's epilogue (slots 5, 6): end - its start, by what it wrote.
  const char* modes[] = {"partial", "direct", "pair, first", "pair, second", "pair merged here"};
  for (int m = 0; m < 5; ++m) {
    std::vector<double> tail;
    for (int i : work)
      if (c[i][6] == m && c[i][5] > 0) tail.push_back((c[i][2] - c[i][5]) * 1e-3);
    if (!tail.empty()) {
      char name[64];
      snprintf(name, sizeof name, "last epilogue %s (%zu)", modes[m], tail.size());
      pct(tail, name);
    }
  }
  long long decode_end = 0;
  for (int i : work) decode_end = std::max(decode_end, c[i][2] - t0);
  print_combine(t0, decode_end);
  printf("cta: entry first end | blocks segs (sorted by loop end, slowest 12)\n");
  std::vector<int> order(work.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = (int)k;
  std::sort(order.begin(), order.end(), [&](int x, int y) { return end[x] > end[y]; });
  for (size_t k = 0; k < order.size() && k < 12; ++k) {
    const int i = work[order[k]];
    printf("%4d: %7.2f %7.2f %7.2f | %3lld %lld | last epilogue %.2f us, mode %lld\n", i, entry[order[k]],
           first[order[k]], end[order[k]], c[i][3], c[i][4], (c[i][2] - c[i][5]) * 1e-3, c[i][6]);
  }
  return 0;
}

int main(int argc, char** argv) {
  int b = argc > 2 ? atoi(argv[2]) : 128, h_q = argc > 1 ? atoi(argv[1]) : 128, sk = argc > 3 ? atoi(argv[3]) : 4096;
  const int s_q = argc > 4 ? atoi(argv[4]) : 1;
  DecodeSetup d(b, s_q, h_q, sk, getenv("TRACE_SHARED") ? TableKind::kShared : TableKind::kShuffled, 0,
                getenv("TRACE_VARLEN") != nullptr);
  // TRACE_WARM=n: n launches back to back (the last one is traced), to see
  // the loop under the sustained load of a graph-timed run (default 3).
  const int warm = getenv("TRACE_WARM") ? std::max(1, atoi(getenv("TRACE_WARM"))) : 3;
  for (int i = 0; i < warm; ++i) d.decode(0);
  cudaDeviceSynchronize();
  if (getenv("TRACE_CTAS")) return print_ctas();
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
