// The public planning API on the host path: openmla_plan_workspace_size,
// openmla_plan_bytes and openmla_plan_host produce the split_plan.h schedule
// (checked against compute_split_plan and the planner invariants), reject bad
// shapes and bad lengths with a message naming the argument; openmla_plan
// (device) rejects bad arguments before launching anything.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "api_test_util.h"
#include "common/split_plan.h"
#include "openmla/openmla.h"
#include "plan_checks.h"

namespace {

using namespace openmla_test;

openmla_decode_shape make_shape(int b, int s_q, int h_q, int h_kv, int mb, int num_sms = 132) {
  openmla_decode_shape s{};
  s.batch = b;
  s.s_q = s_q;
  s.h_q = h_q;
  s.h_kv = h_kv;
  s.max_blocks_per_seq = mb;
  s.num_sms = num_sms;
  return s;
}

openmla::WorkspaceLayout layout_of(const openmla_decode_shape& s) {
  return openmla::workspace_layout(s.batch, s.s_q, s.h_q, s.h_kv, s.num_sms);
}

constexpr uint8_t kCanary = 0xCD;

// Runs openmla_plan_host into exactly openmla_plan_bytes bytes (plus a canary
// tail that must stay untouched).
std::vector<uint64_t> plan_host(const openmla_decode_shape& s, const std::vector<int32_t>& lens,
                                openmla_status* st) {
  const size_t n = openmla_plan_bytes(&s);
  std::vector<uint64_t> buf((n + 256) / 8 + 1);
  std::memset(buf.data(), kCanary, buf.size() * 8);
  *st = openmla_plan_host(&s, lens.data(), buf.data(), n);
  const uint8_t* b = reinterpret_cast<const uint8_t*>(buf.data());
  for (size_t i = n; i < buf.size() * 8; ++i)
    if (b[i] != kCanary) {
      ADD_FAILURE() << "openmla_plan_host wrote past plan_bytes at byte " << i;
      break;
    }
  return buf;
}

TEST(PlanApi, SizesFollowTheLayout) {
  for (const auto& s : {make_shape(1, 1, 16, 1, 512), make_shape(128, 1, 128, 1, 64),
                        make_shape(128, 2, 16, 1, 80), make_shape(7, 4, 9, 3, 3, 78),
                        make_shape(300, OPENMLA_MAX_S_Q, 128, 8, 1, 1),
                        make_shape(3, 1, 1, 1, 1, 1)}) {
    SCOPED_TRACE(::testing::Message() << "b " << s.batch << " s_q " << s.s_q << " h_q " << s.h_q
                                      << " h_kv " << s.h_kv << " sms " << s.num_sms);
    const auto w = layout_of(s);
    EXPECT_EQ(openmla_plan_bytes(&s), w.plan_bytes);
    size_t bytes = 0;
    ASSERT_TRUE(IsOk(openmla_plan_workspace_size(&s, &bytes)));
    EXPECT_GE(bytes, w.total_bytes);
    EXPECT_GE(bytes, openmla_plan_bytes(&s));
  }
}

// Bigger shapes never need less workspace.
TEST(PlanApi, WorkspaceGrowsWithShape) {
  size_t a = 0, b = 0, c = 0;
  auto s1 = make_shape(4, 1, 16, 1, 8), s2 = make_shape(8, 1, 16, 1, 8), s3 = make_shape(8, 2, 16, 1, 8);
  ASSERT_TRUE(IsOk(openmla_plan_workspace_size(&s1, &a)));
  ASSERT_TRUE(IsOk(openmla_plan_workspace_size(&s2, &b)));
  ASSERT_TRUE(IsOk(openmla_plan_workspace_size(&s3, &c)));
  EXPECT_LE(a, b);
  EXPECT_LT(b, c);
}

TEST(PlanApi, HostPlanMatchesSharedPlannerOnRandomBatches) {
  std::mt19937 rng(77);
  const openmla_decode_shape shapes[] = {
      make_shape(1, 1, 16, 1, 1), make_shape(1, 2, 128, 1, 1), make_shape(1, 4, 9, 3, 1, 78),
      make_shape(1, 1, 64, 8, 1), make_shape(1, 1, 1, 1, 1, 1), make_shape(1, 1, 16, 2, 1, 7)};
  for (int it = 0; it < 60; ++it) {
    openmla_decode_shape s = shapes[it % 6];
    s.batch = 1 + (int)(rng() % (it % 3 == 0 ? 200 : 20));
    s.max_blocks_per_seq = 1 + (int)(rng() % 32);
    std::vector<int32_t> lens(s.batch);
    for (auto& l : lens)
      l = rng() % 3 == 0 ? 0 : (int32_t)(rng() % (64 * s.max_blocks_per_seq + 1));
    SCOPED_TRACE(::testing::Message() << "iteration " << it << " batch " << s.batch);
    openmla_status st;
    const auto buf = plan_host(s, lens, &st);
    ASSERT_TRUE(IsOk(st));
    const auto w = layout_of(s);
    ASSERT_NO_FATAL_FAILURE(check_valid_plan(lens, w.num_parts, buf.data()));
    ASSERT_LE(view_plan(buf.data(), w.num_parts).hdr->total_segments, w.max_segments);
    // Same bytes as the planner the device runs.
    std::vector<uint64_t> ref((w.plan_bytes + 7) / 8 + 1, 0);
    openmla::compute_split_plan(lens.data(), s.batch, s.max_blocks_per_seq, w.num_parts,
                                ref.data(), openmla::min_blocks_per_part_for(s.s_q, s.h_q, s.h_kv),
                                openmla::segment_cost8_for(s.s_q, s.h_q, s.h_kv));
    openmla::stamp_plan_shape(ref.data(), s.s_q, s.h_q, s.h_kv);
    const openmla::PlanHeader* hdr = view_plan(buf.data(), w.num_parts).hdr;
    ASSERT_TRUE(openmla::plan_matches(hdr, s.batch, s.s_q, s.h_q, s.h_kv, w.num_parts));
    ASSERT_FALSE(openmla::plan_matches(hdr, s.batch + 1, s.s_q, s.h_q, s.h_kv, w.num_parts));
    ASSERT_EQ(0, std::memcmp(buf.data(), ref.data(), plan_extent(s.batch, w.num_parts)));
    // The merge counters and the padding up to plan_bytes start at zero
    // (the buffer was filled with a canary first).
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(buf.data());
    for (size_t i = w.counter_offset; i < w.plan_bytes; ++i)
      ASSERT_EQ(bytes[i], 0) << "byte " << i << " of the counter region / padding";
  }
}

TEST(PlanApi, OneLongRequestSpreadsEvenly) {
  // 1024 blocks over 132 parts: shares of ceil(1024 / 132) = 8 blocks (above
  // the per-part minimum) keep 128 parts busy; the other 4 stay idle.
  const auto s = make_shape(1, 1, 16, 1, 1024, 132);
  const std::vector<int32_t> lens{65536};
  openmla_status st;
  const auto buf = plan_host(s, lens, &st);
  ASSERT_TRUE(IsOk(st));
  const auto w = layout_of(s);
  ASSERT_EQ(w.num_parts, 132);
  ASSERT_NO_FATAL_FAILURE(check_valid_plan(lens, w.num_parts, buf.data()));
  const auto v = view_plan(buf.data(), w.num_parts);
  EXPECT_EQ(v.hdr->active_parts, 128);
  for (int p = 0; p < w.num_parts; ++p) {
    EXPECT_EQ(v.parts[p].r_begin, p < 128 ? 0 : -1) << "part " << p;
    EXPECT_EQ(v.parts[p].num_blocks, p < 128 ? 8 : 0) << "part " << p;
  }
  EXPECT_EQ(v.reqs[0].num_segs, 128);
}

TEST(PlanApi, ShortWorkUsesFewerParts) {
  // 59 blocks: 30 parts of about 2 blocks (kMinBlocksPerPart), not 66 of less than one.
  const auto s = make_shape(1, 1, 128, 1, 64, 132);
  const std::vector<int32_t> lens{3719};
  openmla_status st;
  const auto buf = plan_host(s, lens, &st);
  ASSERT_TRUE(IsOk(st));
  const auto w = layout_of(s);
  ASSERT_NO_FATAL_FAILURE(check_valid_plan(lens, w.num_parts, buf.data()));
  const auto v = view_plan(buf.data(), w.num_parts);
  const int want = (59 + openmla::kMinBlocksPerPart - 1) / openmla::kMinBlocksPerPart;
  EXPECT_EQ(v.hdr->active_parts, want);
  EXPECT_EQ(v.reqs[0].num_segs, want);
}

TEST(PlanApi, ZeroLengthsAndLengthsAtTheCap) {
  const auto s = make_shape(5, 2, 16, 1, 3);
  for (const auto& lens : {std::vector<int32_t>{0, 0, 0, 0, 0}, std::vector<int32_t>{192, 0, 1, 191, 192}}) {
    openmla_status st;
    const auto buf = plan_host(s, lens, &st);
    ASSERT_TRUE(IsOk(st));
    ASSERT_NO_FATAL_FAILURE(check_valid_plan(lens, layout_of(s).num_parts, buf.data()));
  }
}

TEST(PlanApi, BadLengthsNameCacheSeqlens) {
  const auto s = make_shape(4, 1, 16, 1, 2);  // cap 128
  for (const auto& lens : {std::vector<int32_t>{5, -1, 7, 0}, std::vector<int32_t>{5, 129, 7, 0},
                           std::vector<int32_t>{0, 0, 0, INT32_MIN},
                           std::vector<int32_t>{INT32_MAX, 0, 0, 0}}) {
    SCOPED_TRACE(::testing::Message() << lens[0] << "," << lens[1] << "," << lens[2] << ","
                                      << lens[3]);
    openmla_status st;
    plan_host(s, lens, &st);
    EXPECT_TRUE(IsError(st, Expect::kAnyError, {"cache_seqlens"}));
  }
}

TEST(PlanApi, PlanHostNullsAndSmallBuffer) {
  const auto s = make_shape(4, 1, 16, 1, 2);
  const std::vector<int32_t> lens{1, 2, 3, 4};
  const size_t n = openmla_plan_bytes(&s);
  ASSERT_GT(n, 0u);
  std::vector<uint64_t> buf(n / 8 + 1);
  EXPECT_TRUE(IsError(openmla_plan_host(nullptr, lens.data(), buf.data(), n), Expect::kBadArgument,
                      {"shape"}));
  EXPECT_TRUE(IsError(openmla_plan_host(&s, nullptr, buf.data(), n), Expect::kBadArgument,
                      {"cache_seqlens"}));
  EXPECT_TRUE(IsError(openmla_plan_host(&s, lens.data(), nullptr, n), Expect::kAnyError,
                      {"plan_host", "plan", "workspace"}));
  EXPECT_TRUE(IsError(openmla_plan_host(&s, lens.data(), buf.data(), n - 1), Expect::kAnyError,
                      {"plan_bytes", "plan_host", "plan", "workspace"}));
  EXPECT_TRUE(IsError(openmla_plan_host(&s, lens.data(), buf.data(), 0), Expect::kAnyError,
                      {"plan_bytes", "plan_host", "plan", "workspace"}));
}

TEST(PlanApi, WorkspaceSizeNulls) {
  size_t bytes = 0;
  EXPECT_TRUE(IsError(openmla_plan_workspace_size(nullptr, &bytes), Expect::kBadArgument, {"shape"}));
  const auto s = make_shape(4, 1, 16, 1, 2);
  EXPECT_TRUE(IsError(openmla_plan_workspace_size(&s, nullptr), Expect::kBadArgument, {}));
  EXPECT_EQ(openmla_plan_bytes(nullptr), 0u);
}

// ---------------------------------------------------- bad shapes -----

struct BadShape {
  const char* name;
  openmla_decode_shape shape;
  const char* arg;
};

void PrintTo(const BadShape& c, std::ostream* os) { *os << c.name; }

class PlanBadShape : public ::testing::TestWithParam<BadShape> {};

TEST_P(PlanBadShape, EveryEntryPointRejectsIt) {
  const BadShape& c = GetParam();
  const openmla_decode_shape& s = c.shape;
  size_t bytes = 12345;
  EXPECT_TRUE(IsError(openmla_plan_workspace_size(&s, &bytes), Expect::kBadArgument, {c.arg}))
      << "openmla_plan_workspace_size";

  std::vector<int32_t> lens(64, 1);
  std::vector<uint64_t> buf(1 << 16);  // plenty for any plan here
  EXPECT_TRUE(IsError(openmla_plan_host(&s, lens.data(), buf.data(), buf.size() * 8),
                      Expect::kBadArgument, {c.arg}))
      << "openmla_plan_host";

  // The device plan must reject it before launching: nothing here is device
  // memory, and nothing may be touched.
  NoAccessRegion seqlens(4096), ws(size_t(1) << 30);
  EXPECT_TRUE(IsError(openmla_plan(&s, static_cast<const int32_t*>(seqlens.get()), ws.get(),
                                   ws.size(), nullptr),
                      Expect::kBadArgument, {c.arg}))
      << "openmla_plan";

  // size_t has no room for an error: an invalid shape gets 0 (and must not
  // divide by zero on the way).
  EXPECT_EQ(openmla_plan_bytes(&s), 0u) << "openmla_plan_bytes of an invalid shape";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PlanBadShape,
    ::testing::Values(BadShape{"batch_0", make_shape(0, 1, 16, 1, 4), "batch"},
                      BadShape{"batch_negative", make_shape(-1, 1, 16, 1, 4), "batch"},
                      BadShape{"s_q_0", make_shape(4, 0, 16, 1, 4), "s_q"},
                      BadShape{"s_q_negative", make_shape(4, -2, 16, 1, 4), "s_q"},
                      BadShape{"s_q_above_max", make_shape(4, OPENMLA_MAX_S_Q + 1, 16, 1, 4), "s_q"},
                      BadShape{"h_q_0", make_shape(4, 1, 0, 1, 4), "h_q"},
                      BadShape{"h_q_negative", make_shape(4, 1, -16, 1, 4), "h_q"},
                      BadShape{"h_kv_0", make_shape(4, 1, 16, 0, 4), "h_kv"},
                      BadShape{"h_kv_negative", make_shape(4, 1, 16, -1, 4), "h_kv"},
                      BadShape{"h_kv_not_dividing_h_q", make_shape(4, 1, 16, 3, 4), "h_kv"},
                      BadShape{"h_kv_above_h_q", make_shape(4, 1, 8, 16, 4), "h_kv"},
                      BadShape{"max_blocks_per_seq_negative", make_shape(4, 1, 16, 1, -1),
                               "max_blocks_per_seq"},
                      BadShape{"num_sms_negative", make_shape(4, 1, 16, 1, 4, -1), "num_sms"}),
    [](const ::testing::TestParamInfo<BadShape>& i) { return std::string(i.param.name); });

// openmla_plan's own pointer and size checks, still before any launch.
TEST(PlanApi, DevicePlanRejectsBadPointersAndSmallWorkspace) {
  const auto s = make_shape(4, 1, 16, 1, 2);
  size_t need = 0;
  ASSERT_TRUE(IsOk(openmla_plan_workspace_size(&s, &need)));
  NoAccessRegion seqlens(4096), ws(need + 4096);
  const int32_t* sl = static_cast<const int32_t*>(seqlens.get());
  EXPECT_TRUE(IsError(openmla_plan(nullptr, sl, ws.get(), need, nullptr), Expect::kBadArgument,
                      {"shape"}));
  EXPECT_TRUE(IsError(openmla_plan(&s, nullptr, ws.get(), need, nullptr), Expect::kBadArgument,
                      {"cache_seqlens"}));
  EXPECT_TRUE(IsError(openmla_plan(&s, sl, nullptr, need, nullptr), Expect::kAnyError,
                      {"workspace"}));
  // Smaller than the plan itself (whether the plan step also insists on the
  // decode's accumulators is the lead's call; this is too small either way).
  const size_t plan_only = openmla_plan_bytes(&s);
  ASSERT_GT(plan_only, 1u);
  EXPECT_TRUE(IsError(openmla_plan(&s, sl, ws.get(), plan_only - 1, nullptr), Expect::kWorkspace,
                      {"workspace"}));
  EXPECT_TRUE(IsError(openmla_plan(&s, sl, ws.get(), 0, nullptr), Expect::kWorkspace,
                      {"workspace"}));
}

}  // namespace
