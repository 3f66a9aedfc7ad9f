// The device plan: same bytes as the host plan, same decode results through
// openmla_plan_host + openmla_upload_plan, and bad lengths reported by
// openmla_read_plan_error with NaN outputs (never a silent wrong answer).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu_fixture.h"

namespace openmla_test {
namespace {

struct PlanConfig {
  std::string name;
  int s_q, h_q, h_kv, num_sms;
  std::vector<int32_t> lens;
  int extra_cols = 1;
};

int blocks_for(int32_t len) { return len <= 0 ? 0 : (len + 63) / 64; }

openmla_decode_shape shape_of(const PlanConfig& p) {
  openmla_decode_shape s{};
  s.batch = (int)p.lens.size();
  s.s_q = p.s_q;
  s.h_q = p.h_q;
  s.h_kv = p.h_kv;
  int nb = 0;
  for (int32_t l : p.lens) nb = std::max(nb, blocks_for(l));
  s.max_blocks_per_seq = std::max(1, nb + p.extra_cols);
  s.num_sms = p.num_sms;
  return s;
}

std::vector<int32_t> random_lens(int b, int lo, int hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> v(b);
  for (auto& x : v) x = lo + (int32_t)(rng() % (uint64_t)(hi - lo + 1));
  return v;
}

std::vector<PlanConfig> plan_configs() {
  std::vector<PlanConfig> v;
  v.push_back({"b1_empty", 1, 128, 1, 0, {0}});
  v.push_back({"b1_32768", 1, 128, 1, 0, {32768}});
  v.push_back({"b1_1_exact_table", 2, 16, 1, 0, {64}, 0});
  v.push_back({"b3_mixed", 2, 16, 1, 0, {100, 0, 5000}});
  std::vector<int32_t> uneven(33, 30);
  uneven[0] = 16384;
  uneven[9] = 0;
  v.push_back({"b33_uneven", 1, 128, 1, 0, uneven});
  v.push_back({"b128_random", 1, 128, 1, 0, random_lens(128, 0, 8192, 1)});
  v.push_back({"b7_sq4_hq128", 4, 128, 1, 0, random_lens(7, 250, 350, 2)});
  v.push_back({"b9_hkv8_hq64", 1, 64, 8, 0, random_lens(9, 0, 3000, 3)});
  v.push_back({"b16_all_empty", 2, 64, 1, 0, std::vector<int32_t>(16, 0)});
  v.push_back({"b1000_random", 1, 16, 1, 0, random_lens(1000, 0, 2000, 4)});
  for (int sms : {1, 7, 132, 1000})
    v.push_back({"b20_sms" + std::to_string(sms), 2, 64, 1, sms, random_lens(20, 0, 1500, 5 + sms)});
  return v;
}

long long first_difference(const unsigned char* a, const unsigned char* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return (long long)i;
  return -1;
}

class Plan : public GpuTest {};

TEST_F(Plan, DevicePlanMatchesHostPlanBitwise) {
  Stream stream;
  for (const PlanConfig& cfg : plan_configs()) {
    SCOPED_TRACE(cfg.name);
    const openmla_decode_shape shape = shape_of(cfg);
    size_t ws_bytes = 0;
    OMLA_CHECK(openmla_plan_workspace_size(&shape, &ws_bytes));
    const size_t plan_bytes = openmla_plan_bytes(&shape);
    ASSERT_GT(plan_bytes, 0u);
    ASSERT_LE(plan_bytes, ws_bytes);

    // Device plan from device-resident lengths (workspace zeroed so that any
    // bytes neither planner writes compare equal).
    DeviceBuffer lens(cfg.lens.size() * 4);
    lens.upload(cfg.lens.data(), cfg.lens.size() * 4);
    DeviceBuffer ws(ws_bytes);
    ws.fill_byte(0);
    OMLA_CHECK(openmla_plan(&shape, lens.as<const int32_t>(), ws.get(), ws_bytes, stream.get()));
    OMLA_CUDA_CHECK_LAST();
    stream.sync();
    OMLA_CHECK(openmla_read_plan_error(ws.get(), stream.get()));
    std::vector<unsigned char> dev(plan_bytes);
    ws.download(dev.data(), plan_bytes);

    // Host plan.
    std::vector<unsigned char> host(plan_bytes, 0);
    OMLA_CHECK(openmla_plan_host(&shape, cfg.lens.data(), host.data(), plan_bytes));
    const long long diff = first_difference(dev.data(), host.data(), plan_bytes);
    EXPECT_EQ(diff, -1) << "device and host plans differ first at byte " << diff << " of "
                        << plan_bytes;

    // Upload: the workspace then holds exactly the host plan.
    DeviceBuffer ws2(ws_bytes);
    ws2.fill_byte(0xFF);
    OMLA_CHECK(openmla_upload_plan(host.data(), plan_bytes, ws2.get(), ws_bytes, stream.get()));
    OMLA_CUDA_CHECK_LAST();
    stream.sync();
    std::vector<unsigned char> up(plan_bytes);
    ws2.download(up.data(), plan_bytes);
    EXPECT_EQ(first_difference(up.data(), host.data(), plan_bytes), -1)
        << "openmla_upload_plan did not copy the plan verbatim";
    OMLA_CHECK(openmla_read_plan_error(ws2.get(), stream.get()));
    std::printf("[ plan     ] %-20s b=%-4zu plan_bytes=%zu workspace=%zu %s\n", cfg.name.c_str(),
                cfg.lens.size(), plan_bytes, ws_bytes, diff == -1 ? "identical" : "DIFFERENT");
  }
}

TEST_F(Plan, UploadedHostPlanDecodesBitwiseIdentically) {
  std::vector<DecodeCase> cases(3);
  cases[0].dtype = OPENMLA_DTYPE_BF16;
  cases[0].h_q = 128;
  cases[0].s_q = 2;
  cases[0].causal = true;
  cases[0].seqlens = {600, 0, 1, 731, 512};
  cases[1].dtype = OPENMLA_DTYPE_FP16;
  cases[1].h_q = 16;
  cases[1].s_q = 1;
  cases[1].seqlens = {5000, 30, 0, 70};
  cases[2].dtype = OPENMLA_DTYPE_BF16;
  cases[2].h_q = 64;
  cases[2].h_kv = 8;
  cases[2].s_q = 4;
  cases[2].seqlens = {300, 129, 2};
  cases[2].num_sms = 7;
  uint64_t id = 0;
  for (DecodeCase& c : cases) {
    c.seed = mix_seed(777, ++id);
    const HostProblem hp = make_problem(c);
    SCOPED_TRACE(hp.c.name);
    Stream stream;
    DeviceProblem dp = make_device_problem(hp);

    // A: device plan.
    const DeviceResult a = plan_and_decode(hp, dp, stream.get());
    const CheckResult ca = check_outputs(hp, a, run_reference(hp));
    EXPECT_TRUE(ca.pass) << ca.detail;

    // B: host plan, uploaded into a fresh poisoned workspace.
    const openmla_decode_shape shape = decode_shape(hp);
    size_t ws_bytes = 0;
    OMLA_CHECK(openmla_plan_workspace_size(&shape, &ws_bytes));
    const size_t plan_bytes = openmla_plan_bytes(&shape);
    std::vector<unsigned char> host(plan_bytes, 0);
    OMLA_CHECK(openmla_plan_host(&shape, hp.seqlens.data(), host.data(), plan_bytes));
    DeviceBuffer ws(ws_bytes);
    ws.fill_byte(0xFF);
    poison_outputs(hp, dp);
    OMLA_CHECK(openmla_upload_plan(host.data(), plan_bytes, ws.get(), ws_bytes, stream.get()));
    const openmla_dense_decode_args args = decode_args(hp, dp);
    OMLA_CHECK(openmla_dense_decode(&args, ws.get(), ws_bytes, stream.get()));
    OMLA_CUDA_CHECK_LAST();
    stream.sync();
    OMLA_CHECK(openmla_read_plan_error(ws.get(), stream.get()));
    const DeviceResult b = download_outputs(hp, dp);

    const bool same_out = std::memcmp(a.out_img.data(), b.out_img.data(), a.out_img.size() * 2) == 0;
    const bool same_lse = std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * 4) == 0;
    EXPECT_TRUE(same_out) << "out differs between device plan and uploaded host plan";
    EXPECT_TRUE(same_lse) << "lse differs between device plan and uploaded host plan";
    std::printf("[ upload   ] %s; host plan + upload: %s\n", ca.summary_line(hp.c.name).c_str(),
                same_out && same_lse ? "bitwise identical" : "DIFFERENT");
  }
}

// Bad lengths cannot be seen by the host without a sync: the plan records
// them, the decode writes NaN everywhere, openmla_read_plan_error names them.
TEST_F(Plan, BadSeqlensGiveErrorAndNaN) {
  DecodeCase c;
  c.dtype = OPENMLA_DTYPE_BF16;
  c.h_q = 16;
  c.s_q = 2;
  c.causal = true;
  c.seqlens = {100, 70, 192};
  c.extra_table_cols = 0;  // max_blocks_per_seq = 3: lengths up to 192 are valid
  c.seed = 4242;
  const HostProblem hp = make_problem(c);
  ASSERT_EQ(hp.max_blocks, 3);
  Stream stream;
  DeviceProblem dp = make_device_problem(hp);
  const openmla_decode_shape shape = decode_shape(hp);
  size_t ws_bytes = 0;
  OMLA_CHECK(openmla_plan_workspace_size(&shape, &ws_bytes));
  DeviceBuffer ws(ws_bytes);
  ws.fill_byte(0xFF);
  const openmla_dense_decode_args args = decode_args(hp, dp);

  const std::vector<std::vector<int32_t>> bad_sets = {
      {100, -1, 192},       {100, 70, 193},       {INT32_MIN, 70, 50},
      {100, 70, INT32_MAX}, {-5, 1000, 3},        {100, 64 * 3 + 64, 0}};
  for (const auto& bad : bad_sets) {
    SCOPED_TRACE("cache_seqlens=" + lens_string(bad));
    dp.seqlens.upload(bad.data(), bad.size() * 4);
    dp.out.fill_byte(0x3C);  // finite poison (0x3C3C), so NaN must be written
    dp.lse.fill_byte(0x3C);
    const openmla_status sp =
        openmla_plan(&shape, dp.seqlens.as<const int32_t>(), ws.get(), ws_bytes, stream.get());
    EXPECT_EQ(sp.code, OPENMLA_OK) << "openmla_plan: " << status_string(sp);
    const openmla_status sd = openmla_dense_decode(&args, ws.get(), ws_bytes, stream.get());
    EXPECT_EQ(sd.code, OPENMLA_OK) << "openmla_dense_decode: " << status_string(sd);
    OMLA_CUDA_CHECK_LAST();
    const openmla_status se = openmla_read_plan_error(ws.get(), stream.get());
    OMLA_CUDA_CHECK_LAST();
    EXPECT_EQ(se.code, OPENMLA_ERROR_BAD_SEQLENS) << status_string(se);
    EXPECT_NE(std::string(se.message).find("cache_seqlens"), std::string::npos)
        << "message does not name cache_seqlens: " << status_string(se);

    const DeviceResult dr = download_outputs(hp, dp);
    const std::vector<float> out = gather_out(hp, dr.out_img);
    long long out_not_nan = 0, lse_not_nan = 0;
    for (float x : out) out_not_nan += !std::isnan(x);
    for (size_t i = 0; i < hp.lse_elems(); ++i) lse_not_nan += !std::isnan(dr.lse[i]);
    EXPECT_EQ(out_not_nan, 0) << "of " << out.size() << " out elements are not NaN";
    EXPECT_EQ(lse_not_nan, 0) << "of " << hp.lse_elems() << " lse elements are not NaN";
    EXPECT_EQ(count_writes_outside_views(hp, dr, 0x3C3C, 0x3C3C3C3Cu), 0)
        << "elements written outside the out/lse views";
    std::printf("[ badlens  ] %-28s -> %s; out NaN %lld/%zu, lse NaN %lld/%zu\n",
                lens_string(bad).c_str(), status_string(se).c_str(),
                (long long)out.size() - out_not_nan, out.size(),
                (long long)hp.lse_elems() - lse_not_nan, hp.lse_elems());

    // The host planner rejects the same lengths up front.
    std::vector<unsigned char> host(openmla_plan_bytes(&shape), 0);
    const openmla_status sh = openmla_plan_host(&shape, bad.data(), host.data(), host.size());
    EXPECT_TRUE(sh.code == OPENMLA_ERROR_BAD_SEQLENS || sh.code == OPENMLA_ERROR_INVALID_ARGUMENT)
        << "openmla_plan_host: " << status_string(sh);
    EXPECT_NE(std::string(sh.message).find("cache_seqlens"), std::string::npos)
        << "openmla_plan_host message does not name cache_seqlens: " << status_string(sh);
  }

  // The same workspace, re-planned with valid lengths (192 fills the table row
  // exactly), reports no error and decodes correctly.
  dp.seqlens.upload(hp.seqlens.data(), hp.seqlens.size() * 4);
  const DeviceResult dr = plan_and_decode(hp, dp, stream.get(), &ws);
  const CheckResult r = check_outputs(hp, dr, run_reference(hp));
  std::printf("[ badlens  ] %s\n", r.summary_line("re-planned with valid lengths").c_str());
  EXPECT_TRUE(r.pass) << r.detail;
}

}  // namespace
}  // namespace openmla_test
