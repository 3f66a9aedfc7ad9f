// openmla-bench: the main program (DESIGN.md section 5).
//
// On a GPU: measures the HBM and bf16 tensor-core ceilings, then for every
// case times one decoding step (openmla_dense_decode: split-KV + combine, the
// plan made beforehand) exactly as ../shared/ANCHORS.md timed FlashMLA —
// 16 steps captured in one CUDA graph, each step on its own copy of the
// cache, q and out so L2 never holds the working set; median replay / 16 —
// checks the result of a plain run against the float64 CPU reference, prints
// a table and optionally writes JSON. Without a GPU it says so and runs the
// CPU reference on a small case.
#include <openmla/openmla.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cases.h"
#include "ceilings.h"
#include "check.h"
#include "common.h"
#include "datagen.h"
#include "gpu_clocks.h"
#include "reference/reference.h"

#ifndef OPENMLA_CONFIGURE_COMMIT
#define OPENMLA_CONFIGURE_COMMIT "unknown"
#endif
#ifndef OPENMLA_SOURCE_DIR
#define OPENMLA_SOURCE_DIR "."
#endif

namespace bench {
namespace {

constexpr int kStepsPerGraph = 16;  // ANCHORS.md: 16 steps per graph
constexpr int kMaxCopies = 256;     // at most 16 graphs per case
// Seeds of the generated values: copy c uses kCacheSeed + 4c and kQSeed + 4c.
constexpr uint64_t kCacheSeed = 1, kQSeed = 2;
constexpr float kValueStd = 0.1f, kValueClamp = 1.0f;  // N(0, 0.1^2) clamped to +-1

// ---------------------------------------------------------------------------
// Options

struct Options {
  std::vector<CaseSpec> cli_cases;
  bool only_cli = false;
  std::string json_path;
  bool quick = false;
  bool no_check = false;
  CheckBudget budget;
  int threads = 0;  // reference threads, 0: all cores
  int warmup = -1, repeats = -1;  // graph replays; -1: default (5/20, quick 2/6)
};

void usage(FILE* f) {
  std::fprintf(f,
      "usage: openmla-bench [options]\n"
      "Measures the HBM and bf16 tensor-core ceilings, then times and checks dense MLA\n"
      "decoding (paged, h_kv=1 unless given, d=576, dv=512, page 64) on the default\n"
      "workload (issue 3's target list) and on --case shapes.\n"
      "\n"
      "  --case SPEC        add a case (repeatable): b=128,s_q=1,s_k=4096,h_q=16\n"
      "                     [,h_kv=1][,causal][,fp16][,fixed]  or a case name such as\n"
      "                     b128_sq1_sk4096_hq16_causal. s_k is the mean of the varlen\n"
      "                     lengths (Normal(s_k, s_k/2)), or every length with 'fixed'.\n"
      "  --only-cli         run only the --case shapes, not the default workload\n"
      "  --json FILE        also write the results as JSON\n"
      "  --quick            fewer repeats (ceilings and graph replays)\n"
      "  --warmup N         untimed graph replays per case (default 5, quick 2)\n"
      "  --repeats N        timed graph replays per case (default 20, quick 6)\n"
      "  --no-check         skip the comparison with the CPU reference\n"
      "  --full-check       check every request of every case (slow for large cases)\n"
      "  --check-budget X   per-case reference work, in query rows x keys (default 1e8)\n"
      "  --threads N        CPU threads for the reference (default: all)\n"
      "  --help             this text\n"
      "Environment: OPENMLA_COMMIT overrides the commit id written to the JSON.\n"
      "Exit status: 0 all cases ran and passed, 1 a case failed or could not run, 2 bad usage.\n");
}

bool parse_int_option(const char* s, int min_value, int* v) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || x < min_value || x > 1000000) return false;
  *v = (int)x;
  return true;
}

bool parse_positive(const char* s, double* v) {
  char* end = nullptr;
  const double x = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(x > 0)) return false;
  *v = x;
  return true;
}

// Returns 0 to go on, or an exit status.
int parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "openmla-bench: %s needs %s\n", a.c_str(), what);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return -1;
    } else if (a == "--case") {
      const char* v = value("a case spec");
      if (!v) return 2;
      CaseSpec c;
      std::string err;
      if (!parse_case(v, &c, &err)) {
        std::fprintf(stderr, "openmla-bench: --case %s\n", err.c_str());
        return 2;
      }
      o->cli_cases.push_back(c);
    } else if (a == "--only-cli") {
      o->only_cli = true;
    } else if (a == "--json") {
      const char* v = value("a file name");
      if (!v) return 2;
      o->json_path = v;
    } else if (a == "--quick") {
      o->quick = true;
    } else if (a == "--no-check") {
      o->no_check = true;
    } else if (a == "--full-check") {
      o->budget.full = true;
    } else if (a == "--check-budget") {
      const char* v = value("a number");
      if (!v || !parse_positive(v, &o->budget.row_keys)) {
        std::fprintf(stderr, "openmla-bench: --check-budget needs a positive number\n");
        return 2;
      }
    } else if (a == "--threads" || a == "--warmup" || a == "--repeats") {
      const char* v = value("a number");
      const int min_value = a == "--warmup" ? 0 : 1;
      int& target = a == "--threads" ? o->threads : a == "--warmup" ? o->warmup : o->repeats;
      if (!v || !parse_int_option(v, min_value, &target)) {
        std::fprintf(stderr, "openmla-bench: %s needs an integer >= %d\n", a.c_str(), min_value);
        return 2;
      }
    } else {
      std::fprintf(stderr, "openmla-bench: unknown option '%s'\n\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (o->only_cli && o->cli_cases.empty()) {
    std::fprintf(stderr, "openmla-bench: --only-cli needs at least one --case\n");
    return 2;
  }
  if (o->warmup < 0) o->warmup = o->quick ? 2 : 5;
  if (o->repeats < 0) o->repeats = o->quick ? 6 : 20;
  return 0;
}

