// CUDA graphs: a decoding step (the plan, then three "layers" of dense
// decoding sharing the workspace's plan) captured once and replayed with new
// q values, new cache contents, and new lengths / block table.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gpu_fixture.h"

namespace openmla_test {
namespace {

constexpr int kLayers = 3;

struct GraphGuard {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphGuard() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

// Layer l's problem: the same lengths and block table as layer 0, its own
// q and cache values.
std::vector<HostProblem> make_layers(const DecodeCase& base, uint64_t seed) {
  std::vector<HostProblem> layers;
  layers.push_back(make_problem(base));
  for (int l = 1; l < kLayers; ++l) {
    HostProblem hp = layers[0];
    refill_values(hp, mix_seed(seed, (uint64_t)l));
    hp.c.name = base.name + "_layer" + std::to_string(l);
    layers.push_back(std::move(hp));
  }
  layers[0].c.name = base.name + "_layer0";
  return layers;
}

// Checks every layer's outputs; returns the number that failed.
int check_layers(const std::vector<HostProblem>& hps, std::vector<DeviceProblem>& dps,
                 const char* step) {
  int failed = 0;
  for (int l = 0; l < kLayers; ++l) {
    const DeviceResult dr = download_outputs(hps[l], dps[l]);
    const CheckResult r = check_outputs(hps[l], dr, run_reference(hps[l]));
    std::printf("[ graph    ] %-8s %s lens=%s\n", step, r.summary_line(hps[l].c.name).c_str(),
                lens_string(hps[l].seqlens).c_str());
    if (!r.pass) {
      std::printf("[ detail   ] %s\n", r.detail.c_str());
      ++failed;
    }
    EXPECT_TRUE(r.pass) << step << " layer " << l << ":" << r.detail;
  }
  std::fflush(stdout);
  return failed;
}

// The launch settings that decide the graph's edges are the defaults: no
// OPENMLA_PDL, OPENMLA_MERGE or OPENMLA_DENSE_KERNEL in the environment
// (gpu-check's extra passes set some of them).
bool default_launches() {
  for (const char* v : {"OPENMLA_PDL", "OPENMLA_MERGE", "OPENMLA_DENSE_KERNEL"})
    if (std::getenv(v) != nullptr) return false;
  return true;
}

// Programmatic dependency edges in a captured graph.
int programmatic_edges(cudaGraph_t graph) {
  size_t n = 0;
  if (cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n) != cudaSuccess) return -1;
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  if (cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n) != cudaSuccess) return -1;
  int k = 0;
  for (size_t i = 0; i < n; ++i) k += data[i].type == cudaGraphDependencyTypeProgrammatic;
  return k;
}

class Graph : public GpuTestWithParam<openmla_dtype> {};

TEST_P(Graph, CapturedStepReplaysWithNewInputs) {
  DecodeCase base;
  base.dtype = GetParam();
  base.h_q = 64;
  base.h_kv = 1;
  base.s_q = 2;
  base.causal = true;
  base.seqlens = {300, 0, 1, 255, 128};  // 1 < s_q: its first row attends nothing
  base.q_layout = base.out_layout = QOLayout::kPadded;
  base.seed = mix_seed(31337, (uint64_t)base.dtype);
  base.name = std::string("graph_") + dtype_name(base.dtype);
  std::vector<HostProblem> hps = make_layers(base, base.seed);

  std::vector<DeviceProblem> dps;
  for (const HostProblem& hp : hps) dps.push_back(make_device_problem(hp));
  // All layers read layer 0's table and lengths, as an engine's do.
  std::vector<openmla_dense_decode_args> args;
  for (int l = 0; l < kLayers; ++l) {
    openmla_dense_decode_args a = decode_args(hps[l], dps[l]);
    a.block_table.data = dps[0].block_table.get();
    a.cache_seqlens.data = dps[0].seqlens.get();
    args.push_back(a);
  }
  const int32_t* lens_dev = dps[0].seqlens.as<const int32_t>();

  const openmla_decode_shape shape = decode_shape(hps[0]);
  size_t ws_bytes = 0;
  OMLA_CHECK(openmla_plan_workspace_size(&shape, &ws_bytes));
  DeviceBuffer ws(ws_bytes);
  ws.fill_byte(0xFF);
  Stream stream;

  // Plan once, eagerly.
  OMLA_CHECK(openmla_plan(&shape, lens_dev, ws.get(), ws_bytes, stream.get()));
  OMLA_CUDA_CHECK_LAST();
  stream.sync();
  OMLA_CHECK(openmla_read_plan_error(ws.get(), stream.get()));

  // Capture the step: plan + one decode per layer. Global mode: a call that
  // synchronises or allocates would be illegal and invalidate the capture.
  GraphGuard g;
  OMLA_CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  std::vector<openmla_status> st;
  std::vector<cudaStreamCaptureStatus> cap;
  st.push_back(openmla_plan(&shape, lens_dev, ws.get(), ws_bytes, stream.get()));
  cap.emplace_back();
  const cudaError_t e0 = cudaStreamIsCapturing(stream.get(), &cap.back());
  for (int l = 0; l < kLayers; ++l) {
    st.push_back(openmla_dense_decode(&args[l], ws.get(), ws_bytes, stream.get()));
    cap.emplace_back();
    (void)cudaStreamIsCapturing(stream.get(), &cap.back());
  }
  const cudaError_t end = cudaStreamEndCapture(stream.get(), &g.graph);
  const cudaError_t last = cudaGetLastError();
  // Only now (the capture is over) may the test fail.
  EXPECT_EQ(e0, cudaSuccess) << cudaGetErrorString(e0);
  for (size_t i = 0; i < st.size(); ++i) {
    const char* what = i == 0 ? "openmla_plan" : "openmla_dense_decode";
    EXPECT_EQ(st[i].code, OPENMLA_OK) << what << " during capture: " << status_string(st[i]);
    EXPECT_EQ(cap[i], cudaStreamCaptureStatusActive)
        << what << " (call " << i << ") invalidated or ended the capture";
  }
  ASSERT_EQ(end, cudaSuccess) << "cudaStreamEndCapture: " << cudaGetErrorString(end)
                              << " (an openmla call synchronised or allocated during capture?)";
  ASSERT_EQ(last, cudaSuccess) << cudaGetErrorString(last);
  ASSERT_NE(g.graph, nullptr);
  size_t num_nodes = 0;
  OMLA_CUDA_CHECK(cudaGraphGetNodes(g.graph, nullptr, &num_nodes));
  EXPECT_GE(num_nodes, (size_t)(1 + kLayers)) << "the graph captured too few kernels";
  OMLA_CUDA_CHECK(cudaGraphInstantiate(&g.exec, g.graph, 0));
  const int prog = programmatic_edges(g.graph);
  std::printf("[ graph    ] captured plan + %d layers: %zu graph nodes, %d programmatic edges\n", kLayers,
              num_nodes, prog);
  // By default each layer's decode depends programmatically on the kernel
  // before it (the plan kernel, or the previous layer's combine), and each
  // combine on its decode.
  if (default_launches()) {
    EXPECT_EQ(prog, 2 * kLayers) << "programmatic dependent launch is not in the graph";
  }

  auto replay = [&]() {
    for (int l = 0; l < kLayers; ++l) poison_outputs(hps[l], dps[l]);
    OMLA_CUDA_CHECK(cudaGraphLaunch(g.exec, stream.get()));
    OMLA_CUDA_CHECK_LAST();
    stream.sync();
    OMLA_CHECK(openmla_read_plan_error(ws.get(), stream.get()));
  };

  // Replay 1: the inputs the graph was captured with.
  replay();
  check_layers(hps, dps, "replay1");

  // Replay 2: new q values and new cache contents for every layer, written
  // outside the graph.
  for (int l = 0; l < kLayers; ++l) {
    refill_values(hps[l], mix_seed(base.seed + 2, (uint64_t)l));
    upload_inputs(hps[l], dps[l]);
  }
  replay();
  check_layers(hps, dps, "replay2");

  // Replay 3: the next decoding step. Each length grows by one (128 -> 129
  // crosses into a new block; 1 -> 2 makes every row attend), the block table
  // is rewritten, and the values are new; the captured plan must pick it up.
  {
    DecodeCase next = base;
    next.seqlens = {301, 0, 2, 256, 129};
    next.max_blocks_override = hps[0].max_blocks;
    next.num_blocks_override = hps[0].num_blocks;
    next.seed = mix_seed(base.seed, 3);
    next.name = base.name + "_step2";
    std::vector<HostProblem> hps3 = make_layers(next, next.seed);
    for (int l = 0; l < kLayers; ++l) upload_inputs(hps3[l], dps[l]);  // layer 0: shared table/lengths
    hps = std::move(hps3);
  }
  replay();
  check_layers(hps, dps, "replay3");

  // Replays 4-11 back to back, no sync between them: each step's first
  // decode may start under the previous step's last combine (they share the
  // workspace); the inputs stay replay 3's, so must the outputs.
  for (int l = 0; l < kLayers; ++l) poison_outputs(hps[l], dps[l]);
  for (int k = 0; k < 8; ++k) OMLA_CUDA_CHECK(cudaGraphLaunch(g.exec, stream.get()));
  OMLA_CUDA_CHECK_LAST();
  stream.sync();
  OMLA_CHECK(openmla_read_plan_error(ws.get(), stream.get()));
  check_layers(hps, dps, "replay4-11");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Graph, ::testing::Values(OPENMLA_DTYPE_BF16, OPENMLA_DTYPE_FP16),
                         [](const ::testing::TestParamInfo<openmla_dtype>& i) {
                           return std::string(dtype_name(i.param));
                         });

}  // namespace
}  // namespace openmla_test