// ---------------------------------------------------------------------------
// Small utilities

const auto g_start = std::chrono::steady_clock::now();

// Progress line on stderr, prefixed with the seconds since start.
void progress(const char* fmt, ...) {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
  std::fprintf(stderr, "[%7.1f s] ", t);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

std::string run_command(const std::string& cmd, bool* ok) {
  *ok = false;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[256];
  std::string out;
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  *ok = rc == 0 && !out.empty();
  return out;
}

// OPENMLA_COMMIT, else `git rev-parse --short HEAD` in the source tree now,
// else the hash baked in at configure time, else "unknown".
std::string commit_id() {
  if (const char* e = std::getenv("OPENMLA_COMMIT"); e && *e) return e;
  bool ok = false;
  const std::string h = run_command(
      std::string("git -C '") + OPENMLA_SOURCE_DIR + "' rev-parse --short HEAD 2>/dev/null", &ok);
  if (ok && h.find_first_not_of("0123456789abcdef") == std::string::npos) return h;
  const std::string baked = OPENMLA_CONFIGURE_COMMIT;
  return baked.empty() ? "unknown" : baked;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string status_text(const openmla_status& s) {
  return std::string(s.message[0] ? s.message : "(no message)") + " [status " +
         std::to_string((int)s.code) + "]";
}

#define BENCH_OPENMLA(call)                                                          \
  do {                                                                               \
    const openmla_status bench_st_ = (call);                                         \
    if (bench_st_.code != OPENMLA_OK)                                                \
      throw BenchError(std::string(#call) + " failed: " + status_text(bench_st_));   \
  } while (0)

// A contiguous (row-major) tensor view.
openmla_tensor contiguous(void* data, openmla_dtype dt, std::initializer_list<int64_t> shape) {
  openmla_tensor t;
  std::memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dt;
  t.ndim = (int)shape.size();
  int k = 0;
  for (int64_t s : shape) t.shape[k++] = s;
  int64_t stride = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    t.stride[d] = stride;
    stride *= t.shape[d];
  }
  return t;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string clock_text(const ClockStats& c) {
  char buf[288];
  const std::string power = c.power_w_trailing > 0 ? fmt(", board power %.0f W (NVML's ~1 s average)", c.power_w_trailing) : "";
  const std::string window =
      c.energy_j >= 0 ? fmt(", %.0f W over the window", c.power_w_window()) : "";
  std::snprintf(buf, sizeof buf, "SM clock %.0f MHz (min %.0f, %d samples)%s%s%s%s", c.sm_mhz_median, c.sm_mhz_min,
                c.samples, window.c_str(), power.c_str(), c.reasons ? "; clock events: " : "",
                clock_reason_names(c.reasons).c_str());
  return buf;
}

std::string mhz_cell(const ClockStats& c) { return c.samples > 0 ? fmt("%.0f", c.sm_mhz_median) : "-"; }

// ---------------------------------------------------------------------------
// One case

struct CaseResult {
  CaseSpec spec;
  bool ran = false;      // timed without error
  bool checked = false;  // compared with the reference
  bool pass = false;
  double mean_sk = 0, us = 0, tflops = 0, gbps = 0, pct_hbm = 0, pct_tensor = 0;
  double max_abs_err = 0;
  int copies = 0;
  double rotated_mb = 0;  // distinct bytes touched by one graph replay
  CheckResult check;
  ClockStats clocks;  // during the timed replays
  double mj_per_step = -1;  // board energy a step over the timed replays (-1: not read)
  std::string error;
};

struct Ceilings {
  double hbm_gbps = 0, bf16_tflops = 0;
  double fp16_tflops = 0;  // reported only: whether fp16's gap to bf16 is the chip's (power) or the kernel's
  ClockStats hbm_clocks, bf16_clocks, fp16_clocks;
};

// Owns instantiated graphs.
struct GraphExecs {
  std::vector<cudaGraphExec_t> execs;
  GraphExecs() = default;
  GraphExecs(const GraphExecs&) = delete;
  GraphExecs& operator=(const GraphExecs&) = delete;
  ~GraphExecs() {
    for (auto e : execs) cudaGraphExecDestroy(e);
  }
};

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

void run_case(const CaseSpec& spec, const Options& opt, const Ceilings& ceilings,
              const cudaDeviceProp& prop, cudaStream_t stream, ClockSampler* clocks, CaseResult* res) {
  const std::string name = spec.name();
  const CaseData data = make_case_data(spec, 0);
  res->mean_sk = data.mean_sk;

  const openmla_dtype dt = spec.fp16 ? OPENMLA_DTYPE_FP16 : OPENMLA_DTYPE_BF16;
  const int b = spec.b, s_q = spec.s_q, h_q = spec.h_q, h_kv = spec.h_kv;
  const size_t token_elems = (size_t)h_kv * kD;
  const size_t q_elems = (size_t)b * s_q * h_q * kD;
  const size_t out_elems = (size_t)b * s_q * h_q * kDv;
  const size_t lse_elems = (size_t)b * h_q * s_q;
  const size_t cache_elems = (size_t)data.num_blocks * kPage * token_elems;
  const size_t q_bytes = q_elems * 2, out_bytes = out_elems * 2, lse_bytes = lse_elems * 4;
  const size_t cache_bytes = cache_elems * 2;
  const size_t table_bytes = (size_t)b * data.max_blocks_per_seq * 4;
  // Bytes one step touches (cache rows actually read, q, out, lse).
  const double touched = (double)data.total_tokens * token_elems * 2 + q_bytes + out_bytes + lse_bytes;
  const float scale = 1.0f / std::sqrt((float)kD);

  openmla_decode_shape shape;
  std::memset(&shape, 0, sizeof shape);
  shape.batch = b;
  shape.s_q = s_q;
  shape.h_q = h_q;
  shape.h_kv = h_kv;
  shape.max_blocks_per_seq = data.max_blocks_per_seq;
  shape.num_sms = 0;
  size_t ws_bytes = 0;
  BENCH_OPENMLA(openmla_plan_workspace_size(&shape, &ws_bytes));

  // How many copies to rotate over: enough that one graph replay touches
  // >= 4x L2; 16 steps per graph, several graphs replayed in turn when more
  // than 16 copies are needed; as many as fit in memory.
  const double l2 = prop.l2CacheSize > 0 ? (double)prop.l2CacheSize : 50e6;
  long long want = std::max<long long>(2, (long long)std::ceil(4.0 * l2 / touched));
  if (want > kStepsPerGraph) want = (want + kStepsPerGraph - 1) / kStepsPerGraph * kStepsPerGraph;
  want = std::min<long long>(want, kMaxCopies);
  size_t free_b = 0, total_b = 0;
  BENCH_CUDA(cudaMemGetInfo(&free_b, &total_b));
  const size_t per_copy = align256(cache_bytes) + align256(q_bytes) + align256(out_bytes) + align256(lse_bytes);
  const size_t fixed_bytes = align256(ws_bytes) + 2 * align256(table_bytes) + ((size_t)1 << 30);
  const long long fit = free_b > fixed_bytes ? (long long)((free_b - fixed_bytes) / per_copy) : 0;
  int copies = (int)std::min(want, fit);
  if (copies > kStepsPerGraph) copies = copies / kStepsPerGraph * kStepsPerGraph;
  if (copies < 1) {
    throw BenchError("not enough device memory: one copy of the inputs needs " +
                     fmt("%.2f", per_copy / 1073741824.0) + " GiB plus " +
                     fmt("%.2f", fixed_bytes / 1073741824.0) + " GiB, " +
                     fmt("%.2f", free_b / 1073741824.0) + " GiB free");
  }
  const int graphs = copies >= kStepsPerGraph ? copies / kStepsPerGraph : 1;
  res->copies = copies;
  res->rotated_mb = touched * std::min(copies, kStepsPerGraph) / 1e6;
  long long used_blocks = 0;
  for (int v : data.valid_tokens) used_blocks += v > 0;
  progress("%s: s̄_k %.1f (min %d, max %d), %d cache blocks of which %lld used; %d cop%s of "
           "%.1f MB each (%.1f MB touched per step), %d graph%s of %d steps",
           name.c_str(), data.mean_sk, *std::min_element(data.seqlens.begin(), data.seqlens.end()),
           *std::max_element(data.seqlens.begin(), data.seqlens.end()), data.num_blocks,
           used_blocks,
           copies, copies == 1 ? "y" : "ies", per_copy / 1e6, touched / 1e6, graphs,
           graphs == 1 ? "" : "s", kStepsPerGraph);
  if ((double)copies * touched < 4.0 * l2)
    progress("  warning: the %d copies touch only %.1f MB (< 4x the %.0f MB L2): the time may "
             "flatter the kernel", copies, copies * touched / 1e6, l2 / 1e6);

  CheckInput check_in;
  const bool do_check = !opt.no_check;
  {
    // ---- device inputs -------------------------------------------------------
    DeviceBuffer d_table(table_bytes, "the block table");
    DeviceBuffer d_seqlens((size_t)b * 4, "cache_seqlens");
    DeviceBuffer d_valid((size_t)data.num_blocks * 4, "the per-block token counts");
    DeviceBuffer ws(ws_bytes, "the plan workspace");
    std::vector<DeviceBuffer> cache(copies), q(copies), out(copies), lse(copies);
    for (int c = 0; c < copies; ++c) {
      const std::string tag = " (copy " + std::to_string(c) + ")";
      cache[c].allocate(cache_bytes, "k_cache" + tag);
      q[c].allocate(q_bytes, "q" + tag);
      out[c].allocate(out_bytes, "out" + tag);
      lse[c].allocate(lse_bytes, "lse" + tag);
    }
    // Every transfer goes through `stream` (non-blocking: it does not order
    // with the legacy default stream that plain cudaMemcpy uses).
    BENCH_CUDA(cudaMemcpyAsync(d_table.get(), data.block_table.data(), table_bytes,
                               cudaMemcpyHostToDevice, stream));
    BENCH_CUDA(cudaMemcpyAsync(d_seqlens.get(), data.seqlens.data(), (size_t)b * 4,
                               cudaMemcpyHostToDevice, stream));
    BENCH_CUDA(cudaMemcpyAsync(d_valid.get(), data.valid_tokens.data(), (size_t)data.num_blocks * 4,
                               cudaMemcpyHostToDevice, stream));
    for (int c = 0; c < copies; ++c) {
      BENCH_CUDA(fill_random_16bit(cache[c].get(), spec.fp16, cache_elems, kCacheSeed + 4ull * c,
                                   kValueStd, kValueClamp, d_valid.get<int32_t>(), token_elems, stream));
      BENCH_CUDA(fill_random_16bit(q[c].get(), spec.fp16, q_elems, kQSeed + 4ull * c, kValueStd,
                                   kValueClamp, nullptr, 0, stream));
      BENCH_CUDA(cudaMemsetAsync(out[c].get(), 0, out_bytes, stream));
      BENCH_CUDA(cudaMemsetAsync(lse[c].get(), 0, lse_bytes, stream));
    }

    auto args_for = [&](int c) {
      openmla_dense_decode_args a;
      std::memset(&a, 0, sizeof a);
      a.q = contiguous(q[c].get(), dt, {b, s_q, h_q, kD});
      a.k_cache = contiguous(cache[c].get(), dt, {data.num_blocks, kPage, h_kv, kD});
      a.block_table = contiguous(d_table.get(), OPENMLA_DTYPE_INT32, {b, data.max_blocks_per_seq});
      a.cache_seqlens = contiguous(d_seqlens.get(), OPENMLA_DTYPE_INT32, {b});
      a.out = contiguous(out[c].get(), dt, {b, s_q, h_q, kDv});
      a.lse = contiguous(lse[c].get(), OPENMLA_DTYPE_FP32, {b, h_q, s_q});
      a.softmax_scale = scale;
      a.causal = spec.causal ? 1 : 0;
      a.num_sms = 0;
      return a;
    };

    // ---- plan once (not timed), one plain run on copy 0 for the check -----
    BENCH_OPENMLA(openmla_plan(&shape, d_seqlens.get<int32_t>(), ws.get(), ws_bytes, stream));
    BENCH_CUDA(cudaMemsetAsync(out[0].get(), 0xff, out_bytes, stream));  // NaN: every element must be written
    BENCH_CUDA(cudaMemsetAsync(lse[0].get(), 0xff, lse_bytes, stream));
    {
      const openmla_dense_decode_args a = args_for(0);
      BENCH_OPENMLA(openmla_dense_decode(&a, ws.get(), ws_bytes, stream));
    }
    BENCH_CUDA(cudaStreamSynchronize(stream));
    BENCH_OPENMLA(openmla_read_plan_error(ws.get(), stream));

    if (do_check) {
      check_in.requests = choose_check_requests(spec, data, opt.budget);
      check_in.q.resize(q_elems);
      check_in.out.resize(out_elems);
      check_in.lse.resize(lse_elems);
      BENCH_CUDA(cudaMemcpyAsync(check_in.q.data(), q[0].get(), q_bytes, cudaMemcpyDeviceToHost, stream));
      BENCH_CUDA(cudaMemcpyAsync(check_in.out.data(), out[0].get(), out_bytes, cudaMemcpyDeviceToHost, stream));
      BENCH_CUDA(cudaMemcpyAsync(check_in.lse.data(), lse[0].get(), lse_bytes, cudaMemcpyDeviceToHost, stream));
      size_t nblk = 0;
      for (int r : check_in.requests) nblk += blocks_for(data.seqlens[r]);
      const size_t block_elems = (size_t)kPage * token_elems;
      check_in.blocks.resize(nblk * block_elems);
      size_t at = 0;
      for (int r : check_in.requests) {
        for (int i = 0; i < blocks_for(data.seqlens[r]); ++i) {
          const int phys = data.block_table[(size_t)r * data.max_blocks_per_seq + i];
          BENCH_CUDA(cudaMemcpyAsync(check_in.blocks.data() + at,
                                     cache[0].get<uint16_t>() + (size_t)phys * block_elems,
                                     block_elems * 2, cudaMemcpyDeviceToHost, stream));
          at += block_elems;
        }
      }
      BENCH_CUDA(cudaStreamSynchronize(stream));
    }

    // ---- capture: graph g's step i uses copy 16g+i (or i mod copies) -------
    GraphExecs execs;
    for (int g = 0; g < graphs; ++g) {
      BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      openmla_status st;
      std::memset(&st, 0, sizeof st);
      st.code = OPENMLA_OK;
      for (int i = 0; i < kStepsPerGraph && st.code == OPENMLA_OK; ++i) {
        const int c = graphs > 1 ? g * kStepsPerGraph + i : i % copies;
        const openmla_dense_decode_args a = args_for(c);
        st = openmla_dense_decode(&a, ws.get(), ws_bytes, stream);
      }
      cudaGraph_t graph = nullptr;
      const cudaError_t ce = cudaStreamEndCapture(stream, &graph);
      if (st.code != OPENMLA_OK) {
        if (graph) cudaGraphDestroy(graph);
        throw BenchError("openmla_dense_decode failed during graph capture: " + status_text(st));
      }
      BENCH_CUDA(ce);
      cudaGraphExec_t exec = nullptr;
      const cudaError_t ie = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      BENCH_CUDA(ie);
      execs.execs.push_back(exec);
      BENCH_CUDA(cudaGraphUpload(exec, stream));
    }

    // ---- replay: warm-up, then timed replays, each between two events ------
    const int warmup = std::max(opt.warmup, graphs);
    for (int k = 0; k < warmup; ++k) BENCH_CUDA(cudaGraphLaunch(execs.execs[k % graphs], stream));
    BENCH_CUDA(cudaStreamSynchronize(stream));
    EventPairs ev(opt.repeats);
    ClockSampler::Window window(clocks);
    for (int k = 0; k < opt.repeats; ++k) {
      BENCH_CUDA(cudaEventRecord(ev.start(k), stream));
      BENCH_CUDA(cudaGraphLaunch(execs.execs[k % graphs], stream));
      BENCH_CUDA(cudaEventRecord(ev.stop(k), stream));
    }
    BENCH_CUDA(cudaStreamSynchronize(stream));
    res->clocks = window.stop();
    const std::vector<double> ms = ev.elapsed_ms();
    const double med = median(ms);
    res->us = med * 1000.0 / kStepsPerGraph;
    res->tflops = case_flops(spec, data.mean_sk) / (res->us * 1e-6) / 1e12;
    res->gbps = case_bytes(spec, data.mean_sk) / (res->us * 1e-6) / 1e9;
    res->pct_hbm = ceilings.hbm_gbps > 0 ? 100.0 * res->gbps / ceilings.hbm_gbps : 0;
    res->pct_tensor = ceilings.bf16_tflops > 0 ? 100.0 * res->tflops / ceilings.bf16_tflops : 0;
    res->ran = true;
    progress("  %.2f us/step (median of %d replays of %d steps; fastest %.2f, slowest %.2f), "
             "%.1f TFLOP/s, %.0f GB/s, %.1f%% HBM, %.1f%% tensor",
             res->us, opt.repeats, kStepsPerGraph,
             *std::min_element(ms.begin(), ms.end()) * 1000.0 / kStepsPerGraph,
             *std::max_element(ms.begin(), ms.end()) * 1000.0 / kStepsPerGraph, res->tflops,
             res->gbps, res->pct_hbm, res->pct_tensor);
    if (res->clocks.energy_j >= 0) res->mj_per_step = 1000.0 * res->clocks.energy_j / (opt.repeats * kStepsPerGraph);
    if (res->clocks.samples > 0)
      progress("  %s%s", clock_text(res->clocks).c_str(),
               res->mj_per_step >= 0 ? fmt("; %.1f mJ a step", res->mj_per_step).c_str() : "");
  }  // device memory of this case freed here

  if (do_check) {
    const int n = (int)check_in.requests.size();
    progress("  checking %d of %d request%s against the float64 CPU reference...", n, b, b == 1 ? "" : "s");
    res->check = check_against_reference(spec, data, check_in, scale, opt.threads);
    res->checked = true;
    res->pass = res->check.pass;
    res->max_abs_err = res->check.max_abs_err;
    progress("  %s in %.1f s: out max_abs_err %.3e (cos diff %.2e), lse max_abs_err %.3e%s%s",
             res->pass ? "pass" : "FAIL", res->check.seconds, res->check.out_max_abs_err,
             res->check.cos_diff, res->check.lse_max_abs_err, res->pass ? "" : ": ",
             res->check.detail.c_str());
  }
}

// ---------------------------------------------------------------------------
// Output

std::string check_cell(const CaseResult& r) {
  if (!r.error.empty()) return "ERROR";
  if (!r.checked) return "not checked";
  std::string s = r.pass ? "pass" : "FAIL";
  if (r.check.checked_requests < r.check.total_requests)
    s += " (" + std::to_string(r.check.checked_requests) + "/" + std::to_string(r.check.total_requests) + " req)";
  return s;
}

void print_table(const std::string& device, const std::string& commit, const std::string& date,
                 const Ceilings& ceilings, size_t copy_bytes, const std::vector<CaseResult>& results) {
  std::printf("\nopenmla-bench  %s  commit %s  %s\n", device.c_str(), commit.c_str(), date.c_str());
  std::printf("ceilings: HBM %.0f GB/s (%.1f GiB device-to-device copy, read + write), "
              "bf16 tensor %.1f TFLOP/s (cuBLAS 8192^3 GEMM; fp16 %.1f)\n\n",
              ceilings.hbm_gbps, copy_bytes / 1073741824.0, ceilings.bf16_tflops, ceilings.fp16_tflops);
  if (ceilings.bf16_clocks.samples > 0)
    std::printf("SM clock during the ceilings: HBM copy %s MHz, bf16 GEMM %s MHz, fp16 GEMM %s MHz\n\n",
                mhz_cell(ceilings.hbm_clocks).c_str(), mhz_cell(ceilings.bf16_clocks).c_str(),
                mhz_cell(ceilings.fp16_clocks).c_str());
  std::printf("| case | s̄_k | µs | TFLOP/s | GB/s | %% HBM | %% tensor | max_abs_err | check | SM MHz |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const CaseResult& r : results) {
    if (!r.ran) {
      std::printf("| %s | %.1f | - | - | - | - | - | - | %s | - |\n", r.spec.name().c_str(), r.mean_sk,
                  check_cell(r).c_str());
      continue;
    }
    const std::string err = r.checked ? fmt("%.2e", r.max_abs_err) : "-";
    std::printf("| %s | %.1f | %.1f | %.1f | %.0f | %.1f | %.1f | %s | %s | %s |\n", r.spec.name().c_str(),
                r.mean_sk, r.us, r.tflops, r.gbps, r.pct_hbm, r.pct_tensor, err.c_str(),
                check_cell(r).c_str(), mhz_cell(r.clocks).c_str());
  }
  bool any_subset = false;
  for (const CaseResult& r : results)
    any_subset |= r.checked && r.check.checked_requests < r.check.total_requests;
  std::printf("\nTime per step = median CUDA-graph replay / %d (one step: split-KV + combine, plan made "
              "beforehand; each step on its own cache/q/out copy). TFLOP/s and GB/s by FlashMLA's "
              "formulas with the mean length s̄_k; varlen unless the name ends in _fixed.\n",
              kStepsPerGraph);
  if (any_subset)
    std::printf("Check: 'k/n req' = only k of n requests were compared with the float64 reference (the "
                "shortest, the longest, then more in a fixed order within a work budget; --full-check "
                "checks all).\n");
  for (const CaseResult& r : results) {
    if (!r.error.empty()) std::printf("ERROR %s: %s\n", r.spec.name().c_str(), r.error.c_str());
    else if (r.checked && !r.pass)
      std::printf("FAIL %s: %s\n", r.spec.name().c_str(), r.check.detail.c_str());
  }
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += (char)c; }
    else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
    else o += (char)c;
  }
  return o + "\"";
}

std::string json_number(double v, bool valid = true) {
  if (!valid || !std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// The SM clock while a figure was timed, the clock events seen, NVML's
// trailing-average board power, and the board energy over windows of
// kMinEnergyWindowS or more (null: not read).
std::string json_clocks(const ClockStats& c) {
  if (c.samples <= 0) return "null";
  return "{\"sm_mhz_median\": " + json_number(c.sm_mhz_median) + ", \"sm_mhz_min\": " + json_number(c.sm_mhz_min) +
         ", \"power_w_trailing\": " + json_number(c.power_w_trailing, c.power_w_trailing > 0) +
         ", \"energy_j\": " + json_number(c.energy_j, c.energy_j >= 0) +
         ", \"power_w_window\": " + json_number(c.power_w_window(), c.energy_j >= 0) +
         ", \"window_s\": " + json_number(c.window_s) +
         ", \"samples\": " + std::to_string(c.samples) + ", \"events\": " + json_string(clock_reason_names(c.reasons)) +
         "}";
}

bool write_json(const std::string& path, const std::string& device, const std::string& date,
                const std::string& commit, const Ceilings& ceilings, const std::vector<CaseResult>& results) {
  std::string j = "{\n";
  j += "  \"device\": " + json_string(device) + ",\n";
  j += "  \"date\": " + json_string(date) + ",\n";
  j += "  \"commit\": " + json_string(commit) + ",\n";
  const char* merge = std::getenv("OPENMLA_MERGE");  // where split requests were merged (src/host/api.cpp)
  j += "  \"merge\": " + json_string(merge && *merge ? merge : "by shape (pair <= 4 row tiles, else combine)") + ",\n";
  const char* multicast = std::getenv("OPENMLA_MULTICAST");  // row-tile pairs sharing copies (default on)
  j += "  \"multicast\": " + json_string(multicast && *multicast ? multicast : "1") + ",\n";
  j += "  \"ceilings\": {\"hbm_gbps\": " + json_number(ceilings.hbm_gbps) +
       ", \"bf16_tflops\": " + json_number(ceilings.bf16_tflops) +
       ", \"fp16_tflops\": " + json_number(ceilings.fp16_tflops) +
       ", \"hbm_clocks\": " + json_clocks(ceilings.hbm_clocks) +
       ", \"bf16_clocks\": " + json_clocks(ceilings.bf16_clocks) +
       ", \"fp16_clocks\": " + json_clocks(ceilings.fp16_clocks) + "},\n";
  j += "  \"cases\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const CaseResult& r = results[i];
    const CaseSpec& s = r.spec;
    j += i ? ",\n    {" : "\n    {";
    j += "\"name\": " + json_string(s.name());
    j += ", \"b\": " + std::to_string(s.b) + ", \"s_q\": " + std::to_string(s.s_q) +
         ", \"h_q\": " + std::to_string(s.h_q) + ", \"h_kv\": " + std::to_string(s.h_kv) +
         ", \"s_k\": " + std::to_string(s.s_k);
    j += std::string(", \"varlen\": ") + (s.fixed ? "false" : "true");
    j += std::string(", \"causal\": ") + (s.causal ? "true" : "false");
    j += ", \"dtype\": " + json_string(s.dtype());
    j += ", \"us\": " + json_number(r.us, r.ran) + ", \"tflops\": " + json_number(r.tflops, r.ran) +
         ", \"gbps\": " + json_number(r.gbps, r.ran) + ", \"pct_hbm\": " + json_number(r.pct_hbm, r.ran) +
         ", \"pct_tensor\": " + json_number(r.pct_tensor, r.ran);
    j += ", \"max_abs_err\": " + json_number(r.max_abs_err, r.checked);
    j += ", \"clocks\": " + json_clocks(r.clocks);
    j += ", \"mj_per_step\": " + json_number(r.mj_per_step, r.mj_per_step >= 0);
    // An unchecked case (--no-check) is neither passed nor failed: null.
    j += std::string(", \"pass\": ") +
         (!r.error.empty() ? "false" : !r.checked ? "null" : r.pass ? "true" : "false");
    j += "}";
  }
  j += results.empty() ? "]\n}\n" : "\n  ]\n}\n";
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "openmla-bench: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  const bool ok = std::fwrite(j.data(), 1, j.size(), f) == j.size();
  if (std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "openmla-bench: writing %s failed\n", path.c_str());
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// No GPU: the CPU reference on a small case, same data recipe as on the GPU.

int cpu_only_demo(const Options& opt) {
  namespace ref = openmla::reference;
  std::printf("openmla-bench: no CUDA GPU found; running the CPU reference on a small case instead\n");
  std::fflush(stdout);
  CaseSpec spec;
  spec.b = 2;
  spec.s_q = 1;
  spec.s_k = 256;
  spec.h_q = 16;
  const CaseData d = make_case_data(spec, 0);
  const size_t token_elems = (size_t)spec.h_kv * kD;
  const size_t q_elems = (size_t)spec.b * spec.s_q * spec.h_q * kD;
  const size_t cache_elems = (size_t)d.num_blocks * kPage * token_elems;
  // Copy 0's values, exactly as the GPU path generates them (bf16-rounded).
  std::vector<float> q(q_elems), cache(cache_elems);
  for (size_t i = 0; i < q_elems; ++i)
    q[i] = ref::bf16_to_float(ref::float_to_bf16(hashed_value(kQSeed, i, kValueStd, kValueClamp)));
  for (size_t i = 0; i < cache_elems; ++i) {
    const size_t token = i / token_elems;
    const bool used = (int)(token % kPage) < d.valid_tokens[token / kPage];
    cache[i] = used ? ref::bf16_to_float(ref::float_to_bf16(hashed_value(kCacheSeed, i, kValueStd, kValueClamp)))
                    : std::nanf("");
  }
  ref::DenseDecodeProblem p;
  p.batch = spec.b;
  p.s_q = spec.s_q;
  p.h_q = spec.h_q;
  p.h_kv = spec.h_kv;
  p.num_blocks = d.num_blocks;
  p.max_blocks_per_seq = d.max_blocks_per_seq;
  p.softmax_scale = 1.0f / std::sqrt((float)kD);
  p.causal = spec.causal;
  std::vector<double> out((size_t)spec.b * spec.s_q * spec.h_q * kDv), lse((size_t)spec.b * spec.h_q * spec.s_q);
  const auto t0 = std::chrono::steady_clock::now();
  ref::dense_decode(p, q.data(), cache.data(), d.block_table.data(), d.seqlens.data(), out.data(),
                    lse.data(), opt.threads);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double flops = case_flops(spec, d.mean_sk);

  std::printf("case %s (bf16 values, varlen, h_kv=1, d=576, dv=512, page 64, scale 1/sqrt(576))\n",
              spec.name().c_str());
  std::printf("cache_seqlens = [%d, %d], s̄_k = %.1f, block table a random permutation of %d blocks\n",
              d.seqlens[0], d.seqlens[1], d.mean_sk, d.num_blocks);
  for (int r = 0; r < spec.b; ++r) {
    for (int h = 0; h < 2; ++h) {
      const double* o = &out[(((size_t)r * spec.s_q) * spec.h_q + h) * kDv];
      std::printf("out[%d, 0, %d, 0:4] = [% .6f, % .6f, % .6f, % .6f]   lse[%d, %d, 0] = %.6f\n", r, h,
                  o[0], o[1], o[2], o[3], r, h, lse[((size_t)r * spec.h_q + h) * spec.s_q]);
    }
  }
  std::printf("float64 CPU reference: %.3f GFLOP (FlashMLA's formula) in %.3f s = %.2f GFLOP/s on %u threads\n",
              flops / 1e9, sec, flops / 1e9 / sec,
              opt.threads > 0 ? (unsigned)opt.threads : std::max(1u, std::thread::hardware_concurrency()));
  if (!opt.json_path.empty())
    std::fprintf(stderr, "openmla-bench: no GPU, so no JSON written to %s\n", opt.json_path.c_str());
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  Options opt;
  const int parsed = parse_args(argc, argv, &opt);
  if (parsed == -1) return 0;  // --help
  if (parsed != 0) return parsed;

  int ndev = 0;
  const cudaError_t de = cudaGetDeviceCount(&ndev);
  if (de != cudaSuccess || ndev == 0) {
    std::fprintf(stderr, "(cudaGetDeviceCount: %s)\n",
                 de != cudaSuccess ? cudaGetErrorString(de) : "0 devices");
    cudaGetLastError();
    return cpu_only_demo(opt);
  }

  std::vector<CaseSpec> cases;
  if (!opt.only_cli) cases = default_cases();
  cases.insert(cases.end(), opt.cli_cases.begin(), opt.cli_cases.end());

  const std::string commit = commit_id();
  const std::string date = utc_now();
  cudaDeviceProp prop;
  cudaStream_t stream = nullptr;
  Ceilings ceilings;
  size_t copy_bytes = 0;
  std::unique_ptr<ClockSampler> clocks;
  try {
    BENCH_CUDA(cudaSetDevice(0));
    BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
    int driver = 0, runtime = 0;
    BENCH_CUDA(cudaDriverGetVersion(&driver));
    BENCH_CUDA(cudaRuntimeGetVersion(&runtime));
    size_t free_b = 0, total_b = 0;
    BENCH_CUDA(cudaMemGetInfo(&free_b, &total_b));
    progress("%s (sm_%d%d, %d SMs, %.0f MB L2, %.1f GiB, %.1f GiB free), driver %d, runtime %d, "
             "openmla %s, commit %s", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
             prop.l2CacheSize / 1e6, total_b / 1073741824.0, free_b / 1073741824.0, driver, runtime,
             openmla_version(), commit.c_str());
    BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    char pci[32] = {0};
    if (cudaDeviceGetPCIBusId(pci, sizeof pci, 0) != cudaSuccess) pci[0] = 0;
    clocks = std::make_unique<ClockSampler>(pci);
    if (!clocks->available())
      progress("no SM clock readings (NVML missing, or it does not know GPU %s): the clock columns stay empty", pci);

    progress("measuring the HBM ceiling (device-to-device copy)...");
    const HbmCeiling hbm =
        measure_hbm((size_t)4 << 30, opt.quick ? 1 : 3, opt.quick ? 5 : 10, stream, clocks.get(), &ceilings.hbm_clocks);
    ceilings.hbm_gbps = hbm.gbps;
    copy_bytes = hbm.copy_bytes;
    progress("  %.0f GB/s (%.1f GiB copy)", hbm.gbps, hbm.copy_bytes / 1073741824.0);
    progress("measuring the bf16 tensor-core ceiling (cuBLAS 8192^3 GEMM)...");
    ceilings.bf16_tflops = measure_tensor_tflops(false, 8192, opt.quick ? 2 : 5, opt.quick ? 8 : 20, stream,
                                                 clocks.get(), &ceilings.bf16_clocks);
    progress("  %.1f TFLOP/s", ceilings.bf16_tflops);
    ceilings.fp16_tflops = measure_tensor_tflops(true, 8192, opt.quick ? 2 : 5, opt.quick ? 8 : 20, stream,
                                                 clocks.get(), &ceilings.fp16_clocks);
    progress("  fp16: %.1f TFLOP/s", ceilings.fp16_tflops);
    if (ceilings.bf16_clocks.samples > 0)
      progress("  during the bf16 GEMM: %s", clock_text(ceilings.bf16_clocks).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "openmla-bench: %s\n", e.what());
    return 1;
  }

  std::vector<CaseResult> results(cases.size());
  bool device_lost = false;
  for (size_t i = 0; i < cases.size(); ++i) {
    CaseResult& r = results[i];
    r.spec = cases[i];
    if (device_lost) {
      r.error = "not run: the CUDA context was lost in an earlier case";
      continue;
    }
    progress("[%zu/%zu] %s", i + 1, cases.size(), cases[i].name().c_str());
    try {
      run_case(cases[i], opt, ceilings, prop, stream, clocks.get(), &r);
    } catch (const std::exception& e) {
      r.error = e.what();
      progress("  ERROR: %s", e.what());
      // A sticky error (illegal address, ...) leaves the context unusable.
      const cudaError_t se = cudaDeviceSynchronize();
      cudaGetLastError();
      if (se != cudaSuccess) {
        progress("  the CUDA context is unusable (%s); the remaining cases are skipped",
                 cudaGetErrorString(se));
        device_lost = true;
      }
    }
  }

  print_table(prop.name, commit, date, ceilings, copy_bytes, results);
  bool ok = true;
  for (const CaseResult& r : results) ok &= r.error.empty() && (!r.checked || r.pass);
  if (!opt.json_path.empty()) {
    if (write_json(opt.json_path, prop.name, date, commit, ceilings, results))
      progress("wrote %s", opt.json_path.c_str());
    else
      ok = false;
  }
  if (stream) cudaStreamDestroy(stream);
  return ok ? 0 : 1;
}
